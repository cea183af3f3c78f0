"""The portal's tables (store migration 10): web sessions, customer accounts and their
invitations, key aliases, plans' Stripe prices, and Stripe's processed events and
subscriptions. Free of store imports; portable SQL.
"""

from __future__ import annotations

from nxs.web.schema import WEB_SESSIONS_STATEMENTS

PORTAL_NAME = "portal: web sessions, accounts, invites, key aliases, Stripe events"

PORTAL_STATEMENTS: tuple[str, ...] = (
    *WEB_SESSIONS_STATEMENTS,
    """CREATE TABLE IF NOT EXISTS portal_accounts (
        customer_id TEXT PRIMARY KEY REFERENCES customers (id),
        email TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        signed_in_at DOUBLE PRECISION
    )""",
    # Only the token's SHA-256 is kept: the link is shown once, to the operator.
    """CREATE TABLE IF NOT EXISTS portal_invites (
        token_hash TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        email TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        used_at DOUBLE PRECISION
    )""",
    "ALTER TABLE api_keys ADD COLUMN alias TEXT",
    "ALTER TABLE plans ADD COLUMN stripe_price TEXT",
    # One row per Stripe event acted on: its primary key makes each grant happen once.
    """CREATE TABLE IF NOT EXISTS stripe_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        customer_id TEXT,
        received_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS stripe_subscriptions (
        subscription_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        plan TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
)
