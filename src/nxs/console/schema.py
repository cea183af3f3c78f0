"""The operators table (store migration 9): who may sign in to `/console`, and as what.

A name, an argon2 hash of the password (never the password) and a role: `admin` changes
things, `viewer` only reads. Free of store imports; portable SQL.
"""

from __future__ import annotations

OPERATORS_NAME = "console: operators (name, argon2 password hash, role admin|viewer)"

OPERATORS_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS operators (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role = 'admin' OR role = 'viewer'),
        created_at DOUBLE PRECISION NOT NULL,
        signed_in_at DOUBLE PRECISION
    )""",
)
