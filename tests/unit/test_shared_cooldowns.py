"""A 429 seen by one worker's pool rests that upstream key in every worker's pool."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.support.redis_server import RedisServer

from nxs.gateway.pool import KeyPool
from nxs.gateway.shared_cooldowns import SharedCooldowns
from nxs.state.interface import State
from nxs.state.redis_state import RedisState
from nxs.state.sqlite_state import SqliteState
from nxs.store.models import UpstreamKey

KEYS = [
    UpstreamKey("up_hot", "hot", "hot:secret", 1000, "active", None, 0.0),
    UpstreamKey("up_cold", "cold", "cold:secret", 1, "active", None, 0.0),
]


def pool() -> KeyPool:
    keys = KeyPool(lambda key_id, state, reason: None)
    keys.load(KEYS)
    return keys


def states(kind: str, folder: Path, request: pytest.FixtureRequest) -> tuple[State, ...]:
    if kind == "sqlite":
        return tuple(SqliteState(folder / "nxs.db-state") for _ in range(2))
    server: RedisServer = request.getfixturevalue("redis_server")
    namespace = f"nxs:test-{folder.name}:"
    return tuple(RedisState.from_url(server.url, namespace=namespace) for _ in range(2))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_another_workers_429_rests_the_key_here(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async def scenario() -> None:
        first_state, second_state = states(kind, tmp_path, request)
        first, second = SharedCooldowns(first_state, pool()), SharedCooldowns(second_state, pool())
        first.attach()
        hot = first.pool.get("up_hot")
        assert hot is not None
        assert (
            first.pool.judge(hot, 429, b"", "30") == "busy"
        )  # a queue submit's 429: rests the key
        await asyncio.gather(*first.reports)
        await second.sync()
        chosen = {entry.name for entry in (second.pool.choose(set()) for _ in range(50)) if entry}
        assert chosen == {"cold"}
        for state in (first_state, second_state):
            await state.close()

    asyncio.run(scenario())
