"""The durable outbox: one `relay_deliveries` row per customer delivery, one
`relay_attempts` row per POST tried. Rows are claimed with a lease (their
`next_attempt_at` pushed forward) so several gateway processes never send one twice at
once, and a crashed process's claims come back when the lease ends.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from nxs.relay.callbacks import Callback
from nxs.store import claims
from nxs.store.database import Database, IntegrityViolation

DeliveryState = Literal["pending", "delivered", "failed"]
COLUMNS = (
    "id, callback_id, request_id, customer_id, target_url, body, state, attempts,"
    " next_attempt_at, last_status, last_error, created_at"
)


@dataclass(frozen=True)
class Delivery:
    id: str
    callback_id: str
    request_id: str
    customer_id: str
    target_url: str
    body: bytes
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    created_at: float


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: float
    finished_at: float
    status: int | None  # the receiver's HTTP status, None when no answer came
    error: str | None  # e.g. "HTTP 500", "ClientConnectorError", "TimeoutError"


class Outbox:
    """Deliveries and their attempts in the database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def enqueue(self, callback: Callback, request_id: str, body: bytes) -> tuple[Delivery, bool]:
        """The delivery of `body` for this callback and request; True if created now."""
        now = time.time()
        delivery_id = "dlv_" + secrets.token_hex(12)
        try:
            self._db.execute(
                "INSERT INTO relay_deliveries (id, callback_id, request_id, customer_id,"
                " target_url, body, state, attempts, next_attempt_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                (
                    delivery_id,
                    callback.id,
                    request_id,
                    callback.customer_id,
                    callback.target_url,
                    body.decode(),
                    now,
                    now,
                    now,
                ),
            )
        except IntegrityViolation:  # fal sent this webhook again: keep the first
            return self._find(callback.id, request_id), False
        return self.get(delivery_id), True

    def claim_settlement(self, delivery_id: str) -> bool:
        """True for exactly one caller per delivery (until `release_settlement`)."""
        changed = self._db.execute(
            "UPDATE relay_deliveries SET settled = 1 WHERE id = ? AND settled = 0", (delivery_id,)
        )
        return changed == 1

    def release_settlement(self, delivery_id: str) -> None:
        self._db.execute("UPDATE relay_deliveries SET settled = 0 WHERE id = ?", (delivery_id,))

    def claim_due(self, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to `limit` pending rows that are due, leased to this caller."""
        now = time.time()
        rows = claims.claim_due(
            self._db,
            f"SELECT {COLUMNS} FROM relay_deliveries WHERE state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (now, limit),
            table="relay_deliveries",
            due_column="next_attempt_at",
            lease_until=now + lease_seconds,
        )
        return [_delivery(row) for row in rows]

    def release(self, delivery_id: str) -> None:
        """Give a claimed row back at once (an attempt was interrupted by shutdown)."""
        self._db.execute(
            "UPDATE relay_deliveries SET next_attempt_at = ? WHERE id = ? AND state = 'pending'",
            (time.time(), delivery_id),
        )

    def record(self, delivery: Delivery, attempt: Attempt, retry_in: float | None) -> None:
        """Store an attempt; the row becomes delivered, failed (`retry_in` None) or pending."""
        delivered = attempt.status is not None and 200 <= attempt.status < 300
        state = "delivered" if delivered else ("failed" if retry_in is None else "pending")
        next_at = attempt.finished_at + (retry_in or 0.0)
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO relay_attempts (id, delivery_id, attempt, started_at, finished_at,"
                " status, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    "att_" + secrets.token_hex(12),
                    delivery.id,
                    attempt.attempt,
                    attempt.started_at,
                    attempt.finished_at,
                    attempt.status,
                    attempt.error,
                ),
            )
            self._db.execute(
                "UPDATE relay_deliveries SET state = ?, attempts = ?, next_attempt_at = ?,"
                " last_status = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (
                    state,
                    attempt.attempt,
                    next_at,
                    attempt.status,
                    attempt.error,
                    attempt.finished_at,
                    delivery.id,
                ),
            )

    def next_due(self) -> float | None:
        """When the earliest pending row is due (None: nothing pending)."""
        row = self._db.fetch_one(
            "SELECT MIN(next_attempt_at) AS due FROM relay_deliveries WHERE state = 'pending'"
        )
        return None if row is None or row["due"] is None else float(row["due"])

    def get(self, delivery_id: str) -> Delivery:
        row = self._db.fetch_one(
            f"SELECT {COLUMNS} FROM relay_deliveries WHERE id = ?", (delivery_id,)
        )
        if row is None:
            raise KeyError(delivery_id)
        return _delivery(row)

    def recent(self, *, customer_id: str | None = None, limit: int = 100) -> list[Delivery]:
        """Newest deliveries first, optionally one customer's (for the admin API)."""
        where, params = ("WHERE customer_id = ?", [customer_id]) if customer_id else ("", [])
        rows = self._db.fetch_all(
            f"SELECT {COLUMNS} FROM relay_deliveries {where} ORDER BY created_at DESC LIMIT ?",
            (*params, limit),
        )
        return [_delivery(row) for row in rows]

    def attempts(self, delivery_id: str) -> list[Attempt]:
        """Every attempt of one delivery, oldest first."""
        rows = self._db.fetch_all(
            "SELECT attempt, started_at, finished_at, status, error FROM relay_attempts"
            " WHERE delivery_id = ? ORDER BY attempt",
            (delivery_id,),
        )
        return [
            Attempt(
                int(r["attempt"]),
                float(r["started_at"]),
                float(r["finished_at"]),
                None if r["status"] is None else int(r["status"]),
                r["error"],
            )
            for r in rows
        ]

    def _find(self, callback_id: str, request_id: str) -> Delivery:
        row = self._db.fetch_one(
            f"SELECT {COLUMNS} FROM relay_deliveries WHERE callback_id = ? AND request_id = ?",
            (callback_id, request_id),
        )
        if row is None:
            raise KeyError((callback_id, request_id))
        return _delivery(row)


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=str(row["id"]),
        callback_id=str(row["callback_id"]),
        request_id=str(row["request_id"]),
        customer_id=str(row["customer_id"]),
        target_url=str(row["target_url"]),
        body=str(row["body"]).encode(),
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_status=None if row["last_status"] is None else int(row["last_status"]),
        last_error=None if row["last_error"] is None else str(row["last_error"]),
        created_at=float(row["created_at"]),
    )
