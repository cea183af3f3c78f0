"""The schema, as numbered migrations, and the runner that applies them at open.

Each migration runs once, in order, inside one write transaction together with its row
in `schema_migrations`, so concurrent openers and re-runs are safe. The SQL is portable
(TEXT, INTEGER, DOUBLE PRECISION, CHECK, REFERENCES): PostgreSQL can run it unchanged.
Later subsystems (plans, subscriptions, ledger) append migrations; never edit old ones.
"""

from __future__ import annotations

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
from nxs.billing.schema_units import FAL_UNITS_NAME, FAL_UNITS_STATEMENTS
from nxs.relay.schema import RELAY_NAME, RELAY_STATEMENTS
from nxs.store.claims import LEASES_NAME, LEASES_STATEMENTS
from nxs.store.database import Database, DatabaseError


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
)


def migrate(database: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded; returns the versions applied now."""
    _check_order(migrations)
    database.execute(  # IF NOT EXISTS: no lock needed once it exists
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at DOUBLE PRECISION NOT NULL
        )"""
    )
    applied = set(applied_versions(database))
    _refuse_newer(applied, migrations)
    if applied >= {migration.version for migration in migrations}:
        return []  # the usual case: no write lock taken
    with database.transaction():  # re-read under the lock: another process may be first
        applied = set(applied_versions(database))
        pending = [migration for migration in migrations if migration.version not in applied]
        for migration in pending:
            for statement in migration.statements:
                database.execute(statement)
            database.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
    return [migration.version for migration in pending]


def applied_versions(database: Database) -> list[int]:
    rows = database.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    return [int(row["version"]) for row in rows]


def _check_order(migrations: tuple[Migration, ...]) -> None:
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise DatabaseError(f"Migrations must be numbered 1, 2, 3… in order, got {versions}")


def _refuse_newer(applied: set[int], migrations: tuple[Migration, ...]) -> None:
    known = len(migrations)
    newest = max(applied, default=0)
    if newest > known:
        raise DatabaseError(
            f"Database schema version {newest} is newer than this nxs knows ({known}): "
            "upgrade nxs before using this database"
        )
