"""The schema, as numbered migrations, and the runner that applies them at open.

Each migration runs once, in order, inside one write transaction together with its row
in `schema_migrations`, under a lock, so concurrent openers and re-runs are safe. The SQL
is portable (TEXT, INTEGER, DOUBLE PRECISION, CHECK, REFERENCES); `dialect_ddl` renames
the few types PostgreSQL spells otherwise (INTEGER is 64-bit there: BIGINT).
Later subsystems (plans, subscriptions, ledger) append migrations; never edit old ones.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from nxs.admin.audit_schema import AUDIT_NAME, AUDIT_STATEMENTS
from nxs.billing.schema import (
    BILLING_NAME,
    BILLING_STATEMENTS,
    LEDGER_V5_NAME,
    LEDGER_V5_STATEMENTS,
)
from nxs.billing.schema_reserved import RESERVED_NAME, RESERVED_STATEMENTS
from nxs.billing.schema_slices import SLICES_NAME, SLICES_STATEMENTS
from nxs.billing.schema_units import FAL_UNITS_NAME, FAL_UNITS_STATEMENTS
from nxs.catalogue.schema import CATALOGUE_NAME, CATALOGUE_STATEMENTS
from nxs.console.schema import OPERATORS_NAME, OPERATORS_STATEMENTS
from nxs.portal.schema import PORTAL_NAME, PORTAL_STATEMENTS
from nxs.relay.schema import RELAY_NAME, RELAY_STATEMENTS
from nxs.store.claims import LEASES_NAME, LEASES_STATEMENTS
from nxs.store.database import Database, DatabaseError
from nxs.store.schema_scheduler import SCHEDULER_NAME, SCHEDULER_STATEMENTS


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


INITIAL = Migration(
    1,
    "customers, api keys, upstream keys, queued requests",
    (
        # One row; bumped in the same transaction as every write gateways must see.
        """CREATE TABLE store_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            value INTEGER NOT NULL
        )""",
        "INSERT INTO store_version (id, value) VALUES (1, 1)",
        """CREATE TABLE store_meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers (id),
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE INDEX api_keys_customer ON api_keys (customer_id)",
        """CREATE TABLE upstream_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            secret_ciphertext TEXT NOT NULL,
            weight INTEGER NOT NULL CHECK (weight >= 1),
            state TEXT NOT NULL CHECK (state IN ('active', 'invalid', 'suspended')),
            state_reason TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        # upstream_key_id is deliberately not a foreign key: a removed upstream key
        # leaves its past requests behind.
        """CREATE TABLE queued_requests (
            request_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers (id),
            api_key_id TEXT NOT NULL REFERENCES api_keys (id),
            upstream_key_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX queued_requests_created ON queued_requests (created_at)",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    INITIAL,
    Migration(2, AUDIT_NAME, AUDIT_STATEMENTS),
    Migration(3, RELAY_NAME, RELAY_STATEMENTS),
    Migration(4, BILLING_NAME, BILLING_STATEMENTS),
    Migration(5, LEDGER_V5_NAME, LEDGER_V5_STATEMENTS),
    Migration(6, FAL_UNITS_NAME, FAL_UNITS_STATEMENTS),
    Migration(7, RESERVED_NAME, RESERVED_STATEMENTS),
    Migration(8, LEASES_NAME, LEASES_STATEMENTS),
    Migration(9, OPERATORS_NAME, OPERATORS_STATEMENTS),
    Migration(10, PORTAL_NAME, PORTAL_STATEMENTS),
    Migration(11, CATALOGUE_NAME, CATALOGUE_STATEMENTS),
    Migration(12, SCHEDULER_NAME, SCHEDULER_STATEMENTS),
    Migration(13, SLICES_NAME, SLICES_STATEMENTS),
)


MIGRATION_LOCK = 0x6E7873  # "nxs": PostgreSQL's advisory lock key for migrations


def migrate(database: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded; returns the versions applied now.

    Nothing pending (the usual open) costs one read and no lock. Otherwise one write
    transaction holds the migration lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
    `pg_advisory_xact_lock`) and re-reads what is applied: concurrent openers wait, and the
    second finds nothing left to do. A schema newer than `migrations` is refused.
    """
    _check_order(migrations)
    if _has_migrations_table(database) and _pending(database, migrations) == []:
        return []
    with database.transaction():
        if database.dialect == "postgresql":
            database.fetch_one("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        database.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at DOUBLE PRECISION NOT NULL
            )"""
        )
        pending = _pending(database, migrations)
        for migration in pending:
            for statement in migration.statements:
                database.execute(dialect_ddl(database.dialect, statement))
            database.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
    return [migration.version for migration in pending]


def schema_version(database: Database) -> int:
    """The newest migration applied (0 for a database NXS never opened)."""
    if not _has_migrations_table(database):
        return 0
    return max(applied_versions(database), default=0)


def check_version(database: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Refuse a database whose schema is not the one this NXS knows (no writes)."""
    current, latest = schema_version(database), len(migrations)
    _refuse_newer(current, latest)
    if current < latest:
        raise DatabaseError(
            f"database schema is version {current}, this NXS needs {latest}: run `nxs db upgrade`"
        )


def applied_versions(database: Database) -> list[int]:
    rows = database.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    return [int(row["version"]) for row in rows]


# SQLite's `INTEGER PRIMARY KEY` numbers rows by itself; PostgreSQL's INTEGER is 32-bit,
# too small for micro-dollars and milliseconds; it has no BLOB.
_POSTGRESQL_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


def dialect_ddl(dialect: str, statement: str) -> str:
    """One schema text for both dialects: the few type names PostgreSQL spells otherwise."""
    if dialect != "postgresql":
        return statement
    for pattern, replacement in _POSTGRESQL_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def _pending(database: Database, migrations: tuple[Migration, ...]) -> list[Migration]:
    applied = set(applied_versions(database))
    _refuse_newer(max(applied, default=0), len(migrations))
    return [migration for migration in migrations if migration.version not in applied]


def _has_migrations_table(database: Database) -> bool:
    if database.dialect == "postgresql":
        row = database.fetch_one("SELECT to_regclass('schema_migrations') IS NOT NULL AS found")
    else:
        row = database.fetch_one(
            "SELECT COUNT(*) > 0 AS found FROM sqlite_master"
            " WHERE type = 'table' AND name = 'schema_migrations'"
        )
    return bool(row and row["found"])


def _check_order(migrations: tuple[Migration, ...]) -> None:
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise DatabaseError(f"Migrations must be numbered 1, 2, 3… in order, got {versions}")


def _refuse_newer(current: int, latest: int) -> None:
    if current > latest:
        raise DatabaseError(
            f"database schema is version {current}, this NXS knows up to {latest}: upgrade NXS"
        )
