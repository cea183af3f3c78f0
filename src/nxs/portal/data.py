"""What the portal's pages show about one customer, read from the store.

Every function takes the signed-in customer's id and reads only that customer's rows, so
another customer's key or request id is simply not found (404). A key's last use comes
from the ledger (the newest row of that key), so nothing new is written on the hot path.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nxs.billing import catalog
from nxs.billing.catalog import Balance
from nxs.billing.plans import Plan, Subscription
from nxs.errors import NotFound
from nxs.platform.keys import (
    create_customer_key,
    list_customer_keys,
    parse_alias,
    revoke_customer_key,
)
from nxs.platform.prices import CustomerPrice, plan_for, price_list
from nxs.platform.queries import Window, keys_last_used, usage_series
from nxs.store.database import Database, Row
from nxs.store.models import Customer
from nxs.web.charts import Bar

RECENT_LIMIT = 50


@dataclass(frozen=True)
class KeyView:
    id: str
    alias: str
    prefix: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None


@dataclass(frozen=True)
class RequestView:
    id: str  # the ledger row
    request_id: str | None
    api_key_id: str
    key_alias: str
    endpoint: str
    kind: str
    status: str
    unit: str
    units: str | None
    cost_micros: int | None
    reserved_micros: int
    latency_ms: int | None
    created_at: float

    @property
    def has_result(self) -> bool:
        """A queued request fal answered keeps its result at fal (for a while)."""
        return self.kind == "queue" and self.status == "settled" and bool(self.request_id)


@dataclass(frozen=True)
class Overview:
    customer: Customer
    plan: Plan
    subscription: Subscription
    balance: Balance
    month_spend_micros: int
    month_requests: int
    daily: list[Bar]


def customer(db: Database, customer_id: str) -> Customer:
    row = db.fetch_one(
        "SELECT id, name, status, created_at FROM customers WHERE id = ?", (customer_id,)
    )
    if row is None:
        raise NotFound("No such customer")
    return Customer(row["id"], row["name"], row["status"], float(row["created_at"]))


def plan_of(db: Database, customer_id: str) -> tuple[Plan, Subscription]:
    return plan_for(db, customer_id)


def overview(db: Database, customer_id: str, now: datetime) -> Overview:
    plan, subscription = plan_of(db, customer_id)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    rows = db.fetch_all(
        "SELECT endpoint, cost_micros, created_at FROM ledger WHERE customer_id = ?"
        " AND created_at >= ? AND status = 'settled'",
        (customer_id, start.timestamp()),
    )
    days = (now - start).days + 1
    return Overview(
        customer=customer(db, customer_id),
        plan=plan,
        subscription=subscription,
        balance=catalog.get_balance(db, customer_id),
        month_spend_micros=sum(int(row["cost_micros"] or 0) for row in rows),
        month_requests=len(rows),
        daily=daily_bars(rows, start, days),
    )


def usage_bars(db: Database, customer_id: str, now: datetime, days: int) -> list[Bar]:
    """Spend per UTC day for the last `days` days, stacked by endpoint (the Platform API's
    own usage series, so both show the same figures)."""
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=days - 1)
    series = usage_series(db, customer_id, Window(start, now + timedelta(seconds=1)), "day")
    by_day = {bucket.start.date(): bucket.lines for bucket in series}
    bars = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        parts: dict[str, float] = {}
        for line in by_day.get(day.date(), ()):
            parts[line.endpoint] = parts.get(line.endpoint, 0.0) + line.cost.micros / 1_000_000
        bars.append(Bar(day.strftime("%b %d"), parts))
    return bars


def daily_bars(rows: list[Row], start: datetime, days: int) -> list[Bar]:
    """Settled spend per UTC day from `start`, one series."""
    totals = [0.0] * days
    for row in rows:
        index = int((float(row["created_at"]) - start.timestamp()) // 86400)
        if 0 <= index < days:
            totals[index] += int(row["cost_micros"] or 0) / 1_000_000
    return [
        Bar((start + timedelta(days=i)).strftime("%b %d"), {"spend": total} if total else {})
        for i, total in enumerate(totals)
    ]


def keys(db: Database, customer_id: str) -> list[KeyView]:
    """The customer's keys, live ones first, newest first; last use from the ledger."""
    used = keys_last_used(db, customer_id)
    found = [
        KeyView(
            key.id,
            key.alias,
            key.prefix,
            key.created_at.timestamp(),
            key.revoked_at.timestamp() if key.revoked_at else None,
            used[key.id].timestamp() if key.id in used else None,
        )
        for key in list_customer_keys(db, customer_id, include_revoked=True)
    ]
    return sorted(found, key=lambda key: (key.revoked_at is not None, -key.created_at))


def create_key(db: Database, customer_id: str, alias: str) -> str:
    """A new key with `alias`; its plaintext (shown once)."""
    _, plaintext = create_customer_key(db, customer(db, customer_id), parse_alias(alias))
    return plaintext


def revoke_key(db: Database, customer_id: str, key_id: str) -> None:
    """Revoke the customer's own key (NotFound for another's)."""
    revoke_customer_key(db, customer_id, key_id)


_REQUEST_SELECT = (
    "SELECT l.id, l.request_id, l.api_key_id, k.alias, k.prefix, l.endpoint, l.kind, l.status,"
    " l.unit, l.units, l.cost_micros, l.reserved_micros, l.latency_ms, l.created_at"
    " FROM ledger l LEFT JOIN api_keys k ON k.id = l.api_key_id WHERE l.customer_id = ?"
)


def recent_requests(db: Database, customer_id: str, limit: int = RECENT_LIMIT) -> list[RequestView]:
    rows = db.fetch_all(
        _REQUEST_SELECT + f" ORDER BY l.created_at DESC LIMIT {int(limit)}", (customer_id,)
    )
    return [_request(row) for row in rows]


def own_request(db: Database, customer_id: str, ledger_id: str) -> RequestView:
    row = db.fetch_one(_REQUEST_SELECT + " AND l.id = ?", (customer_id, ledger_id))
    if row is None:
        raise NotFound("No such request")
    return _request(row)


def _request(row: Row) -> RequestView:
    return RequestView(
        id=row["id"],
        request_id=row["request_id"],
        api_key_id=row["api_key_id"],
        key_alias=row["alias"] or row["prefix"] or "",
        endpoint=row["endpoint"],
        kind=row["kind"],
        status=row["status"],
        unit=row["unit"],
        units=row["units"],
        cost_micros=row["cost_micros"],
        reserved_micros=int(row["reserved_micros"]),
        latency_ms=row["latency_ms"],
        created_at=float(row["created_at"]),
    )


@dataclass(frozen=True)
class Payment:
    amount_micros: int
    note: str
    created_at: float


def payments(db: Database, customer_id: str, limit: int = 20) -> list[Payment]:
    """Credit added to the customer, newest first (Stripe top-ups and operator grants)."""
    rows = db.fetch_all(
        "SELECT amount_micros, note, created_at FROM credit_grants WHERE customer_id = ?"
        f" ORDER BY created_at DESC LIMIT {int(limit)}",
        (customer_id,),
    )
    return [
        Payment(int(row["amount_micros"]), str(row["note"] or ""), float(row["created_at"]))
        for row in rows
    ]


def requests_csv(rows: list[RequestView]) -> str:
    """The requests as CSV (money in USD to 6 decimals, times in UTC ISO 8601)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "time",
            "request_id",
            "endpoint",
            "key",
            "status",
            "units",
            "unit",
            "cost_usd",
            "duration_ms",
        ]
    )
    for row in rows:
        cost = "" if row.cost_micros is None else f"{row.cost_micros / 1_000_000:.6f}"
        writer.writerow(
            [
                datetime.fromtimestamp(row.created_at, tz=UTC).isoformat(),
                row.request_id or "",
                row.endpoint,
                row.key_alias,
                row.status,
                row.units or "",
                row.unit,
                cost,
                "" if row.latency_ms is None else row.latency_ms,
            ]
        )
    return out.getvalue()


def prices(db: Database, customer_id: str) -> list[CustomerPrice]:
    """What the customer pays per unit, for every rule its plan allows."""
    return price_list(db, customer_id)
