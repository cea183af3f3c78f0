"""The web sessions table: one row per signed-in browser, of one kind (`portal`, `console`).

Only the SHA-256 of the cookie's token is stored, so a read of the table opens no session.
Free of store imports; portable SQL (part of the portal's migration).
"""

from __future__ import annotations

WEB_SESSIONS_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS web_sessions (
        token_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS web_sessions_subject ON web_sessions (kind, subject_id)",
)
