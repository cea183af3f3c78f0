"""The table of fal's catalogue (store migration 11): one row per endpoint id that fal's
Platform API `GET /v1/models` lists, written whole by `nxs models sync`.
Free of store imports; portable SQL.
"""

from __future__ import annotations

CATALOGUE_NAME = "catalogue: fal's endpoint ids"

CATALOGUE_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS fal_endpoints (
        endpoint TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        status TEXT NOT NULL,
        synced_at DOUBLE PRECISION NOT NULL
    )""",
)
