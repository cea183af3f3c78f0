"""`nxs db copy`: every row of one NXS database into another (SQLite → PostgreSQL is the
usual move), table by table in foreign-key order, in pages, in one transaction on the
target. Both must be at this NXS's schema version and the target must hold no customer,
key or ledger row; the secret that seals upstream keys travels with the operator
(`NXS_SECRET_KEY` or its file), not with the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from nxs.store.database import Database, DatabaseError, Row
from nxs.store.migrations import check_version

PAGE: Final = 1000
# Every table of the schema with its key, parents before children (a test checks that
# this list names every table the migrations create); `schema_migrations` is the target's.
TABLES: Final = (
    ("store_version", "id"),
    ("store_meta", "name"),
    ("customers", "id"),
    ("api_keys", "id"),
    ("upstream_keys", "id"),
    ("queued_requests", "request_id"),
    ("audit_log", "id"),
    ("relay_signing_keys", "kid"),
    ("relay_callbacks", "id"),
    ("relay_deliveries", "id"),
    ("relay_attempts", "id"),
    ("plans", "name"),
    ("subscriptions", "customer_id"),
    ("balances", "customer_id"),
    ("credit_grants", "id"),
    ("price_rules", "pattern"),
    ("fal_units", "endpoint"),
    ("idempotency_keys", "customer_id, key"),
    ("ledger", "id"),
    ("credit_slices", "id"),
    ("job_leases", "name"),
    ("operators", "id"),
    ("web_sessions", "token_hash"),
    ("portal_accounts", "customer_id"),
    ("portal_invites", "token_hash"),
    ("stripe_events", "id"),
    ("stripe_subscriptions", "subscription_id"),
    ("fal_endpoints", "endpoint"),
)
# Rows the migrations themselves write: replaced, not added to.
SEEDED: Final = ("store_version", "store_meta", "plans", "relay_signing_keys")
# Tables whose rows say the target is already in use.
IN_USE: Final = ("customers", "upstream_keys", "ledger")

Progress = Callable[[str, int], None]


def copy_database(source: Database, target: Database, progress: Progress | None = None) -> int:
    """Copy every row of `source` into `target`; returns the number of rows copied."""
    _check_versions(source, target)
    _check_empty(target)
    copied = 0
    with target.transaction():
        for table, key in TABLES:
            if table in SEEDED:
                target.execute(f"DELETE FROM {table}")
            count = _copy_table(source, target, table, key)
            copied += count
            if progress is not None:
                progress(table, count)
        _continue_numbering(target)
    return copied


def _continue_numbering(target: Database) -> None:
    """PostgreSQL numbers audit entries from a sequence that copied ids did not advance:
    move it past the highest copied id (SQLite numbers from the table itself)."""
    if target.dialect == "postgresql":
        target.fetch_one(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'),"
            " COALESCE(MAX(id), 0) + 1, false) FROM audit_log"
        )


def _copy_table(source: Database, target: Database, table: str, key: str) -> int:
    count = 0
    for rows in _pages(source, table, key):
        columns = list(rows[0])
        marks = ", ".join("?" for _ in columns)
        target.execute_many(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [tuple(row[column] for column in columns) for row in rows],
        )
        count += len(rows)
    return count


def _pages(db: Database, table: str, key: str) -> Iterator[list[Row]]:
    """The table in key order, `PAGE` rows at a time: after the last key seen for a
    one-column key (an index range scan per page), by offset for the composite one."""
    last: object = None
    offset = 0
    params: tuple[object, ...]
    while True:
        if "," in key:
            sql, params = f"SELECT * FROM {table} ORDER BY {key} LIMIT ? OFFSET ?", (PAGE, offset)
        elif last is None:
            sql, params = f"SELECT * FROM {table} ORDER BY {key} LIMIT ?", (PAGE,)
        else:
            sql = f"SELECT * FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?"
            params = (last, PAGE)
        rows = db.fetch_all(sql, params)
        if not rows:
            return
        yield rows
        offset += len(rows)
        last = rows[-1].get(key)


def _check_versions(source: Database, target: Database) -> None:
    for name, db in (("source", source), ("target", target)):
        try:
            check_version(db)
        except DatabaseError as exc:
            raise DatabaseError(f"The {name} database: {exc}") from exc


def _check_empty(target: Database) -> None:
    for table in IN_USE:
        if target.fetch_one(f"SELECT 1 FROM {table} LIMIT 1") is not None:
            raise DatabaseError(
                f"The target database already has rows in {table}: copy into a new, empty one"
            )
