"""The ledger on a real SQLite file: atomic reservations through the group-commit writer,
settlement applied once per request, monthly allowances, and idempotency records.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

from nxs.billing import catalog, ledger, replay
from nxs.billing.errors import IdempotencyKeyReused, IdempotentRequestInProgress, InsufficientCredit
from nxs.billing.estimate import at_least_a_micro
from nxs.billing.ledger import Entry
from nxs.billing.money import Money, charge
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.settle import Outcome, settle
from nxs.billing.writer import LedgerWriter
from nxs.store import customers
from nxs.store.database import Database

RULE = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"), header_units=True)


def customer(db: Database, name: str = "acme") -> str:
    with db.transaction():
        return customers.create(db, name).id


def entry(customer_id: str, reserved: str = "0.01", created_at: float = 1.8e9) -> Entry:
    return Entry(
        id=f"led_{id(object())}_{created_at}",
        customer_id=customer_id,
        api_key_id="key_1",
        endpoint=RULE.pattern,
        kind="queue",
        rule=RULE,
        multiplier=Decimal(1),
        estimated_units=Decimal(1),
        reserved=Money.parse(reserved),
        created_at=created_at,
    )


def test_credit_for_10_reservations_admits_exactly_10_of_100_concurrent(db: Database) -> None:
    cid = customer(db)
    catalog.grant_credit(db, cid, Money.parse("0.10"))

    async def main() -> list[bool]:
        writer = LedgerWriter(db)
        writer.start()

        async def one(n: int) -> bool:
            item = replace(entry(cid), id=f"led_{n}")
            try:
                await writer.run(lambda d: ledger.reserve(d, item))
            except InsufficientCredit:
                return False
            return True

        results = await asyncio.gather(*(one(n) for n in range(100)))
        await writer.stop()
        return list(results)

    assert sum(asyncio.run(main())) == 10
    balance = catalog.get_balance(db, cid)
    assert (balance.available, balance.reserved) == (Money(0), Money.parse("0.10"))
    rows = db.fetch_all("SELECT SUM(reserved_micros) AS held FROM ledger")
    assert rows[0]["held"] == 100_000


def test_settling_a_request_twice_charges_it_once(db: Database) -> None:
    cid = customer(db)
    catalog.grant_credit(db, cid, Money.parse("1"))
    item = entry(cid, reserved="0.04")
    ledger.reserve(db, item)
    done = settle(
        Outcome.COMPLETED,
        RULE,
        reserved=item.reserved,
        estimated_units=Decimal(4),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "3"},
    )
    assert ledger.settle(db, item, done) is True
    assert ledger.settle(db, item, done) is False
    balance = catalog.get_balance(db, cid)
    assert (balance.available, balance.reserved) == (Money.parse("0.97"), Money(0))


def test_a_reserved_run_settles_with_fals_request_id_and_the_upstream_key_that_answered(
    db: Database,
) -> None:
    cid = customer(db)
    catalog.grant_credit(db, cid, Money.parse("1"))
    item = replace(entry(cid), kind="run")  # a prepaid run: held before any key is chosen
    ledger.reserve(db, item)
    done = settle(
        Outcome.COMPLETED,
        RULE,
        reserved=item.reserved,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "1"},
    )
    answered = replace(item, request_id="fal-run-1", upstream_key_id="up_main")
    assert ledger.settle(db, answered, done) is True
    row = db.fetch_one("SELECT request_id, upstream_key_id FROM ledger WHERE id = ?", (item.id,))
    assert row is not None
    assert (row["request_id"], row["upstream_key_id"]) == ("fal-run-1", "up_main")


def test_a_hold_too_small_to_price_is_a_micro_and_settling_takes_the_real_cost(
    db: Database,
) -> None:
    tiny = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.0000004"), header_units=True)
    estimate = charge(Decimal(1), tiny.unit_price, Decimal(1))  # one image: rounds to $0 …
    held = at_least_a_micro(estimate, tiny.unit_price)
    assert (estimate, held) == (Money(0), Money(1))  # … so one micro-dollar is held
    cid = customer(db)
    catalog.grant_credit(db, cid, Money.parse("1"))
    item = replace(entry(cid), rule=tiny, reserved=held)
    ledger.reserve(db, item)
    done = settle(
        Outcome.COMPLETED,
        tiny,
        reserved=held,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "4"},  # fal made 4: 1.6 micro-dollars
    )
    assert ledger.settle(db, item, done) is True
    balance = catalog.get_balance(db, cid)
    assert (balance.available, balance.reserved) == (Money.parse("0.999998"), Money(0))
    assert at_least_a_micro(Money(0), Decimal(0)) == Money(0)  # a free endpoint holds nothing


def test_monthly_allowance_lapses_at_the_new_month(db: Database) -> None:
    cid = customer(db)
    monthly = Money.parse("5")
    ledger.reserve(db, entry(cid, "1", created_at=1_790_000_000), monthly)  # 2026-09
    assert catalog.get_balance(db, cid).available == Money.parse("4")
    ledger.reserve(db, entry(cid, "1", created_at=1_793_000_000), monthly)  # 2026-10
    balance = catalog.get_balance(db, cid)
    assert balance.available == Money.parse("4")  # the unspent 4 lapsed, 5 renewed, 1 held
    assert balance.period == "2026-10"


def test_idempotency_replays_refuses_a_different_body_and_a_running_first(db: Database) -> None:
    cid = customer(db)
    assert replay.claim(db, cid, "k1", "sha-a", 100.0) is None
    with pytest.raises(IdempotentRequestInProgress):
        replay.claim(db, cid, "k1", "sha-a", 101.0)
    stored = replay.StoredResponse(200, [(b"content-type", b"application/json")], b'{"ok":1}')
    replay.complete(db, cid, "k1", stored, "led_1")
    assert replay.claim(db, cid, "k1", "sha-a", 102.0) == stored
    with pytest.raises(IdempotencyKeyReused):
        replay.claim(db, cid, "k1", "sha-b", 103.0)
    assert replay.claim(db, cid, "k1", "sha-b", 100.0 + 86_400) is None  # expired: fresh
