"""fal's Platform API JSON: the query results as fal names their fields (numbers as JSON
numbers, times as ISO 8601 UTC with `Z`), paged lists with `next_cursor`/`has_more`, and
the error body `{"error": {"type", "message", "docs_url", "request_id"}}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from nxs.billing.money import Money
from nxs.errors import NxsError
from nxs.platform.account import Account
from nxs.platform.keys import CustomerKey
from nxs.platform.params import cursor_of
from nxs.platform.prices import CURRENCY, CustomerPrice
from nxs.platform.queries import BillingEvent, RequestRecord, UsageBucket, UsageLine

DOCS_URL: Final = "https://docs.fal.ai/platform-apis/v1"
NANO_PER_MICRO: Final = 1000
_ERROR_TYPES: Final = {
    400: "validation_error",
    401: "authorization_error",
    402: "authorization_error",
    403: "authorization_error",
    404: "not_found",
    405: "not_implemented",
    409: "validation_error",
    413: "validation_error",
    415: "validation_error",
    422: "validation_error",
    429: "rate_limited",
}
JsonObject = dict[str, Any]


def number(value: Decimal | Money) -> float | int:
    """A JSON number: whole values as integers, others as floats."""
    amount = value.to_decimal() if isinstance(value, Money) else value
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def stamp(when: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second (fal's `2025-01-15T10:30:45Z`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def paged(name: str, items: Sequence[JsonObject], page: int, has_more: bool) -> JsonObject:
    return {
        name: list(items),
        "next_cursor": cursor_of(page + 1) if has_more else None,
        "has_more": has_more,
    }


def price(entry: CustomerPrice) -> JsonObject:
    return {
        "endpoint_id": entry.endpoint,
        "unit_price": number(entry.unit_price),
        "unit": entry.unit,
        "currency": entry.currency,
    }


def auth_fields(key_id: str | None, expand: set[str], labels: Mapping[str, str]) -> JsonObject:
    """fal's `auth_method` / `auth_method_structured`, when asked: the key's alias and id."""
    fields: JsonObject = {}
    if key_id is None:
        return fields
    label = labels.get(key_id, key_id)
    if "auth_method" in expand:
        fields["auth_method"] = label
    if "auth_method_structured" in expand:
        fields["auth_method_structured"] = {"detail": label, "api_key_id": key_id}
    return fields


def usage_line(line: UsageLine, expand: set[str], labels: Mapping[str, str]) -> JsonObject:
    cost = number(line.cost)
    return {
        "endpoint_id": line.endpoint,
        "unit": line.unit,
        "quantity": number(line.quantity),
        "unit_price": number(line.unit_price),
        "percent_discount": None,
        "cost_subtotal": cost,
        "cost_discount": 0,
        "cost_total": cost,
        "cost": cost,
        "currency": CURRENCY,
        **auth_fields(line.api_key_id, expand, labels),
    }


def usage_bucket(bucket: UsageBucket, expand: set[str], labels: Mapping[str, str]) -> JsonObject:
    return {
        "bucket": bucket.start.isoformat(),
        "results": [usage_line(line, expand, labels) for line in bucket.lines],
    }


def billing_event(event: BillingEvent, expand: set[str], labels: Mapping[str, str]) -> JsonObject:
    cost = number(event.cost)
    return {
        "request_id": event.request_id,
        "endpoint_id": event.endpoint,
        "timestamp": stamp(event.timestamp),
        "output_units": number(event.units),
        "unit_price": number(event.unit_price),
        "percent_discount": None,
        "cost_subtotal": cost,
        "cost_discount": 0,
        "cost_total": cost,
        "cost_estimate_nano_usd": event.cost.micros * NANO_PER_MICRO,
        **auth_fields(event.api_key_id, expand, labels),
    }


def request_item(record: RequestRecord, payloads: bool) -> JsonObject:
    """fal's request item; `status_code` 200 for a charged request, 500 for a refunded one
    (an upstream failure or a cancel before it ran), null while it is open. NXS keeps no
    payloads: asked for, they are null."""
    codes = {"success": 200, "error": 500}
    item: JsonObject = {
        "request_id": record.request_id,
        "endpoint_id": record.endpoint,
        "started_at": stamp(record.started_at),
        "sent_at": stamp(record.started_at),
        "ended_at": stamp(record.ended_at) if record.ended_at else None,
        "status_code": codes.get(record.outcome or ""),
        "duration": record.duration,
    }
    if payloads:
        item["json_input"] = None
        item["json_output"] = None
    return item


def key(entry: CustomerKey) -> JsonObject:
    return {
        "key_id": entry.id,
        "alias": entry.alias,
        "scope": "API",
        "created_at": stamp(entry.created_at),
    }


def new_key(entry: CustomerKey, plaintext: str) -> JsonObject:
    """An NXS key is one token: both `key_secret` and `key` are the whole `nxs_…` key."""
    return {"key_id": entry.id, "key_secret": plaintext, "key": plaintext}


def account(found: Account, credits: bool) -> JsonObject:
    """fal's `{username, credits?}`, plus NXS's `plan`: what the customer is on."""
    body: JsonObject = {"username": found.username}
    if credits:
        body["credits"] = {"current_balance": number(found.balance), "currency": CURRENCY}
    subscription = found.subscription
    body["plan"] = {
        "name": found.plan.name,
        "mode": found.plan.mode.value,
        "status": subscription.status.value,
        "active": found.subscription_active,
        "until": stamp(subscription.until) if subscription.until else None,
        "monthly_credit": number(found.plan.monthly_credit),
        "reserved": number(found.reserved),
    }
    return body


def error(failure: NxsError, request_id: str) -> tuple[int, JsonObject]:
    """The status and fal's error body for any NXS error (validation is fal's 400)."""
    status = failure.status
    kind = _ERROR_TYPES.get(status, "server_error")
    if kind == "validation_error":
        status = 400
    body = {
        "type": kind,
        "message": _message(failure.detail) if status < 500 else _server_message(failure),
        "docs_url": DOCS_URL,
        "request_id": request_id,
    }
    return status, {"error": body}


def _message(detail: Any) -> str:
    if isinstance(detail, list):  # fal's model-API list: [{loc, msg, type}]
        parts = [_part(item) for item in detail]
        return "; ".join(part for part in parts if part) or "Invalid request parameters"
    return str(detail)


def _part(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(step) for step in item.get("loc", []) if step != "body")
    message = str(item.get("msg", ""))
    return f"{where}: {message}" if where else message


def _server_message(failure: NxsError) -> str:
    """A fixed text per class (a database error's own message names hosts)."""
    return str(type(failure).detail)
