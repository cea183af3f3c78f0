"""Billing's tables, as the statements of one store migration (docs/billing-design.md §2).

Plans (with the built-in `default`), subscriptions, balances, credit grants, price rules,
the ledger (one row per billable request) and idempotency records. Free of store imports
so `nxs.store.migrations` can list it; the SQL is portable to PostgreSQL.
"""

from __future__ import annotations

BILLING_NAME = "billing: plans, subscriptions, balances, grants, prices, ledger, idempotency"

BILLING_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS plans (
        name TEXT PRIMARY KEY,
        mode TEXT NOT NULL CHECK (mode IN ('metered', 'monthly', 'prepaid')),
        monthly_credit_micros INTEGER NOT NULL DEFAULT 0 CHECK (monthly_credit_micros >= 0),
        rpm INTEGER,
        max_in_flight INTEGER,
        endpoints TEXT NOT NULL DEFAULT '',
        multiplier TEXT NOT NULL DEFAULT '1',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """INSERT INTO plans (name, mode, created_at, updated_at)
        VALUES ('default', 'metered', 0, 0) ON CONFLICT DO NOTHING""",
    """CREATE TABLE IF NOT EXISTS subscriptions (
        customer_id TEXT PRIMARY KEY REFERENCES customers (id),
        plan TEXT NOT NULL REFERENCES plans (name),
        status TEXT NOT NULL CHECK (status IN ('active', 'past_due', 'canceled')),
        until DOUBLE PRECISION,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS balances (
        customer_id TEXT PRIMARY KEY REFERENCES customers (id),
        available_micros INTEGER NOT NULL DEFAULT 0,
        reserved_micros INTEGER NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
        allowance_left_micros INTEGER NOT NULL DEFAULT 0,
        period TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS credit_grants (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        amount_micros INTEGER NOT NULL CHECK (amount_micros > 0),
        note TEXT,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS credit_grants_customer ON credit_grants (customer_id)",
    """CREATE TABLE IF NOT EXISTS price_rules (
        pattern TEXT PRIMARY KEY,
        unit TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('operator', 'sync')),
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS ledger (
        id TEXT PRIMARY KEY,
        request_id TEXT UNIQUE,
        customer_id TEXT NOT NULL,
        api_key_id TEXT NOT NULL,
        upstream_key_id TEXT,
        endpoint TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('run', 'queue')),
        status TEXT NOT NULL CHECK (status IN ('reserved', 'pending', 'settled', 'refunded')),
        unit TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        multiplier TEXT NOT NULL,
        estimated_units TEXT NOT NULL,
        reserved_micros INTEGER NOT NULL,
        units TEXT,
        units_source TEXT,
        cost_micros INTEGER,
        latency_ms INTEGER,
        created_at DOUBLE PRECISION NOT NULL,
        settled_at DOUBLE PRECISION,
        next_check_at DOUBLE PRECISION,
        checks INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS ledger_customer_time ON ledger (customer_id, created_at)",
    "CREATE INDEX IF NOT EXISTS ledger_key_time ON ledger (api_key_id, created_at)",
    # partial: runs and closed rows never enter the reconciler's index
    """CREATE INDEX IF NOT EXISTS ledger_open ON ledger (next_check_at)
        WHERE status = 'pending'""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        customer_id TEXT NOT NULL,
        key TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
        response_status INTEGER,
        response_headers TEXT,
        response_body BLOB,
        ledger_id TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (customer_id, key)
    )""",
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency_keys (created_at)",
)

LEDGER_V5_NAME = "ledger: kind 'realtime'; only the indexes lookups use"

_LEDGER_COLUMNS = (
    "id, request_id, customer_id, api_key_id, upstream_key_id, endpoint, kind, status, unit,"
    " unit_price, multiplier, estimated_units, reserved_micros, units, units_source,"
    " cost_micros, latency_ms, created_at, settled_at, next_check_at, checks"
)

# A run's request id is fal's (a random UUID) and nothing looks a run up by it: keeping it
# in a UNIQUE index cost a random B-tree insert per request — most of what metering cost
# (~14 of ~22 µs per row). Only queued requests are found by request id (result fetch,
# webhook, reconciler), so only they are indexed, still UNIQUE: never charged twice.
# The (api_key_id, created_at) index goes too: usage filters by customer and time only.
# The CHECKs are OR chains on purpose: SQLite (3.40) evaluates `x IN (a, b, c)` of three or
# more constants by building a temporary B-tree for every row written — ~65k instructions,
# more than the insert itself.
LEDGER_V5_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE ledger_v5 (
        id TEXT PRIMARY KEY,
        request_id TEXT,
        customer_id TEXT NOT NULL,
        api_key_id TEXT NOT NULL,
        upstream_key_id TEXT,
        endpoint TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind = 'run' OR kind = 'queue' OR kind = 'realtime'),
        status TEXT NOT NULL CHECK (status = 'reserved' OR status = 'pending'
            OR status = 'settled' OR status = 'refunded'),
        unit TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        multiplier TEXT NOT NULL,
        estimated_units TEXT NOT NULL,
        reserved_micros INTEGER NOT NULL,
        units TEXT,
        units_source TEXT,
        cost_micros INTEGER,
        latency_ms INTEGER,
        created_at DOUBLE PRECISION NOT NULL,
        settled_at DOUBLE PRECISION,
        next_check_at DOUBLE PRECISION,
        checks INTEGER NOT NULL DEFAULT 0
    )""",
    # realtime sessions were booked as runs with request ids `rt_…` until now
    f"""INSERT INTO ledger_v5 ({_LEDGER_COLUMNS})
        SELECT id, request_id, customer_id, api_key_id, upstream_key_id, endpoint,
            CASE WHEN kind = 'run' AND request_id LIKE 'rt!_%' ESCAPE '!'
                THEN 'realtime' ELSE kind END,
            status, unit, unit_price, multiplier, estimated_units, reserved_micros, units,
            units_source, cost_micros, latency_ms, created_at, settled_at, next_check_at,
            checks
        FROM ledger""",
    "DROP TABLE ledger",
    "ALTER TABLE ledger_v5 RENAME TO ledger",
    "CREATE UNIQUE INDEX ledger_request ON ledger (request_id) WHERE kind = 'queue'",
    "CREATE INDEX ledger_customer_time ON ledger (customer_id, created_at)",
    "CREATE INDEX ledger_open ON ledger (next_check_at) WHERE status = 'pending'",
)
