"""What the portal's pages show about one customer, read from the store.

Every function takes the signed-in customer's id and reads only that customer's rows, so
another customer's key or request id is simply not found (404). A key's last use comes
from the ledger (the newest row of that key), so nothing new is written on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from nxs.billing import catalog
from nxs.billing.catalog import Balance
from nxs.billing.plans import Plan, Subscription
from nxs.errors import NotFound
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


@dataclass(frozen=True)
class PriceView:
    pattern: str
    unit: str
    unit_price: Decimal  # what this customer pays: operator price × plan multiplier


def customer(db: Database, customer_id: str) -> Customer:
    row = db.fetch_one(
        "SELECT id, name, status, created_at FROM customers WHERE id = ?", (customer_id,)
    )
    if row is None:
        raise NotFound("No such customer")
    return Customer(row["id"], row["name"], row["status"], float(row["created_at"]))


def plan_of(db: Database, customer_id: str) -> tuple[Plan, Subscription]:
    subscription = catalog.get_subscription(db, customer_id)
    try:
        return catalog.get_plan(db, subscription.plan), subscription
    except NotFound:
        return catalog.get_plan(db, "default"), subscription


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
        daily=daily_bars(rows, start, days, by_endpoint=False),
    )


def usage_bars(db: Database, customer_id: str, now: datetime, days: int) -> list[Bar]:
    """Spend per UTC day for the last `days` days, stacked by endpoint."""
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=days - 1)
    rows = db.fetch_all(
        "SELECT endpoint, cost_micros, created_at FROM ledger WHERE customer_id = ?"
        " AND created_at >= ? AND status = 'settled'",
        (customer_id, start.timestamp()),
    )
    return daily_bars(rows, start, days, by_endpoint=True)


def daily_bars(rows: list[Row], start: datetime, days: int, *, by_endpoint: bool) -> list[Bar]:
    totals: list[dict[str, float]] = [{} for _ in range(days)]
    for row in rows:
        index = int((float(row["created_at"]) - start.timestamp()) // 86400)
        if 0 <= index < days:
            name = row["endpoint"] if by_endpoint else "spend"
            parts = totals[index]
            parts[name] = parts.get(name, 0.0) + int(row["cost_micros"] or 0) / 1_000_000
    return [
        Bar((start + timedelta(days=i)).strftime("%b %d"), parts) for i, parts in enumerate(totals)
    ]


def keys(db: Database, customer_id: str) -> list[KeyView]:
    rows = db.fetch_all(
        "SELECT k.id, k.alias, k.prefix, k.created_at, k.revoked_at,"
        " (SELECT MAX(l.created_at) FROM ledger l WHERE l.customer_id = k.customer_id"
        "  AND l.api_key_id = k.id) AS last_used_at"
        " FROM api_keys k WHERE k.customer_id = ? ORDER BY k.revoked_at IS NOT NULL,"
        " k.created_at DESC",
        (customer_id,),
    )
    return [
        KeyView(
            row["id"],
            row["alias"] or "",
            row["prefix"],
            float(row["created_at"]),
            row["revoked_at"],
            row["last_used_at"],
        )
        for row in rows
    ]


def own_key(db: Database, customer_id: str, key_id: str) -> str:
    """`key_id` if the customer owns it; NotFound otherwise (another's key looks unknown)."""
    row = db.fetch_one(
        "SELECT id FROM api_keys WHERE id = ? AND customer_id = ?", (key_id, customer_id)
    )
    if row is None:
        raise NotFound("No such key")
    return key_id


def set_alias(db: Database, key_id: str, alias: str) -> None:
    db.execute("UPDATE api_keys SET alias = ? WHERE id = ?", (alias, key_id))


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


def prices(db: Database, customer_id: str) -> list[PriceView]:
    plan, _ = plan_of(db, customer_id)
    return [
        PriceView(rule.pattern, rule.unit.value, (rule.unit_price * plan.multiplier).normalize())
        for rule, _source in catalog.list_prices(db)
    ]
