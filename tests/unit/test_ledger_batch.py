"""A batch's reservations and settlements applied at once (`nxs.billing.ledger_batch`), on
SQLite and PostgreSQL: the same balances and rows as the per-call functions give the same
calls in the same order, a short balance covers its first calls only, a row settled twice
in one batch is charged once; and through the group-commit writer (on PostgreSQL the
batched path), 100 concurrent holds against credit for 10.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.support.ledger import funded_customer, run_entry

from nxs.billing import catalog, ledger, ledger_batch
from nxs.billing.errors import InsufficientCredit
from nxs.billing.ledger import Entry
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.settle import Outcome, Settlement, settle
from nxs.billing.writer import LedgerWriter
from nxs.store.database import Database
from nxs.store.offload import Offload

RULE = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"), header_units=True)


def entry(customer_id: str, number: int, reserved: str = "0.04") -> Entry:
    """A run of four images (estimated), `reserved` held."""
    entry_id = f"led_{customer_id}_{number}"
    return run_entry(customer_id, entry_id, rule=RULE, units=4, reserved=reserved)


def charged(item: Entry, units: str) -> Settlement:
    return settle(
        Outcome.COMPLETED,
        RULE,
        reserved=item.reserved,
        estimated_units=Decimal(4),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": units},
    )


def state(db: Database, cid: str) -> tuple[object, ...]:
    balance = catalog.get_balance(db, cid)
    rows = db.fetch_all(
        "SELECT status, units, cost_micros, reserved_micros FROM ledger"
        " WHERE customer_id = ? ORDER BY id",
        (cid,),
    )
    return (
        balance.available,
        balance.reserved,
        [
            tuple(row[c] for c in ("status", "units", "cost_micros", "reserved_micros"))
            for row in rows
        ],
    )


def held_alone(db: Database, items: list[Entry]) -> list[bool]:
    """The per-call functions, in order: which holds the balance covered."""
    outcomes = []
    for item in items:
        try:
            with db.transaction():
                ledger.reserve(db, item)
        except InsufficientCredit:
            outcomes.append(False)
        else:
            outcomes.append(True)
    return outcomes


def held_together(db: Database, items: list[Entry]) -> list[bool]:
    deferred: list[tuple[str, tuple[object, ...]]] = []
    with db.transaction():
        outcomes = ledger_batch.reserve_all(db, items, lambda sql, p: deferred.append((sql, p)))
        for sql, params in deferred:
            db.execute(sql, params)
    assert all(isinstance(value, InsufficientCredit) for ok, value in outcomes if not ok)
    return [ok for ok, _ in outcomes]


def test_a_batch_holds_and_settles_as_the_calls_one_by_one_would(db: Database) -> None:
    # Two customers each side: one whose credit covers its whole batch, one covered for
    # two of its three calls (the first two, as in order).
    rich_alone, short_alone = (
        funded_customer(db, "rich-a", "1"),
        funded_customer(db, "short-a", "0.09"),
    )
    rich_batch, short_batch = (
        funded_customer(db, "rich-b", "1"),
        funded_customer(db, "short-b", "0.09"),
    )

    def calls(rich: str, short: str) -> list[Entry]:
        return [entry(rich, 1), entry(short, 1), entry(rich, 2), entry(short, 2), entry(short, 3)]

    alone, together = calls(rich_alone, short_alone), calls(rich_batch, short_batch)
    assert held_alone(db, alone) == [True, True, True, True, False]
    assert held_together(db, together) == [True, True, True, True, False]

    def settling(items: list[Entry]) -> list[tuple[Entry, Settlement]]:
        # one charged for 3 of its 4 estimated images, one refunded, one charged twice
        refund = settle(
            Outcome.UPSTREAM_5XX,
            RULE,
            reserved=items[1].reserved,
            estimated_units=Decimal(4),
            multiplier=Decimal(1),
            headers={},
        )
        first = charged(items[0], "3")
        return [(items[0], first), (items[1], refund), (items[2], charged(items[2], "4")),
                (items[0], first), (items[3], charged(items[3], "1"))]  # fmt: skip

    with db.transaction():
        alone_settled = [ledger.settle(db, item, done) for item, done in settling(alone)]
        together_settled = ledger_batch.settle_all(db, settling(together), lambda *_: None)
    assert alone_settled == [True, True, True, False, True]
    assert [applied for _, applied in together_settled] == alone_settled
    assert state(db, rich_batch)[:2] == state(db, rich_alone)[:2]
    assert state(db, short_batch)[:2] == state(db, short_alone)[:2]
    assert state(db, rich_batch)[2] == state(db, rich_alone)[2]
    assert state(db, short_batch)[2] == state(db, short_alone)[2]
    # rich: 1 − 0.03 − 0.04 charged; short: 0.09 − 0.01 charged, 0.04 refunded, none held
    assert state(db, rich_batch)[:2] == (Money.parse("0.93"), Money(0))
    assert state(db, short_batch)[:2] == (Money.parse("0.08"), Money(0))


def test_a_row_already_closed_is_not_settled_again_by_a_batch(db: Database) -> None:
    cid = funded_customer(db, "acme", "1")
    item = entry(cid, 1)
    ledger.reserve(db, item)
    done = charged(item, "2")
    assert ledger.settle(db, item, done) is True
    with db.transaction():
        outcomes = ledger_batch.settle_all(db, [(item, charged(item, "4"))], lambda *_: None)
    assert outcomes == [(True, False)]
    assert state(db, cid)[:2] == (Money.parse("0.98"), Money(0))


def test_100_concurrent_holds_against_credit_for_10_admit_exactly_10(
    db: Database, offload: Offload
) -> None:
    cid = funded_customer(db, "acme", "0.40")

    async def main() -> list[bool]:
        writer = LedgerWriter(db, offload)

        async def one(n: int) -> bool:
            try:
                await writer.apply(ledger_batch.RESERVE, entry(cid, n))
            except InsufficientCredit:
                return False
            return True

        admitted = await asyncio.gather(*(one(n) for n in range(100)))
        winners = [entry(cid, n) for n, ok in enumerate(admitted) if ok]
        settled = await asyncio.gather(
            *(writer.apply(ledger_batch.SETTLE, (item, charged(item, "2"))) for item in winners)
        )
        await writer.stop()
        assert settled == [True] * len(winners)
        return list(admitted)

    assert sum(asyncio.run(main())) == 10
    available, reserved, rows = state(db, cid)
    assert (available, reserved) == (Money.parse("0.20"), Money(0))  # 10 × 2 images charged
    assert rows == [("settled", "2", 20_000, 40_000)] * 10
