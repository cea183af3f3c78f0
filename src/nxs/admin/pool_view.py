"""What `nxs upstream list` adds from the gateways' shared state: each key's requests
outstanding at fal and its cooldown left, as every gateway of the deployment counts them
(Redis with `NXS_REDIS_URL`, or the SQLite state file of `nxs serve --workers N`). A
gateway of one worker keeps its counts in memory: the admin API's `live` shows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nxs.config import Settings
from nxs.state.interface import State
from nxs.state.keys import KeyLoad
from nxs.state.redis_state import RedisState
from nxs.state.sqlite_state import SqliteState, state_path
from nxs.store.database import parse_url


def shared_loads(settings: Settings, key_ids: Sequence[str]) -> dict[str, KeyLoad] | None:
    """Every key's load from the shared state, or None when the gateways share none."""
    state = _shared_state(settings)
    if state is None or not key_ids:
        return None
    return asyncio.run(_read(state, key_ids))


def _shared_state(settings: Settings) -> State | None:
    if settings.redis_url:
        return RedisState.from_url(settings.redis_url)
    url = parse_url(settings.database_url)
    if url.scheme == "sqlite" and url.path is not None and state_path(url.path).exists():
        return SqliteState(state_path(url.path))
    return None


async def _read(state: State, key_ids: Sequence[str]) -> dict[str, KeyLoad]:
    try:
        return await state.loads(key_ids)
    finally:
        await state.close()
