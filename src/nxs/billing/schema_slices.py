"""The table of credit slices (store migration 13; `nxs.billing.slices`). Free of store
imports; portable SQL.
"""

from __future__ import annotations

from typing import Final

SLICES_NAME: Final = "credit slices: a share of prepaid credit held by one gateway process"
SLICES_STATEMENTS: Final = (
    """CREATE TABLE credit_slices (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        micros INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
)
