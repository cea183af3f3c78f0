"""Credit slices (`nxs.billing.slices`, `nxs.gateway.slicer`) on SQLite and PostgreSQL: a
slice is cut only from credit that covers many runs, its runs' charges come out of it and
out of `reserved` together (batched or one by one, the same), a run that settles after
its slice was given back is charged to the available credit, and through the
group-commit writer 200 concurrent runs share one slice and the balance ends exact.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from tests.support.ledger import funded_customer, run_entry

from nxs.billing import catalog, ledger, slices
from nxs.billing.ledger import Entry
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.settle import Outcome, settle
from nxs.billing.writer import LedgerWriter
from nxs.gateway.slicer import Slicer
from nxs.store.database import Database, Params
from nxs.store.offload import Offload

RULE = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"), header_units=True)
COST = 10_000  # one image at 0.01 USD, in micro-dollars


def balance(db: Database, cid: str) -> tuple[str, str]:
    found = catalog.get_balance(db, cid)
    return str(found.available), str(found.reserved)


def run(cid: str, number: int) -> Entry:
    return run_entry(cid, f"led_{cid}_{number}", rule=RULE)


def charge(slice_id: str, entry: Entry, images: int) -> slices.Charge:
    """The run charged for `images` (0: a refund)."""
    outcome = Outcome.COMPLETED if images else Outcome.UPSTREAM_5XX
    headers = {"x-fal-billable-units": str(images)}
    settlement = settle(
        outcome,
        RULE,
        reserved=entry.reserved,
        estimated_units=entry.estimated_units,
        multiplier=Decimal(1),
        headers=headers,
    )
    row = ledger.row(entry, ledger.closed_status(settlement), settlement)
    return slices.Charge(slice_id, entry.customer_id, settlement.cost.micros, row)


def apply(db: Database, charges: list[slices.Charge], batched: bool) -> None:
    """The charges as the writer applies them: batched or one by one, then the rows they
    deferred, in one transaction."""
    deferred: list[tuple[str, Params]] = []

    def defer(sql: str, params: Params) -> None:
        deferred.append((sql, params))

    with db.transaction():
        if batched:
            assert slices.charge_all(db, charges, defer) == [(True, None)] * len(charges)
        else:
            for one in charges:
                slices.charge_one(db, one, defer)
        for sql, params in deferred:
            db.execute(sql, params)


def rows(db: Database, cid: str) -> list[tuple[str, int]]:
    found = db.fetch_all(
        "SELECT status, cost_micros FROM ledger WHERE customer_id = ? ORDER BY id", (cid,)
    )
    return [(row["status"], row["cost_micros"]) for row in found]


def test_a_slice_is_cut_only_from_credit_that_covers_many_runs(db: Database) -> None:
    small, large = funded_customer(db, "small", "1"), funded_customer(db, "large", "100")
    with db.transaction():
        assert slices.take(db, "slc_small", small, COST, 1.8e9) == 0  # 100 runs: per run
        assert slices.take(db, "slc_large", large, COST, 1.8e9) == 256 * COST
    assert balance(db, small) == ("1.00", "0.00")
    assert balance(db, large) == ("97.44", "2.56")
    assert slices.stale(db, 1.9e9) == [("slc_large", large, 256 * COST)]


def test_charges_batched_or_one_by_one_move_the_same_credit(db: Database) -> None:
    """Two images, a refund and a run of three images (more than its one estimated), then
    the slice given back: the ledger says 0.05 spent; the balance says the same."""
    outcomes = []
    for name, batched in (("one", False), ("all", True)):
        cid = funded_customer(db, name, "100")
        with db.transaction():
            slices.take(db, f"slc_{name}", cid, COST, 1.8e9)
        made = [
            charge(f"slc_{name}", run(cid, 1), 1),
            charge(f"slc_{name}", run(cid, 2), 1),
            charge(f"slc_{name}", run(cid, 3), 0),
            charge(f"slc_{name}", run(cid, 4), 3),
        ]
        apply(db, made, batched)
        assert slices.give_back(db, f"slc_{name}") == 256 * COST - 5 * COST
        outcomes.append((balance(db, cid), rows(db, cid)))
    expected_rows = [("settled", COST), ("settled", COST), ("refunded", 0), ("settled", 3 * COST)]
    assert outcomes == [(("99.95", "0.00"), expected_rows)] * 2
    assert slices.give_back(db, "slc_one") is None  # given back once


@pytest.mark.parametrize("batched", [False, True])
def test_a_run_settling_after_its_slice_was_given_back_is_charged_to_available_credit(
    db: Database, batched: bool
) -> None:
    cid = funded_customer(db, "late", "100")
    with db.transaction():
        slices.take(db, "slc_late", cid, COST, 1.0)
    assert [found[0] for found in slices.stale(db, 2.0)] == ["slc_late"]
    slices.give_back(db, "slc_late")  # the reconciler, its process presumed dead
    assert balance(db, cid) == ("100.00", "0.00")
    late = [charge("slc_late", run(cid, 1), 1), charge("slc_late", run(cid, 2), 2)]
    apply(db, late, batched)
    assert balance(db, cid) == ("99.97", "0.00")


def test_200_concurrent_runs_share_one_slice_and_the_balance_ends_exact(
    db: Database, offload: Offload
) -> None:
    cid = funded_customer(db, "busy", "100")

    async def scenario() -> tuple[list[str | None], tuple[str, str]]:
        writer = LedgerWriter(db, offload)
        slicer = Slicer(writer)
        admitted = await asyncio.gather(*(slicer.admit(cid, COST) for _ in range(200)))
        during = balance(db, cid)
        for number, held in enumerate(admitted):
            assert held is not None
            await writer.apply(slices.CHARGE, charge(held.id, run(cid, number), 1))
            slicer.settled(held, COST, COST)
        await slicer.stop()
        await writer.stop()
        return [held.id if held else None for held in admitted], during

    ids, during = asyncio.run(scenario())
    assert len(set(ids)) == 1  # one slice, taken once
    assert during == ("97.44", "2.56")  # the slice held, nothing charged yet
    assert balance(db, cid) == ("98.00", "0.00")
    assert rows(db, cid) == [("settled", COST)] * 200
    assert slices.stale(db, 2e9) == []


def test_credit_too_small_to_slice_is_held_per_run(db: Database, offload: Offload) -> None:
    cid = funded_customer(db, "thrifty", "0.10")

    async def scenario() -> list[object]:
        writer = LedgerWriter(db, offload)
        slicer = Slicer(writer)
        admitted = [await slicer.admit(cid, COST) for _ in range(3)]
        await writer.stop()
        return list(admitted)

    assert asyncio.run(scenario()) == [None, None, None]
    assert balance(db, cid) == ("0.10", "0.00")
