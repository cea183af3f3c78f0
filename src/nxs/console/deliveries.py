"""The console's webhook deliveries: the relay's outbox rows, newest first, each with its
attempts (status or error, timing), so an operator sees whether customers' webhooks land.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from nxs.store.database import Database, Row

DEFAULT_LIMIT: Final = 100


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: float
    duration_ms: int
    status: int | None
    error: str | None


@dataclass(frozen=True)
class Delivery:
    """One webhook the relay owes a customer, and how its attempts went."""

    id: str
    request_id: str
    customer: str
    target_url: str
    state: str  # pending | delivered | failed
    attempts: list[Attempt]
    last_status: int | None
    last_error: str | None
    next_attempt_at: float
    created_at: float


def recent(
    database: Database, *, state: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[Delivery]:
    """The newest deliveries (optionally in one state) with their attempts."""
    where, params = ("WHERE d.state = ? ", [state]) if state else ("", [])
    rows = database.fetch_all(
        "SELECT d.id, d.request_id, COALESCE(c.name, d.customer_id) AS customer, d.target_url,"
        " d.state, d.last_status, d.last_error, d.next_attempt_at, d.created_at"
        " FROM relay_deliveries d LEFT JOIN customers c ON c.id = d.customer_id "
        f"{where}ORDER BY d.created_at DESC LIMIT ?",
        (*params, limit),
    )
    attempts = _attempts(database, [str(row["id"]) for row in rows])
    return [_delivery(row, attempts.get(str(row["id"]), [])) for row in rows]


def _attempts(database: Database, ids: Iterable[str]) -> dict[str, list[Attempt]]:
    wanted = list(ids)
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = database.fetch_all(
        "SELECT delivery_id, attempt, started_at, finished_at, status, error"
        f" FROM relay_attempts WHERE delivery_id IN ({marks}) ORDER BY attempt",
        wanted,
    )
    found: dict[str, list[Attempt]] = {}
    for row in rows:
        found.setdefault(str(row["delivery_id"]), []).append(
            Attempt(
                attempt=int(row["attempt"]),
                started_at=float(row["started_at"]),
                duration_ms=round(1000 * (float(row["finished_at"]) - float(row["started_at"]))),
                status=int(row["status"]) if row["status"] is not None else None,
                error=row["error"],
            )
        )
    return found


def _delivery(row: Row, attempts: list[Attempt]) -> Delivery:
    return Delivery(
        id=str(row["id"]),
        request_id=str(row["request_id"]),
        customer=str(row["customer"]),
        target_url=str(row["target_url"]),
        state=str(row["state"]),
        attempts=attempts,
        last_status=int(row["last_status"]) if row["last_status"] is not None else None,
        last_error=row["last_error"],
        next_attempt_at=float(row["next_attempt_at"]),
        created_at=float(row["created_at"]),
    )
