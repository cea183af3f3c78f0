"""A metered request's ticket, and the small pure helpers metering uses on the hot path:
the Idempotency-Key header, JSON bodies, deferred estimates, stored answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from nxs.billing.estimate import defaults_for, estimate_units
from nxs.billing.idempotency import validate_key
from nxs.billing.ledger import Entry
from nxs.billing.limits import Permit
from nxs.billing.plans import Plan
from nxs.billing.replay import StoredResponse
from nxs.billing.settle import header_units
from nxs.gateway.exchange import Exchange, Headers
from nxs.gateway.tariffs import Tariff
from nxs.store.models import KeyGrant


@dataclass
class Ticket:
    """One admitted request: its open ledger entry, plan, permit and idempotency claim."""

    entry: Entry
    plan: Plan
    permit: Permit | None = None
    idempotency: tuple[str, str] | None = None  # (customer_id, key)
    replay: StoredResponse | None = None
    written: bool = False  # a `reserved` row exists (credit plans)
    request_body: bytes | None = None  # kept while the estimate is deferred
    tariff: Tariff | None = None


def idempotency(ex: Exchange, grant: KeyGrant) -> tuple[str, str] | None:
    """The request's (customer, Idempotency-Key) claim, if it sent one (422 if malformed)."""
    if ex.idempotency_key is None:
        return None
    return grant.customer_id, validate_key(ex.idempotency_key)


def json_body(body: bytes | None) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def deferred_units(entry: Entry, body: bytes, headers: Mapping[str, str]) -> Decimal:
    """The deferred estimate: fal's billed units when it says them in the rule's unit
    (`PriceRule.header_units`), else read from the input."""
    units = header_units(headers) if entry.rule.header_units else None
    if units is None:
        units = estimate_units(entry.rule.unit, json_body(body), defaults_for(entry.endpoint))
    return units


def with_request(entry: Entry, request_id: str, upstream_id: str) -> Entry:
    return replace(entry, request_id=request_id, upstream_key_id=upstream_id)


def stored_headers(headers: Mapping[str, str]) -> Headers:
    keep = ("content-type", "x-fal-request-id", "x-fal-billable-units")
    return [(k.encode(), headers[k].encode()) for k in keep if k in headers]
