"""The console's read models and operators on each backend: what the pages will show,
computed from real rows (customers, ledger, relay outbox, operators)."""

from __future__ import annotations

import time

import pytest

from nxs.admin import audit
from nxs.billing import catalog
from nxs.billing.money import Money
from nxs.console import audit_view, customers, deliveries, operators, prices, requests, usage
from nxs.errors import BadRequest, Conflict
from nxs.store import customers as customer_rows
from nxs.store import keys as key_rows
from nxs.store.database import Database
from nxs.web.passwords import Passwords

DAY = 86400.0
NOW = time.time()


def add_row(db: Database, name: str, endpoint: str, **values: object) -> str:
    """One ledger row for customer `name`: settled at 2 images × $0.025 × 1.5 unless told."""
    customer = customer_rows.find(db, name) or customer_rows.create(db, name)
    key, _ = key_rows.create(db, customer)
    row: dict[str, object] = {
        "id": f"led_{len(db.fetch_all('SELECT id FROM ledger'))}",
        "request_id": None,
        "customer_id": customer.id,
        "api_key_id": key.id,
        "upstream_key_id": None,
        "endpoint": endpoint,
        "kind": "run",
        "status": "settled",
        "unit": "image",
        "unit_price": "0.025",
        "multiplier": "1.5",
        "estimated_units": "2",
        "reserved_micros": 75_000,
        "units": "2",
        "cost_micros": 75_000,
        "latency_ms": 1200,
        "created_at": NOW,
        **values,
    }
    columns = ", ".join(row)
    db.execute(
        f"INSERT INTO ledger ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
    )
    return str(row["id"])


def test_usage_sums_charge_and_fal_cost_by_customer_endpoint_and_day(db: Database) -> None:
    add_row(db, "acme", "fal-ai/flux/dev")
    add_row(db, "acme", "fal-ai/flux/dev", created_at=NOW - DAY)
    add_row(db, "bolt", "fal-ai/flux/schnell", status="refunded", cost_micros=None)
    seen = usage.usage(db, since=NOW - 7 * DAY)
    assert [(b.key, b.requests, str(b.charged), str(b.fal_cost)) for b in seen.customers] == [
        ("acme", 2, "0.15", "0.10"),
        ("bolt", 1, "0.00", "0.00"),
    ]
    assert (str(seen.total.margin), seen.total.margin_percent, seen.total.refunded) == (
        "0.05",
        "33.3%",
        1,
    )
    assert len(seen.days) == 2


def test_customer_search_shows_balance_and_window_spend(db: Database) -> None:
    add_row(db, "acme", "fal-ai/flux/dev")
    add_row(db, "acme", "fal-ai/flux/dev", created_at=NOW - 40 * DAY)
    customer_rows.create(db, "zeta")
    acme = customer_rows.get(db, "acme")
    catalog.grant_credit(db, acme.id, Money.parse("12.50"))
    [line] = customers.search(db, "CM", since=NOW - 30 * DAY)
    assert (line.name, str(line.available), str(line.spend), line.requests, line.plan) == (
        "acme",
        "12.50",
        "0.075",
        1,
        "default",
    )


def test_search_treats_like_wildcards_as_text(db: Database) -> None:
    customer_rows.create(db, "a_b")
    customer_rows.create(db, "axb")
    assert [line.name for line in customers.search(db, "a_", since=NOW)] == ["a_b"]


def test_unpriced_lists_only_endpoints_no_rule_matches(db: Database) -> None:
    add_row(db, "acme", "fal-ai/flux/dev")
    add_row(db, "acme", "fal-ai/new-model")
    catalog.set_price(db, "fal-ai/flux/*", "image", Money.parse("0.025").to_decimal())
    found = prices.catalogue(db, since=NOW - DAY).unpriced
    assert [(u.endpoint, u.requests) for u in found] == [("fal-ai/new-model", 1)]


def test_failed_slow_and_search_by_request_id(db: Database) -> None:
    add_row(db, "acme", "fal-ai/flux/dev", request_id="req-ok")
    add_row(db, "acme", "fal-ai/flux/dev", request_id="req-gone", status="refunded")
    add_row(db, "acme", "fal-ai/veo", request_id="req-slow", latency_ms=95_000)
    assert [r.request_id for r in requests.failed(db, since=NOW - DAY)] == ["req-gone"]
    assert [r.request_id for r in requests.slow(db, since=NOW - DAY)] == ["req-slow"]
    [hit] = requests.find(db, " req-ok ")
    assert (hit.customer, hit.endpoint, hit.status, str(hit.charged)) == (
        "acme",
        "fal-ai/flux/dev",
        "settled",
        "0.075",
    )


def test_deliveries_come_with_their_attempts(db: Database) -> None:
    acme = customer_rows.create(db, "acme")
    db.execute(
        "INSERT INTO relay_callbacks (id, customer_id, target_url, request_id, created_at)"
        " VALUES ('cb1', ?, 'https://acme.test/hook', 'req-1', ?)",
        (acme.id, NOW),
    )
    db.execute(
        "INSERT INTO relay_deliveries (id, callback_id, request_id, customer_id, target_url,"
        " body, state, attempts, next_attempt_at, last_status, created_at, updated_at)"
        " VALUES ('dl1', 'cb1', 'req-1', ?, 'https://acme.test/hook', '{}', 'pending', 2, ?,"
        " 503, ?, ?)",
        (acme.id, NOW + 60, NOW, NOW),
    )
    for attempt, status in ((1, 500), (2, 503)):
        db.execute(
            "INSERT INTO relay_attempts (id, delivery_id, attempt, started_at, finished_at,"
            " status) VALUES (?, 'dl1', ?, ?, ?, ?)",
            (f"at{attempt}", attempt, NOW, NOW + 0.25, status),
        )
    [delivery] = deliveries.recent(db)
    assert (
        delivery.customer,
        [(a.attempt, a.status, a.duration_ms) for a in delivery.attempts],
    ) == (
        "acme",
        [(1, 500, 250), (2, 503, 250)],
    )


def test_operator_signs_in_with_its_password_only(db: Database) -> None:
    passwords = Passwords()
    operators.create(db, passwords, "olga", "correct horse battery", "viewer")
    assert operators.authenticate(db, passwords, "olga", "wrong password!") is None
    assert operators.authenticate(db, passwords, "nobody", "correct horse battery") is None
    olga = operators.authenticate(db, passwords, "olga", "correct horse battery")
    assert olga is not None and (olga.role, olga.can_change) == ("viewer", False)


def test_operator_names_are_unique_and_passwords_long(db: Database) -> None:
    passwords = Passwords()
    operators.create(db, passwords, "olga", "correct horse battery")
    with pytest.raises(Conflict):
        operators.create(db, passwords, "olga", "another long password")
    with pytest.raises(BadRequest):
        operators.create(db, passwords, "ivan", "short")


def test_audit_shows_a_console_change_once_with_its_operator(db: Database) -> None:
    with db.transaction():
        audit.record(db, audit.API, "credits.grant", "acme", {"amount": "5.00"})
        audit.record(db, audit.CONSOLE, "credits.grant", "acme", {"operator": "olga"})
    audit.record(db, audit.API, "credits.grant", "acme", {"amount": "7.00"})
    shown = audit_view.entries(db, limit=10)
    assert [(e.actor, e.detail["amount"]) for e in shown] == [
        ("admin-api", "7.00"),
        ("console: olga", "5.00"),
    ]
