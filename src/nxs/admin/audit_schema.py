"""The audit log's table, as the statements of one store migration.

Kept free of store imports so `nxs.store.migrations` can list it without an import
cycle. `IF NOT EXISTS` keeps it safe alongside any other migration naming `audit_log`
with the same columns (the shape docs/billing-design.md §2 gives it).
"""

from __future__ import annotations

AUDIT_NAME = "admin audit log"

AUDIT_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
)
