"""The console's view of the upstream pool: each key's stored state and this worker's live
counters (in flight, cooldown, connection failures), plus its recent traffic from the ledger.

Live counters come from the gateway's own `KeyPool` (the worker answering the page); the
scheduler's fields (working limit, outstanding at fal, last error) are read when present.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from nxs.gateway.pool import PoolKey
from nxs.store.database import Database
from nxs.store.models import UpstreamKey

RECENT_SECONDS: Final = 3600.0


@dataclass(frozen=True)
class PoolLine:
    """One upstream key as the pool page shows it; secrets only masked."""

    id: str
    name: str
    masked: str
    weight: int
    state: str  # active | invalid | suspended (stored)
    reason: str | None  # why it left `active`, as the pool recorded it
    in_flight: int | None  # None: this process has no live pool (e.g. the CLI)
    concurrency: int | None  # the limit in use now (learned from fal's 429s)
    configured: int  # the operator's concurrency for the key
    outstanding: int | None
    cooldown_seconds: float
    failures: int
    recent_requests: int
    recent_refunded: int
    last_error: str | None  # the last error fal or the connection gave this key
    last_error_at: float | None


def pool_lines(
    keys: Iterable[UpstreamKey],
    live: Iterable[PoolKey],
    database: Database,
    *,
    since: float,
) -> list[PoolLine]:
    """The stored keys joined with this worker's live entries and the ledger's last hour."""
    entries = {entry.key.id: entry for entry in live}
    traffic = _traffic(database, since)
    clock = time.monotonic()
    return [_line(key, entries.get(key.id), traffic.get(key.id, (0, 0)), clock) for key in keys]


def _line(
    key: UpstreamKey, entry: PoolKey | None, traffic: tuple[int, int], clock: float
) -> PoolLine:
    cooldown = max(0.0, entry.cooldown_until - clock) if entry is not None else 0.0
    return PoolLine(
        id=key.id,
        name=key.name,
        masked=key.masked,
        weight=key.weight,
        state=_state(key, entry),
        reason=key.state_reason,
        in_flight=entry.in_flight if entry is not None else None,
        concurrency=_concurrency(key, entry, clock),
        configured=key.concurrency,
        outstanding=_optional_int(entry, "outstanding"),
        cooldown_seconds=round(cooldown, 1),
        failures=entry.failures if entry is not None else 0,
        recent_requests=traffic[0],
        recent_refunded=traffic[1],
        last_error=getattr(entry, "last_error", None) or getattr(key, "last_error", None),
        last_error_at=getattr(entry, "last_error_at", None) or getattr(key, "last_error_at", None),
    )


def _state(key: UpstreamKey, entry: PoolKey | None) -> str:
    """The stored state (an operator's change shows at once), unless this worker has just
    taken the key out and its write is still on the way."""
    if key.state != "active" or entry is None:
        return key.state
    return entry.state


def _concurrency(key: UpstreamKey, entry: PoolKey | None, clock: float) -> int | None:
    """The working limit the pool uses now (learned from 429s), else the configured one."""
    limit = getattr(entry, "limit", None)
    if callable(limit):
        value = limit(clock)
        return value if isinstance(value, int) else None
    configured = getattr(key, "concurrency", None)
    return configured if isinstance(configured, int) else None


def _traffic(database: Database, since: float) -> dict[str, tuple[int, int]]:
    rows = database.fetch_all(
        "SELECT upstream_key_id, COUNT(*) AS requests,"
        " SUM(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END) AS refunded"
        " FROM ledger WHERE created_at >= ? AND upstream_key_id IS NOT NULL"
        " GROUP BY upstream_key_id",
        (since,),
    )
    return {
        str(row["upstream_key_id"]): (int(row["requests"]), int(row["refunded"] or 0))
        for row in rows
    }


def _optional_int(entry: PoolKey | None, name: str) -> int | None:
    value = getattr(entry, name, None) if entry is not None else None
    return value if isinstance(value, int) else None
