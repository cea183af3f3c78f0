"""Idempotency records in the store: claim a key, store the first answer, replay it.

`claim` runs in the same writer batch as the reservation: it applies the pure decision of
`nxs.billing.idempotency.decide` to the stored row (422 for a different body, 409 while the
first request runs) and answers either None (go ahead, row now `pending`) or the stored
response to replay. Rows live 24 h; `purge` deletes older ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nxs.billing.idempotency import RETENTION_SECONDS, Decision, IdempotencyRecord, decide
from nxs.store.database import Database

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class StoredResponse:
    """The first answer to an idempotent request, replayed byte for byte."""

    status: int
    headers: Headers
    body: bytes


def claim(
    db: Database, customer_id: str, key: str, fingerprint: str, moment: float
) -> StoredResponse | None:
    """None: proceed (the key is now held `pending`); else the response to replay. Claims of
    one key take turns: SQLite's write lock, and on PostgreSQL a lock on the key held until
    the claiming transaction commits (READ COMMITTED alone would let two workers both read
    "no row" and both proceed)."""
    if db.dialect == "postgresql":
        held = f"{customer_id}\n{key}"
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (held,))
    row = db.fetch_one(
        "SELECT body_sha256, state, response_status, response_headers, response_body, created_at"
        " FROM idempotency_keys WHERE customer_id = ? AND key = ?",
        (customer_id, key),
    )
    record = None
    if row is not None:
        record = IdempotencyRecord(
            row["body_sha256"], float(row["created_at"]), row["state"] == "done"
        )
    if decide(record, fingerprint, moment) is Decision.REPLAY:
        assert row is not None
        return StoredResponse(
            int(row["response_status"]),
            _headers(row["response_headers"]),
            bytes(row["response_body"] or b""),
        )
    db.execute(
        "INSERT INTO idempotency_keys (customer_id, key, body_sha256, state, created_at)"
        " VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (customer_id, key) DO UPDATE SET"
        " body_sha256 = excluded.body_sha256, state = 'pending', response_status = NULL,"
        " response_headers = NULL, response_body = NULL, ledger_id = NULL,"
        " created_at = excluded.created_at",
        (customer_id, key, fingerprint, moment),
    )
    return None


def complete(
    db: Database, customer_id: str, key: str, response: StoredResponse, ledger_id: str | None
) -> None:
    """Store the first answer; later retries replay it."""
    headers = json.dumps(
        [[name.decode("latin-1"), value.decode("latin-1")] for name, value in response.headers]
    )
    db.execute(
        "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_headers = ?,"
        " response_body = ?, ledger_id = ? WHERE customer_id = ? AND key = ?",
        (response.status, headers, response.body, ledger_id, customer_id, key),
    )


def release(db: Database, customer_id: str, key: str) -> None:
    """Forget a claim (upstream 5xx, or no answer): the client's retry makes a fresh attempt."""
    db.execute("DELETE FROM idempotency_keys WHERE customer_id = ? AND key = ?", (customer_id, key))


def purge(db: Database, moment: float) -> int:
    """Delete records older than the 24 h retention; returns how many."""
    return db.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?", (moment - RETENTION_SECONDS,)
    )


def _headers(text: str | None) -> Headers:
    pairs = json.loads(text) if text else []
    return [(str(name).encode("latin-1"), str(value).encode("latin-1")) for name, value in pairs]
