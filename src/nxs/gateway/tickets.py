"""A metered request's ticket, and the small pure helpers metering uses on the hot path:
the Idempotency-Key header, the model input (refused here when malformed), JSON bodies,
deferred estimates, stored answers.
"""

from __future__ import annotations

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
from nxs.errors import MalformedJson, UnsupportedMediaType
from nxs.gateway.exchange import Exchange, Headers
from nxs.gateway.slicer import Slice
from nxs.gateway.tariffs import Tariff
from nxs.jsoninput import is_json_type, parse_json, parse_object
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
    slice: Slice | None = None  # or its hold is in this process's credit slice
    request_body: bytes | None = None  # kept while the estimate is deferred
    tariff: Tariff | None = None


def idempotency(ex: Exchange, grant: KeyGrant) -> tuple[str, str] | None:
    """The request's (customer, Idempotency-Key) claim, if it sent one (422 if malformed)."""
    if ex.idempotency_key is None:
        return None
    return grant.customer_id, validate_key(ex.idempotency_key)


def model_input(ex: Exchange, body: bytes) -> dict[str, Any]:
    """A run's or submit's input, refused before anything is held or sent exactly as the
    emulator (fal) refuses it: 415 for a body that is not JSON by its content type, 422
    (`MalformedJson`) for one that is not a JSON object. An empty body is `{}`."""
    if not body or body.isspace():
        return {}
    content_type = media_type(ex.forward)
    if not is_json_type(content_type):
        raise UnsupportedMediaType(f"Unsupported content type {content_type!r}: send JSON")
    return parse_object(body)


def media_type(forwarded: list[tuple[str, str]]) -> str:
    """The request's media type, lower case without parameters (aiohttp's default when
    the header is missing, as the emulator reads it)."""
    for name, value in forwarded:
        if name == "content-type":
            return value.partition(";")[0].strip().lower()
    return "application/octet-stream"


def json_body(body: bytes | None) -> Any:
    """A body's JSON value, or None when it has none (never raises)."""
    try:
        return parse_json(body) if body else None
    except MalformedJson:
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
