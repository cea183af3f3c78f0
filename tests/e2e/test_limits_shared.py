"""Limits shared by the workers of `nxs serve --workers 2`: exact on SQLite alone (the state
file beside the database) and with Redis, and a queued request's slot freed by whichever
worker sees it end."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway
from tests.support.redis_server import RedisServer

SDXL = "fal-ai/fast-sdxl"


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.sqlite_only), "redis"])
def deployment(
    request: pytest.FixtureRequest, make_deployment: Callable[[], Deployment]
) -> Deployment:
    deployment = make_deployment()
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        deployment.env["NXS_REDIS_URL"] = server.url
    deployment.add_upstream("main", "acct-limits:secret-limits-0001")
    return deployment


def on_plan(deployment: Deployment, *plan: str) -> Customer:
    """A customer on a new plan, created before the gateway starts (every worker has it)."""
    deployment.nxs("plans", "create", "limited", *plan)
    customer = deployment.customer("limited")
    deployment.nxs("subscriptions", "set", customer.name, "limited")
    return customer


def submit(gateway: Gateway, key: str) -> httpx.Response:
    """One submit on a connection of its own, so calls spread over the workers."""
    with httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Key {key}"}
        return client.post(f"{gateway.url}/queue/{SDXL}", headers=headers, json={"prompt": "a"})


def test_rpm_10_admits_exactly_10_of_40_calls_over_two_workers(
    deployment: Deployment, fresh_gateway: Callable[..., Gateway]
) -> None:
    customer = on_plan(deployment, "--rpm", "10")
    gateway = fresh_gateway(deployment, workers=2)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: submit(gateway, customer.key), range(40)))
    assert sorted(answer.status_code for answer in answers) == [200] * 10 + [429] * 30
    refused = [answer for answer in answers if answer.status_code == 429]
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in refused)


def test_a_queued_requests_slot_is_freed_by_whichever_worker_sees_it_end(
    deployment: Deployment, fresh_gateway: Callable[..., Gateway]
) -> None:
    customer = on_plan(deployment, "--max-in-flight", "1")
    gateway = fresh_gateway(deployment, workers=2)
    auth = {"Authorization": f"Key {customer.key}"}
    for _ in range(4):  # each round's result fetch lands on either worker
        first = submit(gateway, customer.key)
        assert first.status_code == 200, first.text
        assert submit(gateway, customer.key).status_code == 429
        request_id = first.json()["request_id"]
        gateway.wait_completed(SDXL, request_id, customer.key)
        with httpx.Client(timeout=30) as client:
            assert client.get(first.json()["response_url"], headers=auth).status_code == 200
