"""Queued requests: which customer, key and upstream key submitted each request id.

The gateway records a row before it answers a queue submit, so status, result and
cancel go to the submitting upstream key and are refused to other customers. The
insert commits before returning (WAL: durable across a crash of the process).
"""

from __future__ import annotations

from nxs.errors import BadRequest, Conflict
from nxs.store.database import Database, IntegrityViolation, Row
from nxs.store.models import QueuedRequest

COLUMNS = "request_id, customer_id, api_key_id, upstream_key_id, endpoint, created_at"
MAX_REQUEST_ID_LENGTH = 200


def record(database: Database, request: QueuedRequest) -> None:
    if not request.request_id or len(request.request_id) > MAX_REQUEST_ID_LENGTH:
        raise BadRequest(f"Invalid request id {request.request_id!r}")
    try:
        database.execute(
            f"INSERT INTO queued_requests ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                request.request_id,
                request.customer_id,
                request.api_key_id,
                request.upstream_key_id,
                request.endpoint,
                request.created_at,
            ),
        )
    except IntegrityViolation as exc:
        if find(database, request.request_id) is not None:
            raise Conflict(f"Request '{request.request_id}' is already recorded") from exc
        raise BadRequest(
            f"Request '{request.request_id}' names an unknown customer or key"
        ) from exc


def find(database: Database, request_id: str) -> QueuedRequest | None:
    row = database.fetch_one(
        f"SELECT {COLUMNS} FROM queued_requests WHERE request_id = ?", (request_id,)
    )
    return _queued(row) if row else None


def _queued(row: Row) -> QueuedRequest:
    return QueuedRequest(
        request_id=row["request_id"],
        customer_id=row["customer_id"],
        api_key_id=row["api_key_id"],
        upstream_key_id=row["upstream_key_id"],
        endpoint=row["endpoint"],
        created_at=row["created_at"],
    )
