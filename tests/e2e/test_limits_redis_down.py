"""Redis down under a running gateway: limits follow NXS_LIMITS_WHEN_REDIS_DOWN (closed:
503 in fal's shape; open: admitted), answers stay fast, and limits count again once Redis
is back on the same port — no restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway
from tests.support.redis_server import RedisServer, start_redis

SDXL = "fal-ai/fast-sdxl"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


def started(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    redis: RedisServer,
    policy: str,
) -> tuple[Gateway, Customer]:
    deployment = make_deployment()
    deployment.env["NXS_REDIS_URL"] = redis.url
    deployment.env["NXS_LIMITS_WHEN_REDIS_DOWN"] = policy
    deployment.add_upstream("main", "acct-redis-down:secret-redis-down-01")
    deployment.nxs("plans", "create", "limited", "--rpm", "3")
    customer = deployment.customer("limited")
    deployment.nxs("subscriptions", "set", customer.name, "limited")
    return fresh_gateway(deployment, workers=2), customer


def submit_status(gateway: Gateway, key: str) -> int:
    return gateway.request("POST", f"/queue/{SDXL}", key, json={"prompt": "a"}).status_code


def test_closed_answers_503_while_redis_is_down_and_counts_again_after(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    own_redis: RedisServer,
) -> None:
    gateway, customer = started(make_deployment, fresh_gateway, own_redis, "closed")
    assert submit_status(gateway, customer.key) == 200
    own_redis.stop()
    began = time.monotonic()
    answer = gateway.request("POST", f"/queue/{SDXL}", customer.key, json={"prompt": "a"})
    assert time.monotonic() - began < 2.0
    assert answer.status_code == 503
    assert answer.json() == {
        "detail": "Rate limiting is temporarily unavailable — try again shortly",
        "error_type": "shared_state_unavailable",
    }
    own_redis.start()  # empty: counting starts afresh (a full bucket of 3)
    assert [submit_status(gateway, customer.key) for _ in range(4)] == [200, 200, 200, 429]
    assert "Traceback" not in gateway.server.log()


def test_open_admits_while_redis_is_down(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    own_redis: RedisServer,
) -> None:
    gateway, customer = started(make_deployment, fresh_gateway, own_redis, "open")
    own_redis.stop()
    assert [submit_status(gateway, customer.key) for _ in range(5)] == [200] * 5
    own_redis.start()  # empty: counting starts afresh (a full bucket of 3)
    assert [submit_status(gateway, customer.key) for _ in range(4)] == [200, 200, 200, 429]
    assert "Traceback" not in gateway.server.log()
