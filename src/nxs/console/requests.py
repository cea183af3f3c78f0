"""The console's requests view: recent failed requests (refunded on fal's verdict), slow
ones (by latency), and a search by request id across the ledger — each row with customer,
endpoint, key, upstream key, status and fal's request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from nxs.billing.money import Money
from nxs.store.database import Database, Row

DEFAULT_LIMIT: Final = 100
SLOW_MS: Final = 30_000

_SELECT: Final = (
    "SELECT l.id, l.request_id, c.name AS customer, l.api_key_id, l.endpoint, l.kind,"
    " l.status, l.cost_micros, l.reserved_micros, l.units, l.unit, l.latency_ms,"
    " l.created_at, u.name AS upstream"
    " FROM ledger l JOIN customers c ON c.id = l.customer_id"
    " LEFT JOIN upstream_keys u ON u.id = l.upstream_key_id"
)


@dataclass(frozen=True)
class RequestLine:
    """One ledger row as the requests page shows it."""

    id: str
    request_id: str | None  # fal's request id (queued) or the gateway's run id
    customer: str
    api_key_id: str
    upstream: str | None  # the upstream key's name (None: not answered, or since removed)
    endpoint: str
    kind: str
    status: str  # reserved | pending | settled | refunded
    charged: Money | None
    units: str | None
    unit: str
    latency_ms: int | None
    created_at: float


def failed(database: Database, *, since: float, limit: int = DEFAULT_LIMIT) -> list[RequestLine]:
    """Requests refunded since `since` (fal's 5xx, crashes, confirmed cancels), newest first."""
    return _lines(
        database,
        " WHERE l.created_at >= ? AND l.status = 'refunded' ORDER BY l.created_at DESC LIMIT ?",
        (since, limit),
    )


def slow(
    database: Database, *, since: float, over_ms: int = SLOW_MS, limit: int = DEFAULT_LIMIT
) -> list[RequestLine]:
    """Requests since `since` that took at least `over_ms`, slowest first."""
    return _lines(
        database,
        " WHERE l.created_at >= ? AND l.latency_ms >= ? ORDER BY l.latency_ms DESC LIMIT ?",
        (since, over_ms, limit),
    )


def find(database: Database, request_id: str) -> list[RequestLine]:
    """The ledger rows whose request id (or ledger id) is `request_id`."""
    text = request_id.strip()
    if not text:
        return []
    return _lines(
        database, " WHERE l.request_id = ? OR l.id = ? ORDER BY l.created_at", (text, text)
    )


def _lines(database: Database, where: str, params: tuple[object, ...]) -> list[RequestLine]:
    return [_line(row) for row in database.fetch_all(_SELECT + where, params)]


def _line(row: Row) -> RequestLine:
    cost = row["cost_micros"]
    return RequestLine(
        id=str(row["id"]),
        request_id=row["request_id"],
        customer=str(row["customer"]),
        api_key_id=str(row["api_key_id"]),
        upstream=row["upstream"],
        endpoint=str(row["endpoint"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        charged=Money(int(cost)) if cost is not None and row["status"] == "settled" else None,
        units=row["units"],
        unit=str(row["unit"]),
        latency_ms=int(row["latency_ms"]) if row["latency_ms"] is not None else None,
        created_at=float(row["created_at"]),
    )
