"""Redis down: limits follow NXS_LIMITS_WHEN_REDIS_DOWN, answer fast, log once per outage,
and count again without a restart once Redis is back on the same port."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.redis_server import RedisServer, start_redis

from nxs.errors import SharedStateUnavailable, render
from nxs.state.limits import Limit, Permit, Refusal
from nxs.state.outage import WhenDown
from nxs.state.redis_state import RedisState

LIMITS = [Limit("customer:c", rpm=2)]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own: it is stopped and started again."""
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


def test_closed_answers_503_in_fals_shape_then_counts_again_after_restart(
    own_redis: RedisServer,
) -> None:
    async def scenario() -> None:
        state = RedisState.from_url(own_redis.url, when_down=WhenDown.CLOSED)
        assert isinstance(await state.acquire(LIMITS, "r1", 60), Permit)
        own_redis.stop()
        started = time.monotonic()
        with pytest.raises(SharedStateUnavailable) as refused:
            await state.acquire(LIMITS, "r2", 60)
        assert time.monotonic() - started < 1.0
        assert refused.value.status == 503
        assert render(refused.value) == (
            b'{"detail":"Rate limiting is temporarily unavailable \\u2014 try again shortly",'
            b'"error_type":"shared_state_unavailable"}'
        )
        await state.release("r1")  # a release while down is quiet: the lease expires anyway
        own_redis.start()
        results = [await state.acquire(LIMITS, f"r{n}", 60) for n in range(3, 6)]
        assert [isinstance(r, Permit) for r in results] == [True, True, False]
        await state.close()

    asyncio.run(scenario())


def test_open_admits_uncounted_and_warns_once_per_outage(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        state = RedisState.from_url(own_redis.url, when_down=WhenDown.OPEN)
        assert isinstance(await state.acquire(LIMITS, "r1", 60), Permit)
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="nxs.state"):
            down = [await state.acquire(LIMITS, f"d{n}", 60) for n in range(5)]
            assert all(isinstance(result, Permit) for result in down)
            own_redis.start()
            back = [await state.acquire(LIMITS, f"b{n}", 60) for n in range(3)]
        assert [isinstance(r, Permit) for r in back] == [True, True, False]
        assert isinstance(back[2], Refusal)
        messages = [record.getMessage() for record in caplog.records]
        assert len(messages) == 2
        assert messages[0].startswith("shared state unreachable")
        assert messages[1].startswith("shared state reachable again")
        assert own_redis.url not in " ".join(messages)
        await state.close()

    asyncio.run(scenario())


def test_a_subscriber_resubscribes_after_an_outage_and_is_told_to_resync(
    own_redis: RedisServer,
) -> None:
    async def scenario() -> None:
        listener = RedisState.from_url(own_redis.url)
        heard: list[int] = []
        await listener.subscribe(heard.append)
        own_redis.stop()
        await asyncio.sleep(0.3)
        own_redis.start()
        publisher = RedisState.from_url(own_redis.url)
        deadline = time.monotonic() + 3.0
        while 5 not in heard and time.monotonic() < deadline:
            await publisher.publish(5)
            await asyncio.sleep(0.1)
        assert heard[0] == 0 and 5 in heard  # RESYNC first: notices may have been missed
        await listener.close()
        await publisher.close()

    asyncio.run(scenario())


def test_scripts_the_server_forgot_are_sent_again_in_a_pipelined_turn(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        state = RedisState.from_url(redis_server.url, namespace="nxs:test-noscript:")
        assert isinstance(await state.acquire(LIMITS, "warm", 60), Permit)  # scripts loaded
        await state.client.script_flush()
        limits = [Limit("customer:flushed", rpm=5)]
        turn = await asyncio.gather(*(state.acquire(limits, f"r{n}", 60) for n in range(8)))
        assert [isinstance(result, Permit) for result in turn] == [True] * 5 + [False] * 3
        await state.close()

    asyncio.run(scenario())
