"""Credit slices: a share of a prepaid customer's credit held by one gateway process for
its runs, so a run's admission writes nothing and its settlement is one ledger row.

Without slices a prepaid run costs two commits (the hold, then the settlement) and every
run of a customer, on every replica, updates that customer's one `balances` row twice.
A slice moves a share of the available credit to `reserved` once (a `credit_slices` row
records what it still holds); the process then admits runs against its own count, and
each run's settlement, in the batch that inserts its row born settled, takes the run's
cost out of the slice and out of `reserved` together. Closing a slice gives back what it
still holds. At every commit `available + reserved` is the credit less what was charged.

A slice is taken only when the customer's available credit covers many runs
(`MIN_RUNS_TO_SLICE`); near zero every run holds exactly (`nxs.billing.ledger.reserve`).
A slice whose process died is given back by the reconciler after the reservation TTL,
like a stranded hold; a run that settles after its slice was given back is charged to
the available credit instead. Portable SQL (SQLite ≥ 3.35 and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nxs.billing import ledger
from nxs.billing.ledger_batch import update_from
from nxs.billing.writer import Kind
from nxs.store.database import Database, Params

SLICE_SHARE: Final = 16  # a slice takes at most this fraction of the available credit …
MAX_RUNS_PER_SLICE: Final = 256  # … and at most this many runs' worth
MIN_RUNS_TO_SLICE: Final = 8  # a slice smaller than this many runs is not taken

Deferrer = Callable[[str, Params], None]
Outcome = tuple[bool, Any]

CHARGE_ALL = (
    "UPDATE credit_slices SET micros = micros - v.column2 FROM (VALUES {rows}) AS v"
    " WHERE credit_slices.id = v.column1 RETURNING credit_slices.id"
)
MOVE_ALL = (
    "UPDATE balances SET reserved_micros = reserved_micros - v.column2,"
    " available_micros = available_micros - v.column3"
    " FROM (VALUES {rows}) AS v WHERE balances.customer_id = v.column1"
)


@dataclass(frozen=True, slots=True)
class Charge:
    """A sliced run's settlement: its ledger row, born settled or refunded, and its cost."""

    slice_id: str
    customer_id: str
    cost: int  # micro-dollars, out of the slice
    row: Params  # `ledger.INSERT`'s parameters


def slice_size(available: int, cost: int) -> int:
    """How much a new slice takes of `available` for runs costing about `cost` (0: none)."""
    if cost <= 0:
        return 0
    size = min(available // SLICE_SHARE, cost * MAX_RUNS_PER_SLICE)
    return size if size >= cost * MIN_RUNS_TO_SLICE else 0


def take(db: Database, slice_id: str, customer_id: str, cost: int, created_at: float) -> int:
    """Hold a new slice for runs costing about `cost`; its size, or 0 when the available
    credit is too small to slice (the caller holds per run)."""
    found = db.fetch_one(
        "SELECT available_micros FROM balances WHERE customer_id = ?", (customer_id,)
    )
    size = slice_size(int(found["available_micros"]), cost) if found is not None else 0
    if size == 0 or not ledger.hold(db, customer_id, size):
        return 0
    db.execute(
        "INSERT INTO credit_slices (id, customer_id, micros, created_at) VALUES (?, ?, ?, ?)",
        (slice_id, customer_id, size, created_at),
    )
    return size


def charge_one(db: Database, charge: Charge, defer: Deferrer) -> None:
    """Insert the run's row and take its cost out of its slice and `reserved` (or, if the
    slice was given back meanwhile, out of the available credit)."""
    defer(ledger.INSERT, charge.row)
    if charge.cost == 0:
        return
    held = db.execute(
        "UPDATE credit_slices SET micros = micros - ? WHERE id = ?", (charge.cost, charge.slice_id)
    )
    column = "reserved_micros" if held == 1 else "available_micros"
    db.execute(
        f"UPDATE balances SET {column} = {column} - ? WHERE customer_id = ?",
        (charge.cost, charge.customer_id),
    )


def charge_all(db: Database, charges: Sequence[Charge], defer: Deferrer) -> list[Outcome]:
    """`charge_one` for a batch: one UPDATE of the slices and one of the balances."""
    per_slice: dict[str, int] = {}
    for charge in charges:
        defer(ledger.INSERT, charge.row)
        if charge.cost:
            per_slice[charge.slice_id] = per_slice.get(charge.slice_id, 0) + charge.cost
    held = {row["id"] for row in update_from(db, CHARGE_ALL, list(per_slice.items()))}
    sums: dict[str, list[int]] = {}
    for charge in charges:
        if charge.cost:
            total = sums.setdefault(charge.customer_id, [0, 0])
            total[0 if charge.slice_id in held else 1] += charge.cost
    rows = [(customer, reserved, available) for customer, (reserved, available) in sums.items()]
    update_from(db, MOVE_ALL, rows, returning=False)
    return [(True, None)] * len(charges)


def give_back(db: Database, slice_id: str) -> int | None:
    """Close a slice: what it still holds goes back to the available credit (it may be
    less than nothing when runs cost more than estimated). Returns that amount, or None
    when the slice was given back already."""
    with db.transaction():
        found = db.fetch_one(
            "SELECT customer_id, micros FROM credit_slices WHERE id = ?", (slice_id,)
        )
        if found is None:  # given back already (the reconciler, after the TTL)
            return None
        micros = int(found["micros"])
        db.execute(
            "UPDATE balances SET reserved_micros = reserved_micros - ?,"
            " available_micros = available_micros + ? WHERE customer_id = ?",
            (micros, micros, found["customer_id"]),
        )
        db.execute("DELETE FROM credit_slices WHERE id = ?", (slice_id,))
        return micros


def stale(db: Database, before: float, limit: int = 100) -> list[tuple[str, str, int]]:
    """(id, customer, micros) of slices taken before `before`: their process died."""
    rows = db.fetch_all(
        "SELECT id, customer_id, micros FROM credit_slices WHERE created_at < ?"
        " ORDER BY created_at LIMIT ?",
        (before, limit),
    )
    return [(row["id"], row["customer_id"], int(row["micros"])) for row in rows]


# A sliced run was answered by fal: its charge is held through an outage, like a row.
CHARGE: Kind[Charge] = Kind(charge_one, charge_all, held=lambda _: None)
