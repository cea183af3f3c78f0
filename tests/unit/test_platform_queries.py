"""The Platform API's customer queries on both backends: usage buckets in a time zone,
billing events and requests scoped to one customer, prices at the plan's multiplier,
historical estimates from the customer's own ledger, keys with aliases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from nxs.billing import catalog
from nxs.billing.money import Money
from nxs.billing.plans import plan_from_options
from nxs.errors import BadRequest, NotFound
from nxs.platform import keys, prices, queries
from nxs.platform.params import Query, auto_timeframe, bound, cursor_of
from nxs.platform.queries import Filters, Window
from nxs.store import customers
from nxs.store.database import Database
from nxs.store.models import Customer

SDXL = "fal-ai/fast-sdxl"
DAY = datetime(2026, 11, 20, tzinfo=UTC)
WINDOW = Window(DAY - timedelta(days=1), DAY + timedelta(days=2))
_ids = itertools.count(1)


def make_customer(db: Database, name: str) -> Customer:
    with db.transaction():
        return customers.create(db, name)


def charge(
    db: Database,
    who: Customer,
    at: datetime,
    *,
    units: str = "2",
    cost: str = "0.03",
    status: str = "settled",
    endpoint: str = SDXL,
) -> str:
    """A ledger row as the gateway leaves it (price 0.01 × multiplier 1.5)."""
    n = next(_ids)
    request_id = f"req-{n}"
    closed = status in ("settled", "refunded")
    db.execute(
        "INSERT INTO ledger (id, request_id, customer_id, api_key_id, endpoint, kind, status,"
        " unit, unit_price, multiplier, estimated_units, reserved_micros, units, cost_micros,"
        " latency_ms, created_at, settled_at) VALUES"
        " (?, ?, ?, 'key_a', ?, 'run', ?, 'image', '0.01', '1.5', '1', 15000, ?, ?, ?, ?, ?)",
        (
            f"led_{n}",
            request_id,
            who.id,
            endpoint,
            status,
            units if closed else None,
            Money.parse(cost).micros if closed else None,
            1500 if closed else None,
            at.timestamp(),
            at.timestamp() + 1.5 if closed else None,
        ),
    )
    return request_id


def test_usage_buckets_follow_the_callers_time_zone(db: Database) -> None:
    alice = make_customer(db, "alice")
    charge(db, alice, DAY - timedelta(minutes=30))  # 23:30 UTC, 18:30 in New York
    charge(db, alice, DAY + timedelta(minutes=30))
    by_utc = queries.usage_series(db, alice.id, WINDOW, "day")
    new_york = ZoneInfo("America/New_York")
    by_ny = queries.usage_series(db, alice.id, WINDOW, "day", new_york)
    assert [b.start.isoformat() for b in by_utc] == [
        "2026-11-19T00:00:00+00:00",
        "2026-11-20T00:00:00+00:00",
    ]
    assert [b.start.isoformat() for b in by_ny] == ["2026-11-19T00:00:00-05:00"]
    (line,) = by_ny[0].lines
    assert (line.quantity, line.unit_price, line.cost, line.requests) == (
        Decimal(4),
        Decimal("0.015"),
        Money.parse("0.06"),
        2,
    )


def test_usage_and_events_count_only_this_customers_charged_rows(db: Database) -> None:
    alice, bob = make_customer(db, "alice"), make_customer(db, "bob")
    mine = [charge(db, alice, DAY + timedelta(hours=h)) for h in (1, 2)]
    charge(db, alice, DAY + timedelta(hours=3), status="refunded", cost="0")
    charge(db, alice, DAY + timedelta(hours=4), status="pending")
    charge(db, bob, DAY + timedelta(hours=1), units="9", cost="0.135")
    (line,) = queries.usage_summary(db, alice.id, WINDOW)
    assert (line.quantity, line.cost) == (Decimal(4), Money.parse("0.06"))
    events = queries.billing_events(db, alice.id, WINDOW, limit=1, offset=1)
    assert [event.request_id for event in events] == [mine[0]]  # newest first: page 2 of 1
    only = queries.billing_events(db, alice.id, WINDOW, Filters(request_ids=(mine[1],)))
    assert [event.request_id for event in only] == [mine[1]]


def test_requests_show_open_and_refunded_ones_and_filter_by_status(db: Database) -> None:
    alice = make_customer(db, "alice")
    done = charge(db, alice, DAY)
    failed = charge(db, alice, DAY + timedelta(hours=1), status="refunded", cost="0")
    running = charge(db, alice, DAY + timedelta(hours=2), status="pending")
    records = queries.customer_requests(db, alice.id, WINDOW)
    assert [(r.request_id, r.outcome, r.duration) for r in records] == [
        (running, None, None),
        (failed, "error", 1.5),
        (done, "success", 1.5),
    ]
    errors = queries.customer_requests(db, alice.id, WINDOW, status="error")
    assert [r.request_id for r in errors] == [failed]
    assert queries.customer_requests(db, alice.id, WINDOW, status="user_error") == []


def test_prices_apply_the_plan_and_history_is_the_customers_own(db: Database) -> None:
    alice, bob = make_customer(db, "alice"), make_customer(db, "bob")
    catalog.set_price(db, SDXL, "image", Decimal("0.01"))
    plan = plan_from_options("pro", multiplier="1.5", endpoints="fal-ai/fast-*")
    catalog.save_plan(db, plan)
    catalog.set_subscription(db, alice.id, "pro")
    charge(db, bob, datetime.now(UTC), units="10", cost="0.1")
    found = prices.customer_prices(db, alice.id, [SDXL, "fal-ai/flux/dev"])
    assert [(p.endpoint, p.unit, p.unit_price) for p in found] == [
        (SDXL, "image", Decimal("0.015"))
    ]
    assert prices.estimate(
        db, alice.id, "historical_api_price", {SDXL: Decimal(10)}
    ) == Money.parse("0.15")  # alice has no history: one default image per call, at her price
    with pytest.raises(NotFound):
        prices.estimate(db, alice.id, "unit_price", {"fal-ai/flux/dev": Decimal(1)})


def test_keys_carry_aliases_and_another_customers_key_is_not_found(db: Database) -> None:
    alice, bob = make_customer(db, "alice"), make_customer(db, "bob")
    made, plaintext = keys.create_customer_key(db, alice, "CI runner")
    assert plaintext.startswith("nxs_") and made.alias == "CI runner"
    with pytest.raises(NotFound):
        keys.revoke_customer_key(db, bob.id, made.id)
    assert [k.id for k in keys.list_customer_keys(db, alice.id)] == [made.id]
    assert keys.revoke_customer_key(db, alice.id, made.id) is True
    assert keys.revoke_customer_key(db, alice.id, made.id) is False
    assert keys.list_customer_keys(db, alice.id) == []


def test_timeframes_cursors_and_bounds_read_as_fal_documents() -> None:
    assert auto_timeframe(Window(DAY, DAY + timedelta(hours=1))) == "minute"
    assert auto_timeframe(Window(DAY, DAY + timedelta(days=1))) == "hour"
    assert auto_timeframe(Window(DAY, DAY + timedelta(days=30))) == "day"
    assert auto_timeframe(Window(DAY, DAY + timedelta(days=100))) == "week"
    assert auto_timeframe(Window(DAY, DAY + timedelta(days=400))) == "month"
    assert cursor_of(2) == "Mg==" and Query("cursor=Mg%3D%3D").page() == 2
    window = Window(DAY + timedelta(hours=5), DAY + timedelta(days=5))
    widened = bound(window, "month", ZoneInfo("America/New_York"))
    assert (widened.start.isoformat(), widened.end.isoformat()) == (
        "2026-11-01T04:00:00+00:00",  # November starts in daylight time (EDT)
        "2026-12-01T05:00:00+00:00",  # and ends in standard time (EST)
    )


def test_a_customer_has_at_most_50_active_keys(db: Database) -> None:
    alice = make_customer(db, "alice")
    made = [keys.create_customer_key(db, alice, f"k{n}")[0] for n in range(keys.MAX_ACTIVE_KEYS)]
    with pytest.raises(BadRequest):
        keys.create_customer_key(db, alice, "one more")
    keys.revoke_customer_key(db, alice.id, made[0].id)
    assert keys.create_customer_key(db, alice, "one more")[0].alias == "one more"
