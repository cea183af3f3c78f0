"""The ledger: one row per billable request, and the balance moves that go with it.

Plain functions over a `Database`, run by the group-commit writer (`nxs.billing.writer`)
inside one transaction per batch. `reserve` is one conditional UPDATE (atomic under
concurrency: no check-then-act); `settle` changes a row only while it is open, so a
result fetch, a webhook and the reconciler may race and a request is charged once.
Metered plans hold nothing (`reserved_micros = 0`) and never touch `balances`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from nxs.billing.errors import InsufficientCredit
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, parse_unit
from nxs.billing.settle import Settlement, Verdict
from nxs.store import claims
from nxs.store.database import Database, Params, Row
from nxs.store.ids import now

Deferrer = Callable[[str, Params], None]
OPEN = ("reserved", "pending")
COLUMNS = (
    "id, request_id, customer_id, api_key_id, upstream_key_id, endpoint, kind, status, unit,"
    " unit_price, multiplier, estimated_units, reserved_micros, created_at, checks"
)


@dataclass(slots=True)
class Entry:
    """An open ledger row as the gateway and the reconciler handle it (treated as
    immutable — changed only by `dataclasses.replace`; not frozen, for a cheaper
    constructor on the hot path).
    """

    id: str
    customer_id: str
    api_key_id: str
    endpoint: str
    kind: str  # "run", "queue" or "realtime"
    rule: PriceRule
    multiplier: Decimal
    estimated_units: Decimal
    reserved: Money  # held against the balance (0 on metered plans)
    created_at: float
    request_id: str | None = None
    upstream_key_id: str | None = None
    checks: int = 0


def period_of(moment: float) -> str:
    """The allowance period ('YYYY-MM', UTC) a time belongs to."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m")


def reserve(
    db: Database, entry: Entry, monthly: Money | None = None, defer: Deferrer | None = None
) -> None:
    """Hold `entry.reserved` against the balance and insert the row `reserved`.

    `monthly`: the plan's allowance, renewed (the unspent rest lapses) on the first
    reservation of a new month. InsufficientCredit when the balance cannot cover it.
    `defer`: the group-commit writer's, to batch the insert with others of its batch.
    """
    if monthly is not None:
        _renew_allowance(db, entry.customer_id, monthly, period_of(entry.created_at))
    if not hold(db, entry.customer_id, entry.reserved.micros):
        raise InsufficientCredit()
    if defer is None:
        insert(db, entry, "reserved")
    else:
        defer(INSERT, row(entry, "reserved"))


def hold(db: Database, customer_id: str, cost: int) -> bool:
    """Move `cost` micro-dollars from available to reserved (the allowance first), only if
    the balance covers it; False (nothing changed) when it does not."""
    changed = db.execute(
        "UPDATE balances SET available_micros = available_micros - ?,"
        " reserved_micros = reserved_micros + ?,"
        " allowance_left_micros = CASE WHEN allowance_left_micros > ?"
        " THEN allowance_left_micros - ? ELSE 0 END"
        " WHERE customer_id = ? AND available_micros >= ?",
        (cost, cost, cost, cost, customer_id, cost),
    )
    return changed == 1


def _renew_allowance(db: Database, customer_id: str, monthly: Money, period: str) -> None:
    db.execute(
        "INSERT INTO balances (customer_id) VALUES (?) ON CONFLICT DO NOTHING", (customer_id,)
    )
    db.execute(
        "UPDATE balances SET available_micros = available_micros - allowance_left_micros + ?,"
        " allowance_left_micros = ?, period = ? WHERE customer_id = ? AND period <> ?",
        (monthly.micros, monthly.micros, period, customer_id, period),
    )


# Columns in three groups so the hot path can reuse the first two (`static`, `closing`):
# what a (customer, key, endpoint, price) fixes, what a settlement fixes, and the request's.
INSERT = (
    "INSERT INTO ledger (customer_id, api_key_id, endpoint, kind, unit, unit_price, multiplier,"
    " status, units, units_source, cost_micros, estimated_units, reserved_micros,"
    " id, request_id, upstream_key_id, created_at, settled_at, latency_ms, next_check_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
Columns = tuple[object, ...]


def insert(
    db: Database,
    entry: Entry,
    status: str,
    settlement: Settlement | None = None,
    next_check_at: float | None = None,
) -> None:
    """Insert the row; with a settlement it is born settled or refunded (metered plans)."""
    db.execute(INSERT, row(entry, status, settlement, next_check_at))


def row(
    entry: Entry,
    status: str,
    settlement: Settlement | None = None,
    next_check_at: float | None = None,
) -> Columns:
    """The `INSERT` parameters of `entry`."""
    closing = closing_columns(status, settlement, entry.estimated_units, entry.reserved)
    settled_at = now() if settlement is not None else None
    return static_columns(entry) + closing + request_columns(entry, settled_at, next_check_at)


def closed_status(settlement: Settlement) -> str:
    """The status a settlement closes a row with."""
    return "refunded" if settlement.verdict is Verdict.REFUND else "settled"


def static_columns(entry: Entry) -> Columns:
    """The columns every request of one customer, key, endpoint and price shares."""
    rule = entry.rule
    return (
        entry.customer_id,
        entry.api_key_id,
        entry.endpoint,
        entry.kind,
        rule.unit.value,
        str(rule.unit_price),
        str(entry.multiplier),
    )


def closing_columns(
    status: str, settlement: Settlement | None, estimated_units: Decimal, reserved: Money
) -> Columns:
    """The columns a settlement (or none yet) decides."""
    if settlement is None:
        return (status, None, None, None, str(estimated_units), reserved.micros)
    return (
        status,
        str(settlement.units),
        settlement.source.value,
        settlement.cost.micros,
        str(estimated_units),
        reserved.micros,
    )


def request_columns(
    entry: Entry,
    settled_at: float | None,
    next_check_at: float | None = None,
    *,
    request_id: str | None = None,
    upstream_key_id: str | None = None,
) -> Columns:
    """The columns of this one request (request and upstream key ids overridable, so the
    hot path need not copy the entry to fill them in)."""
    latency = None if settled_at is None else latency_ms(entry.created_at, settled_at)
    return (
        entry.id,
        entry.request_id or request_id,
        entry.upstream_key_id or upstream_key_id,
        entry.created_at,
        settled_at,
        latency,
        next_check_at,
    )


def attach(
    db: Database, entry: Entry, request_id: str, upstream_key_id: str, next_check_at: float
) -> Entry:
    """A reserved queue row gets its request id and becomes `pending` (the reconciler's)."""
    db.execute(
        "UPDATE ledger SET request_id = ?, upstream_key_id = ?, status = 'pending',"
        " next_check_at = ? WHERE id = ? AND status = 'reserved'",
        (request_id, upstream_key_id, next_check_at, entry.id),
    )
    return replace(entry, request_id=request_id, upstream_key_id=upstream_key_id)


def settle(db: Database, entry: Entry, settlement: Settlement) -> bool:
    """Apply a CHARGE or REFUND once; False when the row was already closed (or a HOLD)."""
    if settlement.verdict is Verdict.HOLD:
        return False
    status = closed_status(settlement)
    changed = db.execute(
        "UPDATE ledger SET status = ?, units = ?, units_source = ?, cost_micros = ?,"
        " settled_at = ?, latency_ms = ?, next_check_at = NULL,"
        " request_id = COALESCE(request_id, ?), upstream_key_id = COALESCE(upstream_key_id, ?)"
        " WHERE id = ? AND status IN ('reserved', 'pending')",
        (
            status,
            str(settlement.units),
            settlement.source.value,
            settlement.cost.micros,
            now(),
            _latency(entry),
            entry.request_id,
            entry.upstream_key_id,
            entry.id,
        ),
    )
    if changed != 1:
        return False
    if entry.reserved.micros:
        db.execute(
            "UPDATE balances SET reserved_micros = reserved_micros - ?,"
            " available_micros = available_micros + ? WHERE customer_id = ?",
            (entry.reserved.micros, settlement.release.micros, entry.customer_id),
        )
    return True


def find_open(db: Database, request_id: str) -> Entry | None:
    """The open (reserved or pending) row of a queued request id, if any."""
    row = db.fetch_one(
        f"SELECT {COLUMNS} FROM ledger WHERE request_id = ? AND kind = 'queue'"
        " AND status IN ('reserved', 'pending')",
        (request_id,),
    )
    return entry_of(row) if row else None


def claim_due(db: Database, moment: float, lease: float, limit: int = 100) -> list[Entry]:
    """Pending queue rows whose next check is due, oldest first (the reconciler's queue),
    claimed for `lease` seconds: another worker or replica does not check them meanwhile."""
    rows = claims.claim_due(
        db,
        f"SELECT {COLUMNS} FROM ledger WHERE status = 'pending' AND kind = 'queue'"
        " AND next_check_at <= ? ORDER BY next_check_at LIMIT ?",
        (moment, limit),
        table="ledger",
        due_column="next_check_at",
        lease_until=moment + lease,
    )
    return [entry_of(row) for row in rows]


def reschedule(db: Database, entry_id: str, next_check_at: float) -> None:
    db.execute(
        "UPDATE ledger SET next_check_at = ?, checks = checks + 1"
        " WHERE id = ? AND status = 'pending'",
        (next_check_at, entry_id),
    )


def entry_of(row: Row) -> Entry:
    rule = PriceRule(row["endpoint"], parse_unit(row["unit"]), Decimal(row["unit_price"]))
    return Entry(
        id=row["id"],
        customer_id=row["customer_id"],
        api_key_id=row["api_key_id"],
        endpoint=row["endpoint"],
        kind=row["kind"],
        rule=rule,
        multiplier=Decimal(row["multiplier"]),
        estimated_units=Decimal(row["estimated_units"]),
        reserved=Money(int(row["reserved_micros"])),
        created_at=float(row["created_at"]),
        request_id=row["request_id"],
        upstream_key_id=row["upstream_key_id"],
        checks=int(row["checks"]),
    )


def _latency(entry: Entry) -> int:
    return latency_ms(entry.created_at, now())


def latency_ms(created_at: float, ended_at: float) -> int:
    """Milliseconds from a request's admission to its settlement (never negative)."""
    return max(0, round((ended_at - created_at) * 1000))


def recorded(db: Database, request_id: str) -> bool:
    """Whether a queued request's ledger row carries this fal request id yet (open or closed)."""
    sql = "SELECT 1 FROM ledger WHERE request_id = ? AND kind = 'queue'"  # the partial index
    return db.fetch_one(sql, (request_id,)) is not None


def check_at(db: Database, entry_id: str, moment: float | None) -> None:
    """Move a pending row's next reconciler check to `moment` (not counted as a check);
    None takes it out of the reconciler's queue (given up on: the operator's to resolve).
    """
    db.execute(
        "UPDATE ledger SET next_check_at = ? WHERE id = ? AND status = 'pending'",
        (moment, entry_id),
    )


def stranded(db: Database, before: float, limit: int = 100) -> list[Entry]:
    """Rows still `reserved` that were created before `before`, oldest first: holds whose
    process died between the reservation and the upstream's answer (index `ledger_reserved`).
    """
    rows = db.fetch_all(
        f"SELECT {COLUMNS} FROM ledger WHERE status = 'reserved' AND created_at < ?"
        " ORDER BY created_at LIMIT ?",
        (before, limit),
    )
    return [entry_of(row) for row in rows]


def release(db: Database, entries: list[Entry]) -> list[Entry]:
    """Refund stranded holds in one transaction: each row still `reserved` becomes
    `refunded` (nothing counted, cost 0) and its whole hold goes back to the balance, as a
    refund by `settle` does. A row settled or attached meanwhile is left alone. Returns the
    entries released.
    """
    released: list[Entry] = []
    moment = now()
    with db.transaction():
        for entry in entries:
            changed = db.execute(
                "UPDATE ledger SET status = 'refunded', units = '0', units_source = 'none',"
                " cost_micros = 0, settled_at = ?, latency_ms = ?, next_check_at = NULL"
                " WHERE id = ? AND status = 'reserved'",
                (moment, latency_ms(entry.created_at, moment), entry.id),
            )
            if changed != 1:
                continue
            if entry.reserved.micros:
                db.execute(
                    "UPDATE balances SET reserved_micros = reserved_micros - ?,"
                    " available_micros = available_micros + ? WHERE customer_id = ?",
                    (entry.reserved.micros, entry.reserved.micros, entry.customer_id),
                )
            released.append(entry)
    return released
