"""The table of fal's billing unit per endpoint (store migration 6).

`nxs pricing sync` remembers the unit fal's pricing API names for each endpoint — even
when an operator's own rule for it is kept — so settlement knows whether
`x-fal-billable-units` counts the rule's unit. Free of store imports; portable SQL.
"""

from __future__ import annotations

FAL_UNITS_NAME = "billing: fal's billing unit per endpoint"

FAL_UNITS_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS fal_units (
        endpoint TEXT PRIMARY KEY,
        unit TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
)
