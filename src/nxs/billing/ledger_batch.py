"""A whole batch's reservations, and its settlements, each in a few statements.

On a network database every statement is a round trip, and a group-commit batch of N
prepaid calls would cost 3N of them (one conditional balance UPDATE per reservation, a
ledger UPDATE and a balance UPDATE per settlement). Here the batch's reservations are one
UPDATE over all its customers (each customer's costs summed, applied only where the
balance covers the sum) with a per-call fallback for the few customers it did not cover,
and its settlements are one ledger UPDATE and one balance UPDATE, both joined to a
`VALUES` list. The outcome is the one the per-call functions of `nxs.billing.ledger`
would give the same calls in the same batch (which of several racing calls a short
balance covers is their order in the batch); the tests hold both to each other on both
backends. The SQL (`UPDATE … FROM (VALUES …)`, `RETURNING`) is the same on SQLite ≥ 3.35
and PostgreSQL; the group-commit writer uses it on PostgreSQL only, where it pays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from nxs.billing import ledger
from nxs.billing.errors import InsufficientCredit
from nxs.billing.ledger import Entry
from nxs.billing.settle import Settlement, Verdict
from nxs.billing.writer import Kind
from nxs.store.database import Database, Params
from nxs.store.ids import now

Deferrer = Callable[[str, Params], None]
Outcome = tuple[bool, Any]
Settling = tuple[Entry, Settlement]
Attaching = tuple[Entry, str, str, float]  # entry, fal's request id, upstream key, next check

RESERVE_ALL = (
    "UPDATE balances SET available_micros = available_micros - v.column2,"
    " reserved_micros = reserved_micros + v.column2,"
    " allowance_left_micros = CASE WHEN allowance_left_micros > v.column2"
    " THEN allowance_left_micros - v.column2 ELSE 0 END"
    " FROM (VALUES {rows}) AS v"
    " WHERE balances.customer_id = v.column1 AND balances.available_micros >= v.column2"
    " RETURNING balances.customer_id"
)
SETTLE_ALL = (
    "UPDATE ledger SET status = v.column2, units = v.column3, units_source = v.column4,"
    " cost_micros = v.column5, settled_at = v.column6, latency_ms = v.column7,"
    " next_check_at = NULL, request_id = COALESCE(ledger.request_id, v.column8),"
    " upstream_key_id = COALESCE(ledger.upstream_key_id, v.column9)"
    " FROM (VALUES {rows}) AS v"
    " WHERE ledger.id = v.column1 AND ledger.status IN ('reserved', 'pending')"
    " RETURNING ledger.id"
)
ATTACH_ALL = (
    "UPDATE ledger SET request_id = v.column2, upstream_key_id = v.column3,"
    " status = 'pending', next_check_at = v.column4"
    " FROM (VALUES {rows}) AS v WHERE ledger.id = v.column1 AND ledger.status = 'reserved'"
)
RELEASE_ALL = (
    "UPDATE balances SET reserved_micros = reserved_micros - v.column2,"
    " available_micros = available_micros + v.column3"
    " FROM (VALUES {rows}) AS v WHERE balances.customer_id = v.column1"
)


def reserve_one(db: Database, entry: Entry, defer: Deferrer) -> None:
    """One reservation (no monthly allowance), as `ledger.reserve` makes it."""
    ledger.reserve(db, entry, None, defer)


def reserve_all(db: Database, entries: Sequence[Entry], defer: Deferrer) -> list[Outcome]:
    """Reserve every entry that its balance covers; the others get InsufficientCredit.

    Never raises for one entry: a refusal changes nothing, so the batch's transaction goes on.
    """
    totals: dict[str, int] = {}
    for entry in entries:
        totals[entry.customer_id] = totals.get(entry.customer_id, 0) + entry.reserved.micros
    covered = {row["customer_id"] for row in update_from(db, RESERVE_ALL, list(totals.items()))}
    outcomes: list[Outcome] = []
    for entry in entries:
        held = entry.customer_id in covered or ledger.hold(
            db, entry.customer_id, entry.reserved.micros
        )
        if held:
            defer(ledger.INSERT, ledger.row(entry, "reserved"))
        outcomes.append((True, None) if held else (False, InsufficientCredit()))
    return outcomes


def settle_one(db: Database, settling: Settling, defer: Deferrer) -> bool:
    """One settlement, as `ledger.settle` makes it."""
    entry, settlement = settling
    return ledger.settle(db, entry, settlement)


def settle_all(db: Database, batch: Sequence[Settling], defer: Deferrer) -> list[Outcome]:
    """Apply each CHARGE or REFUND to its still-open row, once; True where a row changed.

    The same row twice in one batch (a result fetch racing a webhook) counts once: the
    first occurrence's settlement applies, as it would in order.
    """
    firsts: dict[str, Settling] = {}
    for entry, settlement in batch:
        if settlement.verdict is not Verdict.HOLD:
            firsts.setdefault(entry.id, (entry, settlement))
    moment = now()
    rows = [_settle_row(entry, settlement, moment) for entry, settlement in firsts.values()]
    changed = {row["id"] for row in update_from(db, SETTLE_ALL, rows)}
    _release_holds(db, [firsts[entry_id] for entry_id in changed])
    outcomes: list[Outcome] = []
    for entry, settlement in batch:
        first = firsts.get(entry.id)
        applied = entry.id in changed and first is not None and first[1] is settlement
        outcomes.append((True, applied))
        if applied:
            changed.discard(entry.id)  # a later duplicate of the same settlement: not again
    return outcomes


def _settle_row(entry: Entry, settlement: Settlement, moment: float) -> Params:
    return (
        entry.id,
        ledger.closed_status(settlement),
        str(settlement.units),
        settlement.source.value,
        settlement.cost.micros,
        moment,
        ledger.latency_ms(entry.created_at, moment),
        entry.request_id,
        entry.upstream_key_id,
    )


def _release_holds(db: Database, settled: list[Settling]) -> None:
    """What the settled rows held goes back to their balances (the unspent part available)."""
    sums: dict[str, list[int]] = {}
    for entry, settlement in settled:
        if entry.reserved.micros:
            held = sums.setdefault(entry.customer_id, [0, 0])
            held[0] += entry.reserved.micros
            held[1] += settlement.release.micros
    rows = [(customer, held, release) for customer, (held, release) in sums.items()]
    if rows:
        update_from(db, RELEASE_ALL, rows, returning=False)


def update_from(
    db: Database, template: str, rows: Sequence[Params], *, returning: bool = True
) -> list[Any]:
    """Run `template` with its `VALUES` list filled by `rows` (all of one width)."""
    if not rows:
        return []
    width = len(rows[0])
    values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(rows))
    sql = template.format(rows=values)
    params = tuple(value for row in rows for value in row)
    if returning:
        return db.fetch_all(sql, params)
    db.execute(sql, params)
    return []


def attach_one(db: Database, attaching: Attaching, defer: Deferrer) -> Entry:
    """One queued request's row gets fal's request id, as `ledger.attach` does."""
    return ledger.attach(db, *attaching)


def attach_all(db: Database, batch: Sequence[Attaching], defer: Deferrer) -> list[Outcome]:
    """Every reserved row of the batch gets its request id and becomes `pending`."""
    rows = [(entry.id, request_id, key_id, check) for entry, request_id, key_id, check in batch]
    update_from(db, ATTACH_ALL, rows, returning=False)
    return [(True, attached(item)) for item in batch]


def attached(attaching: Attaching) -> Entry:
    """The entry as attached (what `attach_one` returns, without the database)."""
    entry, request_id, upstream_key_id, _ = attaching
    return replace(entry, request_id=request_id, upstream_key_id=upstream_key_id)


# Settlements and attachments are of calls fal already answered: held through an outage.
RESERVE: Kind[Entry] = Kind(reserve_one, reserve_all)
SETTLE: Kind[Settling] = Kind(settle_one, settle_all, held=lambda _: False)
ATTACH: Kind[Attaching] = Kind(attach_one, attach_all, held=attached)
