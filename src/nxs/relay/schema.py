"""The relay's tables, as the statements of one store migration, and a helper that
applies them on their own. They hold the signing keys, the registered callbacks, the
outbox of deliveries and every delivery attempt; `nxs.store.migrations` lists them as
migration 3. Statements are idempotent (`IF NOT EXISTS`), so tests may apply them alone.
"""

from __future__ import annotations

from nxs.store.database import Database

RELAY_NAME = "webhook relay: signing keys, callbacks, outbox, attempts"
RELAY_STATEMENTS: tuple[str, ...] = (
    # Private halves sealed with the store's SecretBox (see nxs.store.crypto).
    """CREATE TABLE IF NOT EXISTS relay_signing_keys (
            kid TEXT PRIMARY KEY,
            private_ciphertext TEXT NOT NULL,
            public_x TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
    """CREATE TABLE IF NOT EXISTS relay_callbacks (
            id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            target_url TEXT NOT NULL,
            request_id TEXT,
            created_at DOUBLE PRECISION NOT NULL
        )""",
    "CREATE INDEX IF NOT EXISTS relay_callbacks_request ON relay_callbacks (request_id)",
    """CREATE TABLE IF NOT EXISTS relay_deliveries (
            id TEXT PRIMARY KEY,
            callback_id TEXT NOT NULL REFERENCES relay_callbacks (id),
            request_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            target_url TEXT NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            last_status INTEGER,
            last_error TEXT,
            settled INTEGER NOT NULL DEFAULT 0 CHECK (settled IN (0, 1)),
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            UNIQUE (callback_id, request_id)
        )""",
    """CREATE INDEX IF NOT EXISTS relay_deliveries_due
            ON relay_deliveries (state, next_attempt_at)""",
    """CREATE TABLE IF NOT EXISTS relay_attempts (
            id TEXT PRIMARY KEY,
            delivery_id TEXT NOT NULL REFERENCES relay_deliveries (id),
            attempt INTEGER NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION NOT NULL,
            status INTEGER,
            error TEXT
        )""",
    "CREATE INDEX IF NOT EXISTS relay_attempts_delivery ON relay_attempts (delivery_id)",
)


def apply_relay_schema(database: Database) -> None:
    """Create the relay's tables if missing (one transaction; safe to repeat).

    Not recorded in `schema_migrations`: a store opened normally gets them by migration.
    """
    with database.transaction():
        for statement in RELAY_STATEMENTS:
            database.execute(statement)
