"""Work done once per cluster, not once per worker: claiming due rows, and job leases.

`claim_due` takes due rows of a work table (the reconciler's ledger rows, the relay's
deliveries) and pushes their due time forward by a lease inside one write transaction:
PostgreSQL locks the rows it selects and other claimers skip them (`FOR UPDATE SKIP
LOCKED`); SQLite's `BEGIN IMMEDIATE` lets one claimer in at a time. A claimer that dies
leaves its rows to come back when the lease ends. `hold_lease` elects one holder per job
(stranded-hold release, suspended-key probes) across every worker and replica.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Sequence

from nxs.store.database import Database, Row

LEASES_NAME = "job leases: one holder per cluster-wide chore"

LEASES_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE job_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
)


def holder_id() -> str:
    """A name for this process, unique across replicas and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def row_lock(db: Database) -> str:
    """The clause that makes concurrent claimers skip each other's rows (PostgreSQL)."""
    return " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""


def claim_due(
    db: Database,
    select: str,
    params: Sequence[object],
    *,
    table: str,
    due_column: str,
    lease_until: float,
) -> list[Row]:
    """Rows of `select` (a SELECT over `table` naming its `id`), each now due no sooner
    than `lease_until`, so no other claimer gets them before this one reschedules them.
    Nothing due (the usual case) costs one read and no write lock."""
    if not db.fetch_all(select, params):
        return []
    with db.transaction():
        rows = db.fetch_all(select + row_lock(db), params)
        if rows:
            db.execute_many(
                f"UPDATE {table} SET {due_column} = ? WHERE id = ?",
                [(lease_until, row["id"]) for row in rows],
            )
    return rows


def hold_lease(db: Database, name: str, holder: str, seconds: float) -> bool:
    """True if `holder` holds job `name` for the next `seconds` (taken or renewed now);
    False while another holder's lease runs. Writes only to take the lease or to renew it
    past half its time, so the holder writes every `seconds / 2` and the others never."""
    moment = time.time()
    row = db.fetch_one("SELECT holder, expires_at FROM job_leases WHERE name = ?", (name,))
    if row is not None:
        mine = row["holder"] == holder
        if not mine and row["expires_at"] >= moment:
            return False
        if mine and row["expires_at"] - moment > seconds / 2:
            return True
    with db.transaction():
        if db.execute(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, holder, moment + seconds),
        ):
            return True
        changed = db.execute(
            "UPDATE job_leases SET holder = ?, expires_at = ?"
            " WHERE name = ? AND (holder = ? OR expires_at < ?)",
            (holder, moment + seconds, name, holder, moment),
        )
    return changed == 1
