"""The group-commit writer's batched paths: reservations whose row inserts are deferred into
one `executemany`, and plain ledger inserts, with a failure undoing only its own request.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from nxs.billing import catalog, ledger
from nxs.billing.errors import InsufficientCredit
from nxs.billing.ledger import Entry
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.writer import LedgerWriter
from nxs.store import customers
from nxs.store.database import Database, IntegrityViolation
from nxs.store.migrations import migrate
from nxs.store.sqlite import SqliteDatabase

RULE = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    migrate(database)
    return database


def entry(customer_id: str, entry_id: str) -> Entry:
    return Entry(
        id=entry_id,
        customer_id=customer_id,
        api_key_id="key_1",
        endpoint=RULE.pattern,
        kind="run",
        rule=RULE,
        multiplier=Decimal(1),
        estimated_units=Decimal(1),
        reserved=Money.parse("0.01"),
        created_at=1.8e9,
    )


def new_customer(db: Database) -> str:
    with db.transaction():
        return customers.create(db, "acme").id


def test_deferred_reservation_inserts_commit_only_for_admitted_requests(db: Database) -> None:
    cid = new_customer(db)
    catalog.grant_credit(db, cid, Money.parse("0.05"))

    async def main() -> list[bool]:
        writer = LedgerWriter(db)

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


def test_a_duplicate_insert_fails_alone_and_the_rest_of_its_batch_commits(db: Database) -> None:
    cid = new_customer(db)
    rows = [
        ledger.row(entry(cid, "led_a"), "settled"),
        ledger.row(replace(entry(cid, "led_a"), request_id="req_1"), "settled"),
        ledger.row(entry(cid, "led_c"), "settled"),
    ]

    async def main() -> list[object]:
        writer = LedgerWriter(db)
        calls = (writer.execute(ledger.INSERT, row) for row in rows)
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], IntegrityViolation)
    stored = db.fetch_all("SELECT id FROM ledger ORDER BY id")
    assert [r["id"] for r in stored] == ["led_a", "led_c"]
