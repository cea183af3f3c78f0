"""The columns the pool's scheduler keeps (store migration 12).

Each upstream key's concurrency (fal's per-account limit; fal starts accounts at 2) and
its last error with its time, shown by `nxs upstream list`; each plan's priority, the
weight of its customers' turns while runs wait for a free slot. Portable SQL.
"""

from __future__ import annotations

SCHEDULER_NAME = "scheduler: upstream key concurrency and last error, plan priority"

SCHEDULER_STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE upstream_keys ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 2",
    "ALTER TABLE upstream_keys ADD COLUMN last_error TEXT",
    "ALTER TABLE upstream_keys ADD COLUMN last_error_at DOUBLE PRECISION",
    "ALTER TABLE plans ADD COLUMN priority INTEGER NOT NULL DEFAULT 1",
)
