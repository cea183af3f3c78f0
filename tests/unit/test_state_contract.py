"""The shared-state contract, proven once per backend: in process, SQLite and Redis.

"Workers" are independent state objects on one backend (own connections); the in-process
backend is the one worker it serves. Time moves on the test's clock where the backend
takes one, for real (short TTLs) on Redis.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.redis_server import RedisServer
from tests.support.servers import ROOT
from tests.support.state_cluster import Cluster, in_process, redis, sqlite

from nxs.state.keys import IDLE
from nxs.state.limits import Limit, Permit, Refusal


@pytest.fixture(params=["in-process", "sqlite", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if request.param == "in-process":
        yield in_process()
    elif request.param == "sqlite":
        yield sqlite(tmp_path)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield redis(server.url)


def admitted(results: list[Permit | Refusal]) -> int:
    return sum(isinstance(result, Permit) for result in results)


def test_rpm_admits_exactly_rpm_of_concurrent_calls_across_workers(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        limits = [Limit("customer:c", rpm=10)]
        calls = [
            w.acquire(limits, f"r{w_i}-{n}", 60)
            for w_i, w in enumerate(c.workers(4))
            for n in range(10)
        ]
        assert admitted(await asyncio.gather(*calls)) == 10

    cluster.run(scenario)


def test_in_flight_cap_holds_across_workers(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        limits = [Limit("key:k", max_in_flight=3)]
        calls = [
            w.acquire(limits, f"r{w_i}-{n}", 60)
            for w_i, w in enumerate(c.workers(4))
            for n in range(5)
        ]
        results = await asyncio.gather(*calls)
        assert admitted(results) == 3
        refused = [r for r in results if isinstance(r, Refusal)]
        assert {(r.scope, r.reason, r.retry_after) for r in refused} == {("key:k", "in_flight", 1)}

    cluster.run(scenario)


def test_any_worker_releases_a_permit_by_its_lease_id(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        first, second, third = c.workers(3)
        limits = [Limit("customer:c", max_in_flight=1)]
        assert isinstance(await first.acquire(limits, "req_a", 60), Permit)
        assert isinstance(await second.acquire(limits, "req_b", 60), Refusal)
        await second.release("req_a")
        assert isinstance(await third.acquire(limits, "req_c", 60), Permit)
        await third.release("req_a")  # released twice: gives nothing back
        assert isinstance(await first.acquire(limits, "req_d", 60), Refusal)

    cluster.run(scenario)


def test_a_dead_workers_lease_comes_back_when_it_expires(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        dead, alive = c.workers(2)
        limits = [Limit("customer:c", max_in_flight=1)]
        assert isinstance(await dead.acquire(limits, "req_lost", 0.3), Permit)
        assert isinstance(await alive.acquire(limits, "req_b", 60), Refusal)
        await c.advance(0.4)
        assert isinstance(await alive.acquire(limits, "req_c", 60), Permit)

    cluster.run(scenario)


def test_a_renewed_lease_outlives_its_first_ttl(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        holder, other = c.workers(2)
        limits = [Limit("customer:c", max_in_flight=1)]
        assert isinstance(await holder.acquire(limits, "req_long", 0.3), Permit)
        assert await other.renew("req_long", 60) is True
        await c.advance(0.4)
        assert isinstance(await other.acquire(limits, "req_b", 60), Refusal)
        assert await other.renew("req_unknown", 60) is False

    cluster.run(scenario)


def test_a_refusal_consumes_nothing_in_any_scope(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        (state,) = c.workers(1)
        customer, key = Limit("customer:c", rpm=100), Limit("key:k", max_in_flight=1)
        assert isinstance(await state.acquire([customer, key], "r0", 60), Permit)
        refused = [await state.acquire([customer, key], f"x{n}", 60) for n in range(20)]
        assert admitted(refused) == 0
        alone = [await state.acquire([customer], f"y{n}", 60) for n in range(100)]
        assert admitted(alone) == 99

    cluster.run(scenario)


def test_retry_after_is_the_wait_for_the_next_token_in_whole_seconds(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        first, second = c.workers(2)
        limits = [Limit("key:k", rpm=2)]  # one token per 30 s
        assert isinstance(await first.acquire(limits, "r1", 60), Permit)
        assert isinstance(await second.acquire(limits, "r2", 60), Permit)
        assert await first.acquire(limits, "r3", 60) == Refusal("key:k", "rpm", 30)
        fast = [Limit("key:f", rpm=60)]  # one token a second: a burst's refusal says 1
        assert admitted([await second.acquire(fast, f"f{n}", 60) for n in range(60)]) == 60
        assert await first.acquire(fast, "f60", 60) == Refusal("key:f", "rpm", 1)

    cluster.run(scenario)


def test_tokens_come_back_with_time(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        first, second = c.workers(2)
        limits = [Limit("key:k", rpm=60)]  # one token a second
        assert admitted([await first.acquire(limits, f"a{n}", 60) for n in range(61)]) == 60
        await c.advance(1.1)
        assert admitted([await second.acquire(limits, f"b{n}", 60) for n in range(5)]) == 1

    cluster.run(scenario)


def test_a_cooldown_is_seen_by_every_worker_and_never_shortened(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        setter, reader = c.workers(2)
        await setter.cool_down("up_1", 5)
        await reader.cool_down("up_1", 1)
        loads = await reader.loads(["up_1", "up_2"])
        assert 4 < loads["up_1"].cooldown <= 5 and loads["up_1"].in_flight == 0
        assert loads["up_2"] == IDLE

    cluster.run(scenario)


def test_key_calls_in_flight_are_counted_across_workers_and_expire(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        first, second, reader = c.workers(3)
        await first.started("up_1", "req_a", 60)
        await second.started("up_1", "req_b", 0.3)
        await second.started("up_2", "req_c", 60)
        assert [load.in_flight for load in (await reader.loads(["up_1", "up_2"])).values()] == [
            2,
            1,
        ]
        await second.finished("up_1", "req_a")
        await c.advance(0.4)
        assert (await reader.loads(["up_1"]))["up_1"] == IDLE

    cluster.run(scenario)


def test_an_idempotency_marker_has_one_holder_until_dropped_or_expired(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        first, second = c.workers(2)
        claims = await asyncio.gather(*(w.claim("cus_1:key-1", 0.3) for w in (first, second)))
        assert sorted(claims) == [False, True]
        await first.drop("cus_1:key-1")
        assert await second.claim("cus_1:key-1", 0.3) is True
        await c.advance(0.4)
        assert await first.claim("cus_1:key-1", 60) is True

    cluster.run(scenario)


def test_a_notice_reaches_every_subscribed_worker_within_a_second(cluster: Cluster) -> None:
    async def scenario(c: Cluster) -> None:
        first, second, publisher = c.workers(3)
        heard: list[tuple[str, int]] = []
        subscriptions = [
            await first.subscribe(lambda version: heard.append(("first", version))),
            await second.subscribe(lambda version: heard.append(("second", version))),
        ]
        started = time.monotonic()
        await publisher.publish(7)
        while len(heard) < 2 and time.monotonic() - started < 1.0:
            await asyncio.sleep(0.01)
        assert sorted(heard) == [("first", 7), ("second", 7)]
        for subscription in subscriptions:
            await subscription.close()

    cluster.run(scenario)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_rpm_is_exact_across_worker_processes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        target = str(tmp_path / "nxs.db-state")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        target = f"{server.url} nxs:test-{tmp_path.name}:"
    command = [sys.executable, "-m", "tests.support.state_worker", kind, target, "10"]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT) for _ in range(4)]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0]
    assert sum(int(output) for output in outputs) == 10
