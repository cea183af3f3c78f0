"""Holds a dead process left behind: rows still `reserved` past the TTL are refunded once,
their hold back in the balance; young holds, and rows a late answer settled or attached
first, are left alone — also with two workers releasing the same rows at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from tests.support.ledger import funded_customer

from nxs.billing import catalog, ledger
from nxs.billing.ledger import Entry
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.settle import Outcome, settle
from nxs.store.database import Database

RULE = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"))
TTL = 3600.0


def prepaid(db: Database, credit: str = "1") -> str:
    return funded_customer(db, "acme", credit)


def held(db: Database, cid: str, name: str, age: float, amount: str, kind: str = "run") -> Entry:
    """A hold reserved `age` seconds ago, never answered (as a killed process leaves it)."""
    entry = Entry(
        id=f"led_{name}",
        customer_id=cid,
        api_key_id="key_1",
        endpoint=RULE.pattern,
        kind=kind,
        rule=RULE,
        multiplier=Decimal(1),
        estimated_units=Decimal(1),
        reserved=Money.parse(amount),
        created_at=time.time() - age,
    )
    ledger.reserve(db, entry)
    return entry


def balance(db: Database, cid: str) -> tuple[str, str]:
    found = catalog.get_balance(db, cid)
    return str(found.available), str(found.reserved)


def status(db: Database, entry: Entry) -> dict[str, object]:
    row = db.fetch_one(
        "SELECT status, units, units_source, cost_micros FROM ledger WHERE id = ?", (entry.id,)
    )
    assert row is not None
    return row


def test_hold_older_than_the_ttl_is_refunded_and_the_young_one_kept(db: Database) -> None:
    cid = prepaid(db)
    old = held(db, cid, "old", age=TTL + 60, amount="0.04")
    young = held(db, cid, "young", age=10, amount="0.02")
    assert balance(db, cid) == ("0.94", "0.06")
    stale = ledger.stranded(db, time.time() - TTL)
    assert [entry.id for entry in stale] == [old.id]
    assert ledger.release(db, stale) == stale
    assert balance(db, cid) == ("0.98", "0.02")  # only the young hold is still held
    assert status(db, old) == {
        "status": "refunded",
        "units": "0",
        "units_source": "none",
        "cost_micros": 0,
    }
    assert status(db, young)["status"] == "reserved"
    assert ledger.stranded(db, time.time() - TTL) == []


def late_charge(db: Database, entry: Entry) -> None:
    done = settle(
        Outcome.COMPLETED,
        RULE,
        reserved=entry.reserved,
        estimated_units=Decimal(4),
        multiplier=Decimal(1),
        body={"images": [{}, {}, {}]},
    )
    assert ledger.settle(db, entry, done) is True


def late_submit_answer(db: Database, entry: Entry) -> None:
    ledger.attach(db, entry, "req-late", "up_1", time.time() + 60)


@pytest.mark.parametrize(
    ("answer", "after"),
    [(late_charge, ("0.97", "0.00")), (late_submit_answer, ("0.96", "0.04"))],
    ids=["run settled", "submit attached"],
)
def test_a_row_a_late_answer_closed_first_is_not_released(
    db: Database, answer: Callable[[Database, Entry], None], after: tuple[str, str]
) -> None:
    cid = prepaid(db)
    entry = held(db, cid, "late", age=TTL + 60, amount="0.04", kind="queue")
    stale = ledger.stranded(db, time.time() - TTL)  # the reconciler saw it still reserved…
    answer(db, entry)  # …then the upstream's answer arrived
    assert ledger.release(db, stale) == []
    assert balance(db, cid) == after  # charged 3 images, or still held while fal runs it
    assert status(db, entry)["status"] != "refunded"


def test_a_released_hold_is_not_settled_again_by_a_later_answer(db: Database) -> None:
    cid = prepaid(db)
    entry = held(db, cid, "gone", age=TTL + 60, amount="0.04")
    ledger.release(db, ledger.stranded(db, time.time() - TTL))
    done = settle(
        Outcome.COMPLETED,
        RULE,
        reserved=entry.reserved,
        estimated_units=Decimal(4),
        multiplier=Decimal(1),
        body={"images": [{}]},
    )
    assert ledger.settle(db, entry, done) is False
    assert balance(db, cid) == ("1.00", "0.00")


def test_two_workers_releasing_the_same_holds_return_each_once(
    open_db: Callable[[], Database],
) -> None:
    first = open_db()
    second = open_db()  # another worker's connection
    cid = prepaid(first)
    for n in range(3):
        held(first, cid, f"old{n}", age=TTL + n, amount="0.10")
    before = time.time() - TTL
    seen = ledger.stranded(first, before), ledger.stranded(second, before)
    released = ledger.release(first, seen[0]) + ledger.release(second, seen[1])
    assert sorted(entry.id for entry in released) == ["led_old0", "led_old1", "led_old2"]
    assert balance(first, cid) == ("1.00", "0.00")
