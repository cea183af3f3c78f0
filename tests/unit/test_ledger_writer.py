"""The group-commit writer's batched paths: reservations whose row inserts are deferred into
the batch, and plain ledger inserts (multi-row INSERTs), with a failure undoing only its own
request; a batch stays open a few loop turns, and `stop()` commits what is queued. On
PostgreSQL every batch commits on a store thread (`Offload`), as the gateway runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

import pytest
from tests.support.ledger import run_entry

from nxs.billing import catalog, ledger
from nxs.billing.errors import InsufficientCredit
from nxs.billing.ledger import Entry
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.settle import Settlement, UnitsSource, Verdict
from nxs.billing.writer import COMMIT_TURNS, ROWS_PER_INSERT, LedgerWriter
from nxs.store import customers
from nxs.store.database import Database, IntegrityViolation, Params, Row
from nxs.store.offload import Offload

RULE = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"))


def entry(customer_id: str, entry_id: str) -> Entry:
    return run_entry(customer_id, entry_id, rule=RULE)


def new_customer(db: Database) -> str:
    with db.transaction():
        return customers.create(db, "acme").id


def test_deferred_reservation_inserts_commit_only_for_admitted_requests(
    db: Database, offload: Offload
) -> None:
    cid = new_customer(db)
    catalog.grant_credit(db, cid, Money.parse("0.05"))

    async def main() -> list[bool]:
        writer = LedgerWriter(db, offload)

        async def one(n: int) -> bool:
            item = entry(cid, f"led_{n}")
            try:
                await writer.run(lambda d: ledger.reserve(d, item, None, writer.defer))
            except InsufficientCredit:
                return False
            return True

        return list(await asyncio.gather(*(one(n) for n in range(20))))

    admitted = asyncio.run(main())
    assert sum(admitted) == 5
    rows = db.fetch_all("SELECT id FROM ledger WHERE status = 'reserved'")
    assert sorted(r["id"] for r in rows) == sorted(
        f"led_{n}" for n, ok in enumerate(admitted) if ok
    )
    assert catalog.get_balance(db, cid).reserved == Money.parse("0.05")


def test_a_duplicate_insert_fails_alone_and_the_rest_of_its_batch_commits(
    db: Database, offload: Offload
) -> None:
    cid = new_customer(db)
    rows = [
        ledger.row(entry(cid, "led_a"), "settled"),
        ledger.row(replace(entry(cid, "led_a"), request_id="req_1"), "settled"),
        ledger.row(entry(cid, "led_c"), "settled"),
    ]

    async def main() -> list[object]:
        writer = LedgerWriter(db, offload)
        calls = (writer.execute(ledger.INSERT, row) for row in rows)
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], IntegrityViolation)
    stored = db.fetch_all("SELECT id FROM ledger ORDER BY id")
    assert [r["id"] for r in stored] == ["led_a", "led_c"]


class CountingDatabase:
    """The real database, counting the transactions committed through it (a statement
    outside a transaction commits alone) and the statements sent."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.commits = 0
        self.statements = 0
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._depth += 1
        try:
            with self.inner.transaction():
                yield
        finally:
            self._depth -= 1
        if not self._depth:
            self.commits += 1

    def execute(self, sql: str, params: Params = ()) -> int:
        changed = self.inner.execute(sql, params)
        self._sent()
        return changed

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        self.inner.execute_many(sql, rows)
        self._sent()

    def _sent(self) -> None:
        self.statements += 1
        if not self._depth:
            self.commits += 1

    def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return self.inner.fetch_one(sql, params)

    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return self.inner.fetch_all(sql, params)

    def close(self) -> None:
        self.inner.close()


def settled_row(customer_id: str, n: int, entry_id: str | None = None) -> ledger.Columns:
    """A settled run's row whose numbers all tell `n` (its id, request id, units, cost)."""
    item = replace(
        entry(customer_id, entry_id or f"led_{n:03d}"),
        request_id=f"req_{n}",
        estimated_units=Decimal(n),
        created_at=1.8e9 + n,
    )
    cost = Money(10_000 * n)
    settlement = Settlement(Verdict.CHARGE, Decimal(n), UnitsSource.HEADER, cost, item.reserved)
    return ledger.row(item, "settled", settlement)


def stored_rows(db: Database) -> list[Row]:
    """The ledger in insertion order (each row is created a second after the one before)."""
    return db.fetch_all(
        "SELECT id, request_id, units, estimated_units, cost_micros, created_at"
        " FROM ledger ORDER BY created_at, id"
    )


def test_75_rows_queued_together_land_in_order_with_their_values_in_one_commit(
    db: Database, offload: Offload
) -> None:
    cid = new_customer(db)
    counted = CountingDatabase(db)
    count = 2 * ROWS_PER_INSERT + 11  # two full multi-row INSERTs and a short one

    async def main() -> list[None]:
        writer = LedgerWriter(counted, offload)
        futures = [writer.submit(ledger.INSERT, settled_row(cid, n)) for n in range(count)]
        return list(await asyncio.gather(*futures))

    assert asyncio.run(main()) == [None] * count
    assert counted.commits == 1
    # SQLite: three multi-row INSERTs in one transaction; PostgreSQL: one INSERT of every
    # row, committing alone (one round trip, no BEGIN and COMMIT)
    assert counted.statements == (3 if offload.inline else 1)
    rows = stored_rows(db)
    assert [r["id"] for r in rows] == [f"led_{n:03d}" for n in range(count)]
    for n in (0, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, 2 * ROWS_PER_INSERT, count - 1):
        assert rows[n] == {
            "id": f"led_{n:03d}",
            "request_id": f"req_{n}",
            "units": str(n),
            "estimated_units": str(n),
            "cost_micros": 10_000 * n,
            "created_at": 1.8e9 + n,
        }


@pytest.mark.parametrize("duplicate_at", [9, 40], ids=["same-insert", "later-insert"])
def test_a_duplicate_id_in_a_multi_row_batch_fails_only_its_own_caller(
    db: Database, offload: Offload, duplicate_at: int
) -> None:
    cid = new_customer(db)
    count = 70
    rows = [settled_row(cid, n) for n in range(count)]
    rows[duplicate_at] = settled_row(cid, duplicate_at, entry_id="led_005")

    async def main() -> list[object]:
        writer = LedgerWriter(db, offload)
        futures = [writer.submit(ledger.INSERT, row) for row in rows]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    results = asyncio.run(main())
    assert isinstance(results[duplicate_at], IntegrityViolation)
    assert [r for n, r in enumerate(results) if n != duplicate_at] == [None] * (count - 1)
    stored = stored_rows(db)
    expected = [f"led_{n:03d}" for n in range(count) if n != duplicate_at]
    assert [r["id"] for r in stored] == expected
    assert stored[5]["request_id"] == "req_5"  # the first writer of the id keeps it


@pytest.mark.parametrize("turns", range(1, COMMIT_TURNS))
def test_writes_queued_in_the_next_turns_join_the_same_commit(
    db: Database, offload: Offload, turns: int
) -> None:
    cid = new_customer(db)
    counted = CountingDatabase(db)

    async def main() -> None:
        writer = LedgerWriter(counted, offload)
        loop = asyncio.get_running_loop()
        later: asyncio.Future[asyncio.Future[None]] = loop.create_future()

        def queue_after(left: int) -> None:  # a call_soon chain `turns` turns long
            if left:
                loop.call_soon(queue_after, left - 1)
            else:
                later.set_result(writer.submit(ledger.INSERT, settled_row(cid, 1)))

        first = writer.submit(ledger.INSERT, settled_row(cid, 0))
        loop.call_soon(queue_after, turns - 1)
        second = await later
        await asyncio.gather(first, second)

    asyncio.run(main())
    assert counted.commits == 1
    assert [r["id"] for r in stored_rows(db)] == ["led_000", "led_001"]


def test_a_write_queued_after_the_flush_gets_its_own_commit(db: Database, offload: Offload) -> None:
    cid = new_customer(db)
    counted = CountingDatabase(db)

    async def main() -> None:
        writer = LedgerWriter(counted, offload)
        loop = asyncio.get_running_loop()
        later: asyncio.Future[asyncio.Future[None]] = loop.create_future()

        def queue_after(left: int) -> None:  # lands in the turn that flushes, after the flush
            if left:
                loop.call_soon(queue_after, left - 1)
            else:
                later.set_result(writer.submit(ledger.INSERT, settled_row(cid, 1)))

        first = writer.submit(ledger.INSERT, settled_row(cid, 0))
        loop.call_soon(queue_after, COMMIT_TURNS - 1)
        second = await later
        assert not second.done()
        await asyncio.gather(first, second)
        await writer.execute(ledger.INSERT, settled_row(cid, 2))  # after a resolved write

    asyncio.run(main())
    assert counted.commits == 3
    assert [r["id"] for r in stored_rows(db)] == ["led_000", "led_001", "led_002"]


def test_stop_commits_what_is_queued(
    db: Database, offload: Offload, open_db: Callable[[], Database]
) -> None:
    cid = new_customer(db)

    async def main() -> list[bool]:
        writer = LedgerWriter(db, offload)
        futures = [writer.submit(ledger.INSERT, settled_row(cid, n)) for n in range(3)]
        grant = asyncio.create_task(
            writer.run(lambda d: catalog.grant_credit(d, cid, Money.parse("2")))
        )
        await asyncio.sleep(0)  # the task queues its grant; the batch is still open
        assert not any(f.done() for f in futures)
        await writer.stop()
        done = [f.done() for f in futures]
        await grant
        return done

    assert asyncio.run(main()) == [True, True, True]
    other = open_db()  # a second connection sees the commit
    assert [r["id"] for r in stored_rows(other)] == ["led_000", "led_001", "led_002"]
    assert catalog.get_balance(other, cid).available == Money.parse("2")
