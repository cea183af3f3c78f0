"""The audit log of admin actions: who ("admin-api", "cli", "console"), what, on which target, when.

`record(database, actor, action, target, detail)` appends one entry; call it inside the
transaction of the change it describes so both land or neither does. Details are small
JSON objects of plain values; keys that name secrets are refused, so none is ever logged.
From the CLI: `audit.record(store.database, CLI, "customers.create", name)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nxs.store.database import Database, Row

API = "admin-api"
CLI = "cli"
CONSOLE = "console"  # who in /console made the change the entry beside it records
ACTORS = frozenset({API, CLI, CONSOLE})
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Detail keys that could carry a secret: refused rather than logged.
SECRET_WORDS = ("secret", "token", "password", "plaintext", "api_key", "authorization")

Scalar = str | int | float | bool | None
Detail = Mapping[str, Scalar]


@dataclass(frozen=True)
class AuditEntry:
    """One admin action as recorded."""

    id: int
    at: float  # seconds since the epoch, UTC
    actor: str
    action: str  # e.g. "customers.create", "keys.revoke", "upstream.add"
    target: str | None  # what it acted on: a customer or upstream key name, a key id…
    detail: dict[str, Any]


def record(
    database: Database,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Detail | None = None,
) -> None:
    """Append an entry (joins the caller's transaction if one is open)."""
    if actor not in ACTORS:
        raise ValueError(f"Unknown audit actor {actor!r}: use one of {sorted(ACTORS)}")
    text = _detail_text(detail or {})
    database.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (time.time(), actor, action, target, text),
    )


def entries(
    database: Database,
    *,
    limit: int = DEFAULT_LIMIT,
    action: str | None = None,
    target: str | None = None,
    since: float | None = None,
) -> list[AuditEntry]:
    """The newest entries first, optionally only one action, target, or from a time on."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("action", action), ("target", target)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("at >= ?")
        params.append(since)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(max(1, min(limit, MAX_LIMIT)))
    rows = database.fetch_all(
        "SELECT id, at, actor, action, target, detail FROM audit_log"
        f"{where} ORDER BY at DESC, id DESC LIMIT ?",
        params,
    )
    return [_entry(row) for row in rows]


def _detail_text(detail: Detail) -> str | None:
    for key, value in detail.items():
        lowered = key.lower()
        if any(word in lowered for word in SECRET_WORDS):
            raise ValueError(f"Audit detail {key!r} looks like a secret: never log it")
        if not isinstance(value, str | int | float | bool | None):
            raise ValueError(f"Audit detail {key!r} must be a plain value")
    return json.dumps(dict(detail), sort_keys=True) if detail else None


def _entry(row: Row) -> AuditEntry:
    detail = json.loads(row["detail"]) if row["detail"] else {}
    return AuditEntry(
        id=int(row["id"]),
        at=float(row["at"]),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        detail=detail if isinstance(detail, dict) else {},
    )
