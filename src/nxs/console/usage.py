"""The console's usage and margin views: spend and requests by day (UTC), customer and
endpoint over a window, and what customers were charged against fal's cost for the same
units.

fal's cost of a settled row is its units at the price rule's unit price (fal's own list
price when the rule came from `nxs pricing sync`); the charge is the row's cost, which adds
the plan's multiplier. Refunded rows cost nothing either side (fal's verdict). Rows are
read once per page (at most `MAX_ROWS`, newest first) and summed here, so one
date expression serves SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from nxs.billing.money import Money, charge
from nxs.store.database import Database, Row

MAX_ROWS: Final = 100_000


@dataclass
class Bucket:
    """Totals of one group: requests, failures (refunded), charged, fal's cost."""

    key: str
    requests: int = 0
    refunded: int = 0
    charged: Money = field(default_factory=Money.zero)
    fal_cost: Money = field(default_factory=Money.zero)

    @property
    def margin(self) -> Money:
        return self.charged - self.fal_cost

    @property
    def margin_percent(self) -> str:
        if self.charged.micros <= 0:
            return "–"
        return f"{100 * self.margin.micros / self.charged.micros:.1f}%"


@dataclass(frozen=True)
class Usage:
    """One window's usage, grouped three ways, plus the total."""

    days: list[Bucket]
    customers: list[Bucket]
    endpoints: list[Bucket]
    total: Bucket
    truncated: bool  # more than MAX_ROWS rows in the window: the oldest were left out


@dataclass(frozen=True)
class _Row:
    day: str
    customer: str
    endpoint: str
    refunded: bool
    charged: Money
    fal_cost: Money


def usage(database: Database, *, since: float, customer: str | None = None) -> Usage:
    """Usage since `since` (optionally one customer's, by name), by day, customer, endpoint."""
    rows = [_read(row) for row in _fetch(database, since, customer)]
    total = Bucket("total")
    for row in rows:
        _add(total, row)
    return Usage(
        days=sorted(_group(rows, lambda row: row.day).values(), key=lambda b: b.key),
        customers=_ranked(_group(rows, lambda row: row.customer)),
        endpoints=_ranked(_group(rows, lambda row: row.endpoint)),
        total=total,
        truncated=len(rows) >= MAX_ROWS,
    )


def _fetch(database: Database, since: float, customer: str | None) -> list[Row]:
    where, params = "l.created_at >= ?", list[object]([since])
    if customer:
        where += " AND c.name = ?"
        params.append(customer)
    return database.fetch_all(
        "SELECT l.created_at, c.name AS customer, l.endpoint, l.status, l.cost_micros,"
        " l.units, l.unit_price FROM ledger l JOIN customers c ON c.id = l.customer_id"
        f" WHERE {where} AND l.status IN ('settled', 'refunded')"
        " ORDER BY l.created_at DESC LIMIT ?",
        (*params, MAX_ROWS),
    )


def _read(row: Row) -> _Row:
    settled = row["status"] == "settled"
    day = datetime.fromtimestamp(float(row["created_at"]), UTC).strftime("%Y-%m-%d")
    charged = Money(int(row["cost_micros"] or 0)) if settled else Money.zero()
    return _Row(
        day=day,
        customer=str(row["customer"]),
        endpoint=str(row["endpoint"]),
        refunded=not settled,
        charged=charged,
        fal_cost=_fal_cost(row["units"], row["unit_price"]) if settled else Money.zero(),
    )


def _fal_cost(units: object, unit_price: object) -> Money:
    try:
        return charge(Decimal(str(units)), Decimal(str(unit_price)))
    except (InvalidOperation, ValueError):
        return Money.zero()


def _group(rows: Iterable[_Row], key: Callable[[_Row], str]) -> dict[str, Bucket]:
    buckets: dict[str, Bucket] = {}
    for row in rows:
        name = key(row)
        _add(buckets.setdefault(name, Bucket(name)), row)
    return buckets


def _add(bucket: Bucket, row: _Row) -> None:
    bucket.requests += 1
    bucket.refunded += int(row.refunded)
    bucket.charged = bucket.charged + row.charged
    bucket.fal_cost = bucket.fal_cost + row.fal_cost


def _ranked(buckets: dict[str, Bucket]) -> list[Bucket]:
    return sorted(buckets.values(), key=lambda b: (-b.charged.micros, -b.requests, b.key))
