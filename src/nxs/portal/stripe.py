"""Stripe: Checkout sessions for top-ups and plan subscriptions, and the signed webhook.

`StripeClient` asks Stripe's API (`NXS_STRIPE_API_URL`, https://api.stripe.com unless a
test points it elsewhere) for a Checkout session. `verify` checks a `Stripe-Signature`
header (`t=…,v1=…`: HMAC-SHA256 of `t.payload` with the endpoint secret, within a
tolerance). `apply_event` acts on a verified event once: its id is recorded in the same
transaction as the credit grant or subscription change, so a replay changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from nxs.billing import catalog
from nxs.billing.money import Money
from nxs.billing.plans import SubscriptionStatus
from nxs.errors import BadRequest, NxsError
from nxs.store.database import Database

LOG = logging.getLogger("nxs.portal.stripe")
TOLERANCE_SECONDS = 300
MIN_TOP_UP, MAX_TOP_UP = Decimal("5"), Decimal("10000")
SUBSCRIPTION_STATES = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "incomplete": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}


class StripeUnavailable(NxsError):
    status, error_type, detail = 502, "payment_provider_unavailable", "Stripe did not answer"


class SignatureInvalid(BadRequest):
    detail = "Invalid Stripe signature"


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    webhook_secret: str
    api_url: str = "https://api.stripe.com"


class StripeClient:
    """The two Checkout calls the portal makes."""

    def __init__(self, config: StripeConfig) -> None:
        self.config = config

    async def top_up(self, customer_id: str, amount: Decimal, back: str) -> str:
        """A Checkout URL where the customer pays `amount` USD of credit."""
        form = {
            "mode": "payment",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": str(int(amount * 100)),
            "line_items[0][price_data][product_data][name]": "NXS API credit",
            "client_reference_id": customer_id,
            "metadata[nxs_customer]": customer_id,
            "metadata[nxs_kind]": "top_up",
            "success_url": f"{back}?paid=1",
            "cancel_url": back,
        }
        return await self._checkout(form)

    async def subscribe(self, customer_id: str, plan: str, price: str, back: str) -> str:
        """A Checkout URL for a subscription to `plan` at Stripe price `price`."""
        form = {
            "mode": "subscription",
            "line_items[0][price]": price,
            "line_items[0][quantity]": "1",
            "client_reference_id": customer_id,
            "metadata[nxs_customer]": customer_id,
            "metadata[nxs_plan]": plan,
            "subscription_data[metadata][nxs_customer]": customer_id,
            "subscription_data[metadata][nxs_plan]": plan,
            "success_url": f"{back}?subscribed=1",
            "cancel_url": back,
        }
        return await self._checkout(form)

    async def _checkout(self, form: dict[str, str]) -> str:
        url = f"{self.config.api_url.rstrip('/')}/v1/checkout/sessions"
        headers = {"Authorization": f"Bearer {self.config.secret_key}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
                http.post(url, data=form, headers=headers) as response,
            ):
                body = await response.json(content_type=None)
                if response.status != 200 or not isinstance(body, dict) or "url" not in body:
                    LOG.warning("Stripe checkout answered %s", response.status)
                    raise StripeUnavailable()
                return str(body["url"])
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise StripeUnavailable() from exc


def verify(payload: bytes, header: str | None, secret: str, now: float | None = None) -> Any:
    """The event if `header` is Stripe's valid signature of `payload`; else SignatureInvalid."""
    if not header:
        raise SignatureInvalid()
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in parts if name.strip() == "t"]
    signatures = [value.strip() for name, value in parts if name.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        raise SignatureInvalid()
    stamp = int(stamps[0])
    if abs((now if now is not None else time.time()) - stamp) > TOLERANCE_SECONDS:
        raise SignatureInvalid()
    expected = sign(payload, secret, stamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureInvalid()
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise BadRequest("Malformed event") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise BadRequest("Malformed event")
    return event


def sign(payload: bytes, secret: str, stamp: int) -> str:
    """Stripe's v1 signature: hex HMAC-SHA256 of `{t}.{payload}`."""
    signed = str(stamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def apply_event(db: Database, event: dict[str, Any]) -> str:
    """Act on a verified event exactly once; returns what was done (for the log)."""
    kind, obj = str(event.get("type", "")), event.get("data", {}).get("object", {})
    if not isinstance(obj, dict):
        return "ignored"
    with db.transaction():
        fresh = db.execute(
            "INSERT INTO stripe_events (id, type, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (event["id"][:255], kind[:100], time.time()),
        )
        return _act(db, kind, obj) if fresh == 1 else "replayed"


def _act(db: Database, kind: str, obj: dict[str, Any]) -> str:
    if kind == "checkout.session.completed":
        return _checkout_completed(db, obj)
    if kind in ("customer.subscription.created", "customer.subscription.updated"):
        _remember(db, str(obj.get("id")), obj.get("metadata") or {})
        state = SUBSCRIPTION_STATES.get(str(obj.get("status")), SubscriptionStatus.PAST_DUE)
        return _move(db, str(obj.get("id")), state)
    if kind == "customer.subscription.deleted":
        return _move(db, str(obj.get("id")), SubscriptionStatus.CANCELED)
    if kind == "invoice.paid":
        return _move(db, str(obj.get("subscription")), SubscriptionStatus.ACTIVE)
    if kind == "invoice.payment_failed":
        return _move(db, str(obj.get("subscription")), SubscriptionStatus.PAST_DUE)
    return "ignored"


def _checkout_completed(db: Database, obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    customer_id = str(metadata.get("nxs_customer") or obj.get("client_reference_id") or "")
    if not _customer_exists(db, customer_id):
        return "unknown customer"
    if obj.get("mode") == "subscription":
        _remember(db, str(obj.get("subscription")), metadata)
        return _move(db, str(obj.get("subscription")), SubscriptionStatus.ACTIVE)
    if obj.get("payment_status") != "paid" or not isinstance(obj.get("amount_total"), int):
        return "not paid"
    amount = Money.from_decimal(Decimal(obj["amount_total"]) / 100)
    if amount.micros <= 0:
        return "nothing paid"
    catalog.grant_credit(db, customer_id, amount, f"stripe {obj.get('id', '')}"[:120])
    return f"granted {amount}"


def _remember(db: Database, subscription_id: str, metadata: dict[str, Any]) -> None:
    customer_id, plan = str(metadata.get("nxs_customer", "")), str(metadata.get("nxs_plan", ""))
    if not subscription_id or not _customer_exists(db, customer_id) or not plan:
        return
    db.execute(
        "INSERT INTO stripe_subscriptions (subscription_id, customer_id, plan, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (subscription_id) DO UPDATE SET"
        " plan = excluded.plan, updated_at = excluded.updated_at",
        (subscription_id, customer_id, plan, time.time()),
    )


def _move(db: Database, subscription_id: str, status: SubscriptionStatus) -> str:
    row = db.fetch_one(
        "SELECT customer_id, plan FROM stripe_subscriptions WHERE subscription_id = ?",
        (subscription_id,),
    )
    if row is None:
        return "unknown subscription"
    catalog.set_subscription(db, str(row["customer_id"]), str(row["plan"]), None, status)
    return f"subscription {status.value}"


def _customer_exists(db: Database, customer_id: str) -> bool:
    return bool(customer_id) and (
        db.fetch_one("SELECT id FROM customers WHERE id = ?", (customer_id,)) is not None
    )


def plan_price(db: Database, plan: str) -> str | None:
    row = db.fetch_one("SELECT stripe_price FROM plans WHERE name = ?", (plan,))
    return str(row["stripe_price"]) if row and row["stripe_price"] else None


def sellable_plans(db: Database) -> list[tuple[str, str]]:
    """(plan, Stripe price) of every plan sold through Stripe."""
    rows = db.fetch_all(
        "SELECT name, stripe_price FROM plans WHERE stripe_price IS NOT NULL ORDER BY name"
    )
    return [(str(row["name"]), str(row["stripe_price"])) for row in rows]


def set_plan_price(db: Database, plan: str, price: str | None) -> None:
    """Sell `plan` at Stripe price `price` (None or '': not sold through Stripe)."""
    catalog.get_plan(db, plan)
    value = (price or "").strip() or None
    if value is not None and (len(value) > 100 or not value.replace("_", "").isalnum()):
        raise BadRequest(f"Invalid Stripe price id {value[:40]!r}")
    db.execute("UPDATE plans SET stripe_price = ? WHERE name = ?", (value, plan))
