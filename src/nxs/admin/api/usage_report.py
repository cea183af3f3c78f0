"""Usage reports: the ledger summed by customer, key, endpoint and/or day (read-only SQL).

One row per group with request counts (settled, refunded, still open), what was charged
and what open requests hold. Days are UTC. Reads the `ledger` table billing writes
(docs/billing-design.md §2); `report` is the one query, `to_csv` renders its rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from nxs.billing.money import Money
from nxs.store.database import Database, Row

SECONDS_PER_DAY = 86400
# dimension → (SQL expression, output column)
DIMENSIONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "customer": ("c.name", "customer"),
        "key": ("l.api_key_id", "key_id"),
        "endpoint": ("l.endpoint", "endpoint"),
        "day": (f"CAST(l.created_at / {SECONDS_PER_DAY} AS INTEGER)", "day"),  # SQLite's cast
    }
)
TOTALS = """COUNT(*) AS requests,
    SUM(CASE WHEN l.status = 'settled' THEN 1 ELSE 0 END) AS settled,
    SUM(CASE WHEN l.status = 'refunded' THEN 1 ELSE 0 END) AS refunded,
    SUM(CASE WHEN l.status IN ('reserved', 'pending') THEN 1 ELSE 0 END) AS open,
    SUM(CASE WHEN l.status IN ('settled', 'refunded') THEN COALESCE(l.cost_micros, 0)
        ELSE 0 END) AS cost,
    SUM(CASE WHEN l.status IN ('reserved', 'pending') THEN l.reserved_micros ELSE 0 END) AS held"""
CSV_COLUMNS = (
    "customer",
    "key_id",
    "endpoint",
    "day",
    "requests",
    "settled",
    "refunded",
    "open",
    "cost",
    "held",
)


@dataclass(frozen=True)
class Filters:
    customer_id: str | None = None
    key_id: str | None = None
    endpoint: str | None = None
    since: float | None = None  # inclusive, seconds since the epoch
    until: float | None = None  # exclusive


@dataclass(frozen=True)
class UsageLine:
    customer: str | None
    key_id: str | None
    endpoint: str | None
    day: str | None
    requests: int
    settled: int
    refunded: int
    open: int
    cost: str  # USD
    held: str  # USD


def report(database: Database, group_by: Sequence[str], filters: Filters) -> list[UsageLine]:
    """The ledger grouped by `group_by` (dimensions of DIMENSIONS), filtered."""
    columns = [f"{DIMENSIONS[name][0]} AS {DIMENSIONS[name][1]}, " for name in group_by]
    grouping = ", ".join(DIMENSIONS[name][0] for name in group_by)
    where, params = _where(filters)
    sql = (
        f"SELECT {''.join(columns)}{TOTALS} FROM ledger l JOIN customers c ON c.id = l.customer_id"
    )
    sql += where + (f" GROUP BY {grouping} ORDER BY {grouping}" if grouping else "")
    rows = database.fetch_all(sql, params)
    return [_line(row) for row in rows if row["requests"]]


def to_csv(lines: Sequence[UsageLine]) -> str:
    """The report as CSV with a header line (absent dimensions left empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in lines:
        writer.writerow({k: "" if v is None else v for k, v in asdict(line).items()})
    return buffer.getvalue()


def _where(filters: Filters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("l.customer_id = ?", filters.customer_id),
        ("l.api_key_id = ?", filters.key_id),
        ("l.endpoint = ?", filters.endpoint),
        ("l.created_at >= ?", filters.since),
        ("l.created_at < ?", filters.until),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _line(row: Row) -> UsageLine:
    day = row.get("day")
    return UsageLine(
        customer=row.get("customer"),
        key_id=row.get("key_id"),
        endpoint=row.get("endpoint"),
        day=_date(int(day)) if day is not None else None,
        requests=int(row["requests"]),
        settled=int(row["settled"] or 0),
        refunded=int(row["refunded"] or 0),
        open=int(row["open"] or 0),
        cost=str(Money(int(row["cost"] or 0))),
        held=str(Money(int(row["held"] or 0))),
    )


def _date(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * SECONDS_PER_DAY, tz=UTC).date().isoformat()
