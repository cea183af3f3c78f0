"""A hold whose gateway was killed (SIGKILL) between the reservation and fal's answer has
no request id, so nobody can ask fal about it: the restarted gateway's reconciler gives it
back to the customer's balance once it is older than `NXS_RESERVATION_TTL_SECONDS`. So
does a credit slice (PostgreSQL: a share of a large credit held by the killed process);
runs through a live slice are charged exactly and its rest comes back by itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import httpx
import pytest
from tests.e2e.conftest import (
    GOOD_KEY,
    Customer,
    Deployment,
    Gateway,
    admin,
    eventually,
    prepaid_customer,
)
from tests.support.servers import RunningServer, start_emulator

SDXL = "fal-ai/fast-sdxl"
ADMIN_TOKEN = "stranded-admin-token-0123456789abcdef"


@pytest.fixture
def slow_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The emulator at 100× its time: a run waits 15 s IN_QUEUE, time to kill a gateway."""
    server = start_emulator(tmp_path_factory.mktemp("slow-fal"), "--time-scale", "100")
    yield server
    server.kill()  # SIGTERM would wait for the orphaned run to finish


def balance(gateway: Gateway) -> tuple[str, str]:
    found = admin(gateway, "GET", "/customers/stranded/balance")
    return found["available"], found["reserved"]


def run_in_background(gateway: Gateway, customer: Customer) -> threading.Thread:
    def run() -> None:
        headers = {"Authorization": f"Key {customer.key}"}
        with suppress(httpx.HTTPError):  # the gateway is killed under it
            httpx.post(f"{gateway.url}/{SDXL}", json={"prompt": "p"}, headers=headers, timeout=30)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_hold_of_a_run_whose_gateway_was_killed_comes_back_after_the_ttl(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    slow_fal: RunningServer,
) -> None:
    deployment = make_deployment()
    deployment.emulator = slow_fal
    deployment.env.update({"NXS_UPSTREAM_URL": slow_fal.url, "NXS_ADMIN_TOKEN": ADMIN_TOKEN})
    gateway = fresh_gateway(deployment)  # the default TTL: an hour
    customer = prepaid_customer(gateway, "stranded", GOOD_KEY)
    running = run_in_background(gateway, customer)
    assert eventually(lambda: balance(gateway) == ("0.99", "0.01"))  # held, fal still busy
    gateway.server.kill()  # SIGKILL before fal answered
    running.join()
    (stranded,) = json.loads(deployment.nxs("usage", "--json"))
    assert (stranded["status"], stranded["request_id"]) == ("reserved", None)

    deployment.env["NXS_RESERVATION_TTL_SECONDS"] = "1"
    restarted = fresh_gateway(deployment)
    assert eventually(lambda: balance(restarted) == ("1.00", "0.00"))
    (released,) = admin(restarted, "GET", "/usage/requests?customer=stranded")
    assert (released["status"], released["cost"], released["units_source"]) == (
        "refunded",
        "0.00",
        "none",
    )
    log = restarted.server.log()
    assert f"released stranded hold {stranded['id']}" in log
    assert customer.key not in log


def test_credit_a_killed_gateway_held_for_runs_comes_back_after_the_ttl(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    slow_fal: RunningServer,
    backend: str,
) -> None:
    deployment = make_deployment()
    deployment.emulator = slow_fal
    deployment.env.update({"NXS_UPSTREAM_URL": slow_fal.url, "NXS_ADMIN_TOKEN": ADMIN_TOKEN})
    gateway = fresh_gateway(deployment)
    customer = prepaid_customer(gateway, "stranded", GOOD_KEY, credit="100")
    running = run_in_background(gateway, customer)
    # on PostgreSQL the run's process holds a slice of 256 runs' worth; on SQLite its hold
    held = ("97.44", "2.56") if backend == "postgres" else ("99.99", "0.01")
    assert eventually(lambda: balance(gateway) == held)
    gateway.server.kill()
    running.join()

    deployment.env["NXS_RESERVATION_TTL_SECONDS"] = "1"
    restarted = fresh_gateway(deployment)
    assert eventually(lambda: balance(restarted) == ("100.00", "0.00"))
    assert "Traceback" not in restarted.server.log()


def test_runs_at_volume_are_charged_exactly_and_what_was_held_comes_back(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    """On PostgreSQL these runs go through a credit slice: nothing is written until each
    settles, and the slice's rest goes back two seconds after it was taken."""
    deployment = make_deployment()
    deployment.env["NXS_ADMIN_TOKEN"] = ADMIN_TOKEN
    gateway = fresh_gateway(deployment)
    customer = prepaid_customer(gateway, "stranded", GOOD_KEY, credit="100")
    headers = {"Authorization": f"Key {customer.key}"}

    def run(_: int) -> int:
        answer = gateway.client.post(f"{gateway.url}/{SDXL}", json={"prompt": "p"}, headers=headers)
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(run, range(40))) == [200] * 40
    rows = admin(gateway, "GET", "/usage/requests?customer=stranded")
    assert [(row["status"], row["cost"]) for row in rows] == [("settled", "0.01")] * 40
    assert eventually(lambda: balance(gateway) == ("99.60", "0.00"))
