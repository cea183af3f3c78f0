"""One customer's ledger, read for people: usage by time bucket and endpoint, billing
events (one per charged request) and recent requests with status, duration and cost.

Plain functions over a `Database` returning frozen dataclasses (no HTTP); the Platform API
(`nxs.platform.app`) and the portal share them. Every query is scoped by `customer_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Final, Literal

from nxs.billing.money import Money
from nxs.store.database import Database, Row

Timeframe = Literal["minute", "hour", "day", "week", "month"]
TIMEFRAMES: Final[tuple[str, ...]] = ("minute", "hour", "day", "week", "month")
RequestStatus = Literal["success", "error", "user_error"]
_COLUMNS: Final = (
    "request_id, api_key_id, endpoint, status, unit, unit_price, multiplier, units,"
    " cost_micros, latency_ms, created_at, settled_at"
)


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end), UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Filters:
    """What narrows a ledger read besides the customer and the window (empty: no filter)."""

    endpoints: tuple[str, ...] = ()
    key_ids: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class UsageLine:
    """Charged usage of one endpoint at one price (and by one key when asked)."""

    endpoint: str
    unit: str
    unit_price: Decimal  # what the customer pays per unit: operator price × plan multiplier
    quantity: Decimal
    cost: Money
    requests: int
    api_key_id: str | None = None


@dataclass(frozen=True)
class UsageBucket:
    start: datetime  # in the caller's time zone
    lines: tuple[UsageLine, ...]


@dataclass(frozen=True)
class BillingEvent:
    """One charged request."""

    request_id: str
    endpoint: str
    api_key_id: str
    timestamp: datetime
    units: Decimal
    unit: str
    unit_price: Decimal
    cost: Money


@dataclass(frozen=True)
class RequestRecord:
    """A request the customer made, as far as the ledger knows it."""

    request_id: str
    endpoint: str
    api_key_id: str
    status: str  # ledger status: reserved | pending | settled | refunded
    started_at: datetime
    ended_at: datetime | None
    duration: float | None  # seconds
    units: Decimal | None
    unit: str
    cost: Money | None

    @property
    def outcome(self) -> str | None:
        """fal's request status: success (charged), error (refunded), None while open."""
        return {"settled": "success", "refunded": "error"}.get(self.status)


def moment(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=UTC)


def _rows(
    db: Database,
    customer_id: str,
    window: Window,
    filters: Filters,
    tail: str = "",
    tail_params: Sequence[object] = (),
) -> list[Row]:
    sql = f"SELECT {_COLUMNS} FROM ledger WHERE customer_id = ? AND created_at >= ?"
    sql += " AND created_at < ? AND request_id IS NOT NULL"
    params: list[object] = [customer_id, window.start.timestamp(), window.end.timestamp()]
    for column, values in (
        ("endpoint", filters.endpoints),
        ("api_key_id", filters.key_ids),
        ("request_id", filters.request_ids),
    ):
        if values:
            sql += f" AND {column} IN ({', '.join('?' for _ in values)})"
            params.extend(values)
    return db.fetch_all(sql + tail, [*params, *tail_params])


def customer_price(row: Row) -> Decimal:
    """The unit price a ledger row charged the customer (operator price × multiplier)."""
    return (Decimal(row["unit_price"]) * Decimal(row["multiplier"])).normalize()


def charged_rows(db: Database, customer_id: str, window: Window, filters: Filters) -> list[Row]:
    """The customer's settled ledger rows in the window (what fal calls usage)."""
    return _rows(db, customer_id, window, filters, " AND status = 'settled' ORDER BY created_at")


@dataclass
class _Total:
    quantity: Decimal = Decimal(0)
    micros: int = 0
    requests: int = 0


def usage_lines(rows: Sequence[Row], by_key: bool = False) -> tuple[UsageLine, ...]:
    """Rows summed by endpoint, unit and price (and key when `by_key`), by endpoint."""
    totals: dict[tuple[str, str, Decimal, str], _Total] = {}
    for row in rows:
        key_id = str(row["api_key_id"]) if by_key else ""
        total = totals.setdefault(
            (row["endpoint"], row["unit"], customer_price(row), key_id), _Total()
        )
        total.quantity += Decimal(row["units"] or "0")
        total.micros += int(row["cost_micros"] or 0)
        total.requests += 1
    return tuple(
        UsageLine(endpoint, unit, price, t.quantity, Money(t.micros), t.requests, key_id or None)
        for (endpoint, unit, price, key_id), t in sorted(totals.items(), key=lambda item: item[0])
    )


def usage_series(
    db: Database,
    customer_id: str,
    window: Window,
    timeframe: Timeframe,
    zone: tzinfo = UTC,
    filters: Filters = Filters(),
    by_key: bool = False,
) -> list[UsageBucket]:
    """Charged usage per time bucket (only buckets with usage), oldest first."""
    buckets: dict[datetime, list[Row]] = {}
    for row in charged_rows(db, customer_id, window, filters):
        start = bucket_start(moment(float(row["created_at"])).astimezone(zone), timeframe)
        buckets.setdefault(start, []).append(row)
    return [
        UsageBucket(start, usage_lines(rows, by_key)) for start, rows in sorted(buckets.items())
    ]


def usage_summary(
    db: Database,
    customer_id: str,
    window: Window,
    filters: Filters = Filters(),
    by_key: bool = False,
) -> tuple[UsageLine, ...]:
    """Charged usage over the whole window, by endpoint and price."""
    return usage_lines(charged_rows(db, customer_id, window, filters), by_key)


def bucket_start(when: datetime, timeframe: Timeframe) -> datetime:
    """The start of the bucket `when` falls in (weeks start on Monday), in `when`'s zone."""
    if timeframe == "minute":
        return when.replace(second=0, microsecond=0)
    if timeframe == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if timeframe == "week":
        return _rezoned(day - timedelta(days=day.weekday()))
    if timeframe == "month":
        return _rezoned(day.replace(day=1))
    return _rezoned(day)


def next_bucket(start: datetime, timeframe: Timeframe) -> datetime:
    """The start of the bucket after the one starting at `start`."""
    if timeframe == "minute":
        return start + timedelta(minutes=1)
    if timeframe == "hour":
        return start + timedelta(hours=1)
    if timeframe == "month":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return _rezoned(start.replace(year=year, month=month))
    days = 7 if timeframe == "week" else 1
    return _rezoned(
        (start.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=start.tzinfo)
    )


def _rezoned(when: datetime) -> datetime:
    """A wall-clock time's offset recomputed (a bucket across a daylight-saving change)."""
    zone = when.tzinfo
    return when.replace(tzinfo=None).replace(tzinfo=zone) if zone is not None else when


def billing_events(
    db: Database,
    customer_id: str,
    window: Window,
    filters: Filters = Filters(),
    limit: int = 100,
    offset: int = 0,
) -> list[BillingEvent]:
    """Charged requests, newest first (ask `limit` + 1 to learn whether more follow)."""
    tail = " AND status = 'settled' ORDER BY created_at DESC, request_id DESC LIMIT ? OFFSET ?"
    rows = _rows(db, customer_id, window, filters, tail, (limit, offset))
    return [_event(row) for row in rows]


def _event(row: Row) -> BillingEvent:
    return BillingEvent(
        request_id=row["request_id"] or "",
        endpoint=row["endpoint"],
        api_key_id=row["api_key_id"],
        timestamp=moment(float(row["created_at"])),
        units=Decimal(row["units"] or "0"),
        unit=row["unit"],
        unit_price=customer_price(row),
        cost=Money(int(row["cost_micros"] or 0)),
    )


_STATUS_CLAUSES: Final = {
    "success": " AND status = 'settled'",
    "error": " AND status = 'refunded'",
    "user_error": " AND 1 = 0",  # fal's user errors are settled or refunded like the rest
}
_ORDERS: Final = {
    "ended_at": " ORDER BY COALESCE(settled_at, created_at) DESC, request_id",
    "duration": " ORDER BY COALESCE(latency_ms, -1) DESC, request_id",
}


def customer_requests(
    db: Database,
    customer_id: str,
    window: Window,
    filters: Filters = Filters(),
    status: RequestStatus | None = None,
    sort_by: Literal["ended_at", "duration"] = "ended_at",
    limit: int = 50,
    offset: int = 0,
) -> list[RequestRecord]:
    """The customer's requests (open ones too), latest ended first or longest first."""
    tail = (_STATUS_CLAUSES[status] if status else "") + _ORDERS[sort_by] + " LIMIT ? OFFSET ?"
    rows = _rows(db, customer_id, window, filters, tail, (limit, offset))
    return [_request(row) for row in rows]


def _request(row: Row) -> RequestRecord:
    started = float(row["created_at"])
    ended = row["settled_at"]
    latency = row["latency_ms"]
    duration = latency / 1000 if latency is not None else None
    if duration is None and ended is not None:
        duration = round(float(ended) - started, 3)
    cost = row["cost_micros"]
    return RequestRecord(
        request_id=row["request_id"],
        endpoint=row["endpoint"],
        api_key_id=row["api_key_id"],
        status=row["status"],
        started_at=moment(started),
        ended_at=moment(float(ended)) if ended is not None else None,
        duration=duration,
        units=Decimal(row["units"]) if row["units"] is not None else None,
        unit=row["unit"],
        cost=Money(int(cost)) if cost is not None else None,
    )


def request_ids_owned(db: Database, customer_id: str, request_ids: Sequence[str]) -> set[str]:
    """Which of `request_ids` are the customer's (another's are answered as unknown)."""
    if not request_ids:
        return set()
    marks = ", ".join("?" for _ in request_ids)
    rows = db.fetch_all(
        f"SELECT request_id FROM ledger WHERE customer_id = ? AND request_id IN ({marks})",
        [customer_id, *request_ids],
    )
    return {str(row["request_id"]) for row in rows}


def keys_last_used(db: Database, customer_id: str) -> dict[str, datetime]:
    """Key id → when it last made a billable request (from the ledger: no hot-path write)."""
    rows = db.fetch_all(
        "SELECT api_key_id, MAX(created_at) AS last FROM ledger WHERE customer_id = ?"
        " GROUP BY api_key_id",
        (customer_id,),
    )
    return {str(row["api_key_id"]): moment(float(row["last"])) for row in rows}
