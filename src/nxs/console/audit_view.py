"""The console's audit log: the store's entries, with each change made in the console shown
once — the admin API's own entry, its actor replaced by `console: NAME` from the `console`
entry written beside it in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace

from nxs.admin import audit
from nxs.admin.audit import AuditEntry
from nxs.store.database import Database


def entries(database: Database, *, limit: int, action: str | None = None) -> list[AuditEntry]:
    """The newest entries first, console attributions folded into the change they name."""
    return fold(audit.entries(database, limit=limit, action=action))


def fold(found: list[AuditEntry]) -> list[AuditEntry]:
    shown: list[AuditEntry] = []
    pending: dict[tuple[str, str | None], str] = {}  # (action, target) → operator
    for entry in found:  # newest first: the console entry comes before the change it names
        key = (entry.action, entry.target)
        if entry.actor == audit.CONSOLE:
            pending[key] = str(entry.detail.get("operator", "?"))
            continue
        operator = pending.pop(key, None) if entry.actor == audit.API else None
        shown.append(replace(entry, actor=f"console: {operator}") if operator else entry)
    return shown
