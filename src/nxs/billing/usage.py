"""Usage read from the ledger: rows for export, and totals by customer, key, endpoint or day.

For `nxs usage` and the admin API. Costs are micro-dollars (`Money`); open rows count
their reservation as pending, settled rows their cost, refunded rows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from nxs.billing.money import Money
from nxs.errors import BadRequest
from nxs.store.database import Database, Row

GroupBy = Literal["customer", "key", "endpoint", "day"]
GROUPS: Final[dict[str, str]] = {
    "customer": "c.name",
    "key": "l.api_key_id",
    "endpoint": "l.endpoint",
    "day": "DATE(l.created_at, 'unixepoch')",
}
ROW_SQL: Final = """
    SELECT l.id, l.request_id, c.name AS customer, l.api_key_id, l.upstream_key_id, l.endpoint,
           l.kind, l.status, l.unit, l.unit_price, l.multiplier, l.units, l.units_source,
           l.reserved_micros, l.cost_micros, l.latency_ms, l.created_at, l.settled_at
    FROM ledger l JOIN customers c ON c.id = l.customer_id
"""


@dataclass(frozen=True)
class UsageRow:
    """One ledger row as reported (a billable request)."""

    id: str
    request_id: str | None
    customer: str
    api_key_id: str
    upstream_key_id: str | None
    endpoint: str
    kind: str
    status: str  # reserved | pending | settled | refunded
    unit: str
    unit_price: str
    multiplier: str
    units: str | None
    units_source: str | None
    reserved: Money
    cost: Money | None
    latency_ms: int | None
    created_at: float
    settled_at: float | None


@dataclass(frozen=True)
class UsageTotal:
    """Totals for one group: requests, settled cost, and what is still reserved."""

    group: str
    requests: int
    settled: int
    refunded: int
    cost: Money
    pending: Money


def _where(
    customer_id: str | None, since: float | None, until: float | None
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if customer_id is not None:
        clauses.append("l.customer_id = ?")
        params.append(customer_id)
    if since is not None:
        clauses.append("l.created_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("l.created_at < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def usage_rows(
    db: Database,
    customer_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
) -> list[UsageRow]:
    """Ledger rows (oldest first), optionally for one customer and a time window."""
    where, params = _where(customer_id, since, until)
    sql = ROW_SQL + where + " ORDER BY l.created_at, l.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_row(row) for row in db.fetch_all(sql, params)]


def usage_totals(
    db: Database,
    group_by: str,
    customer_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[UsageTotal]:
    """Totals grouped by customer, key, endpoint or day (UTC)."""
    column = GROUPS.get(group_by)
    if column is None:
        raise BadRequest(f"Cannot group usage by {group_by!r}: use one of {', '.join(GROUPS)}")
    where, params = _where(customer_id, since, until)
    rows = db.fetch_all(
        f"SELECT {column} AS grp, COUNT(*) AS requests,"
        " SUM(CASE WHEN l.status = 'settled' THEN 1 ELSE 0 END) AS settled,"
        " SUM(CASE WHEN l.status = 'refunded' THEN 1 ELSE 0 END) AS refunded,"
        " SUM(CASE WHEN l.status = 'settled' THEN l.cost_micros ELSE 0 END) AS cost,"
        " SUM(CASE WHEN l.status IN ('reserved', 'pending') THEN l.reserved_micros ELSE 0 END)"
        " AS pending FROM ledger l JOIN customers c ON c.id = l.customer_id"
        f"{where} GROUP BY grp ORDER BY grp",
        params,
    )
    return [
        UsageTotal(
            str(row["grp"]),
            int(row["requests"]),
            int(row["settled"] or 0),
            int(row["refunded"] or 0),
            Money(int(row["cost"] or 0)),
            Money(int(row["pending"] or 0)),
        )
        for row in rows
    ]


def _row(row: Row) -> UsageRow:
    cost = row["cost_micros"]
    return UsageRow(
        id=row["id"],
        request_id=row["request_id"],
        customer=row["customer"],
        api_key_id=row["api_key_id"],
        upstream_key_id=row["upstream_key_id"],
        endpoint=row["endpoint"],
        kind=row["kind"],
        status=row["status"],
        unit=row["unit"],
        unit_price=row["unit_price"],
        multiplier=row["multiplier"],
        units=row["units"],
        units_source=row["units_source"],
        reserved=Money(int(row["reserved_micros"])),
        cost=Money(int(cost)) if cost is not None else None,
        latency_ms=row["latency_ms"],
        created_at=float(row["created_at"]),
        settled_at=row["settled_at"],
    )
