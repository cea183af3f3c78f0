"""The index of open holds (store migration 7): ledger rows still `reserved`, by age.

The reconciler releases holds whose process died before the upstream answered (no request
id to ask fal about); partial, so only open holds are in it and it stays tiny. Free of
store imports; portable SQL.
"""

from __future__ import annotations

RESERVED_NAME = "ledger: index of open holds, to release those a dead process left behind"

RESERVED_STATEMENTS: tuple[str, ...] = (
    "CREATE INDEX ledger_reserved ON ledger (created_at) WHERE status = 'reserved'",
)
