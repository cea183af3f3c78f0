"""Stripe webhooks: the signature check (Stripe's `t=…,v1=…` HMAC-SHA256 scheme with a
tolerance) and each event acted on once per id, on both store backends."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from nxs.billing import catalog
from nxs.billing.money import Money
from nxs.billing.plans import SubscriptionStatus, plan_from_options
from nxs.portal.stripe import SignatureInvalid, apply_event, sign, verify
from nxs.store import customers
from nxs.store.database import Database

SECRET = "whsec_unit"
EVENT = {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}}


def header(payload: bytes, stamp: int, secret: str = SECRET) -> str:
    return f"t={stamp},v1={sign(payload, secret, stamp)}"


def test_a_valid_signature_yields_the_event() -> None:
    payload, now = json.dumps(EVENT).encode(), int(time.time())
    assert verify(payload, header(payload, now), SECRET)["id"] == "evt_1"


def test_any_of_several_v1_signatures_may_match() -> None:
    payload, now = json.dumps(EVENT).encode(), int(time.time())
    both = f"t={now},v1={'0' * 64},v1={sign(payload, SECRET, now)}"
    assert verify(payload, both, SECRET)["id"] == "evt_1"


@pytest.mark.parametrize(
    "case",
    ["missing", "other secret", "tampered body", "too old", "from the future", "no v1", "two t"],
)
def test_a_bad_signature_is_refused(case: str) -> None:
    payload, now = json.dumps(EVENT).encode(), int(time.time())
    sent, body = header(payload, now), payload
    if case == "missing":
        sent = ""
    elif case == "other secret":
        sent = header(payload, now, "whsec_other")
    elif case == "tampered body":
        body = payload.replace(b"evt_1", b"evt_2")
    elif case == "too old":
        sent = header(payload, now - 301)
    elif case == "from the future":
        sent = header(payload, now + 301)
    elif case == "no v1":
        sent = f"t={now},v0={sign(payload, SECRET, now)}"
    elif case == "two t":
        sent = f"t={now},t={now},v1={sign(payload, SECRET, now)}"
    with pytest.raises(SignatureInvalid):
        verify(body, sent or None, SECRET)


def paid(event_id: str, customer_id: str, cents: int = 2000) -> dict[str, Any]:
    session = {
        "id": "cs_1",
        "mode": "payment",
        "payment_status": "paid",
        "amount_total": cents,
        "metadata": {"nxs_customer": customer_id},
    }
    return {"id": event_id, "type": "checkout.session.completed", "data": {"object": session}}


def test_a_top_up_is_granted_once_per_event_id(db: Database) -> None:
    customer = customers.create(db, "acme")
    assert apply_event(db, paid("evt_a", customer.id)) == "granted 20.00"
    assert apply_event(db, paid("evt_a", customer.id)) == "replayed"
    assert apply_event(db, paid("evt_b", customer.id, 550)) == "granted 5.50"
    assert catalog.get_balance(db, customer.id).available == Money.parse("25.50")


def test_an_unpaid_or_unknown_customers_session_grants_nothing(db: Database) -> None:
    customer = customers.create(db, "acme")
    unpaid = paid("evt_u", customer.id)
    unpaid["data"]["object"]["payment_status"] = "unpaid"
    assert apply_event(db, unpaid) == "not paid"
    assert apply_event(db, paid("evt_x", "cus_nobody")) == "unknown customer"
    assert catalog.get_balance(db, customer.id).available == Money.zero()


def test_subscription_events_move_the_subscription(db: Database) -> None:
    customer = customers.create(db, "acme")
    catalog.save_plan(db, plan_from_options("pro"))
    meta = {"nxs_customer": customer.id, "nxs_plan": "pro"}
    steps = [
        ("customer.subscription.created", {"id": "sub_1", "status": "active", "metadata": meta}),
        ("invoice.payment_failed", {"id": "in_1", "subscription": "sub_1"}),
        ("invoice.paid", {"id": "in_2", "subscription": "sub_1"}),
        ("customer.subscription.deleted", {"id": "sub_1"}),
    ]
    seen = []
    for number, (kind, obj) in enumerate(steps):
        apply_event(db, {"id": f"evt_{number}", "type": kind, "data": {"object": obj}})
        subscription = catalog.get_subscription(db, customer.id)
        seen.append((subscription.plan, subscription.status))
    assert seen == [
        ("pro", SubscriptionStatus.ACTIVE),
        ("pro", SubscriptionStatus.PAST_DUE),
        ("pro", SubscriptionStatus.ACTIVE),
        ("pro", SubscriptionStatus.CANCELED),
    ]


def test_an_invoice_of_an_unknown_subscription_changes_nothing(db: Database) -> None:
    event = {
        "id": "evt_i",
        "type": "invoice.payment_failed",
        "data": {"object": {"subscription": "sub_unknown"}},
    }
    assert apply_event(db, event) == "unknown subscription"
