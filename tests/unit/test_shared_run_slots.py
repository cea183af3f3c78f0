"""An upstream key's run slots shared by replicas (`SharedSlots` over SQLite's state file
and Redis): a finished run's lease is kept a moment as a spare for this process's next
run, still counted for every replica, then given back once idle."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.support.redis_server import RedisServer
from tests.support.state_cluster import Cluster, redis, sqlite

from nxs.gateway.pool import KeyPool, PoolKey
from nxs.gateway.scheduler import SPARE_SECONDS, SharedSlots
from nxs.store.models import UpstreamKey


@pytest.fixture(params=["sqlite", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Cluster:
    if request.param == "sqlite":
        return sqlite(tmp_path)
    server: RedisServer = request.getfixturevalue("redis_server")
    return redis(server.url)


def one_slot_key() -> PoolKey:
    """The key as one replica's pool sees it: concurrency 1."""
    pool = KeyPool(lambda *_: None)
    pool.load([UpstreamKey("up_1", "one", "acct:s", 1, "active", None, 0.0, 1)])
    return pool.get("up_1")


def test_a_spare_lease_serves_the_next_run_and_counts_until_given_back(
    cluster: Cluster,
) -> None:
    async def scenario(c: Cluster) -> None:
        a, b = SharedSlots(c.worker(), 60.0), SharedSlots(c.worker(), 60.0)
        key_a, key_b = one_slot_key(), one_slot_key()
        assert await a.claim(key_a)
        first = key_a.leases[-1]
        assert not await b.claim(key_b)  # the key's one slot is A's
        a.release(key_a)  # the run ended: its lease is spare, still A's
        assert not await b.claim(key_b)
        assert await a.claim(key_a)  # A's next run takes the spare …
        assert key_a.leases == [first]  # … the same lease, no new one
        a.release(key_a)
        await asyncio.sleep(SPARE_SECONDS * 3)  # idle: given back
        await a.wait_closed()
        assert await b.claim(key_b)
        b.release(key_b)
        b.close()
        await b.wait_closed()

    cluster.run(scenario)
