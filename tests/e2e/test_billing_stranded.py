"""A hold whose gateway was killed (SIGKILL) between the reservation and fal's answer has
no request id, so nobody can ask fal about it: the restarted gateway's reconciler gives it
back to the customer's balance once it is older than `NXS_RESERVATION_TTL_SECONDS`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import GOOD_KEY, Customer, Deployment, Gateway, eventually
from tests.support.servers import RunningServer, start_emulator

SDXL = "fal-ai/fast-sdxl"
ADMIN_TOKEN = "stranded-admin-token-0123456789abcdef"


@pytest.fixture
def slow_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The emulator at 100× its time: a run waits 15 s IN_QUEUE, time to kill a gateway."""
    server = start_emulator(tmp_path_factory.mktemp("slow-fal"), "--time-scale", "100")
    yield server
    server.kill()  # SIGTERM would wait for the orphaned run to finish


def admin(gateway: Gateway, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    answer = gateway.request(method, f"/admin/v1{path}", ADMIN_TOKEN, scheme="Bearer", json=body)
    assert answer.is_success, answer.text
    return answer.json()


def prepaid_customer(gateway: Gateway) -> Customer:
    """SDXL at 0.01 per image; a prepaid customer with 1 USD, its key known to `gateway`."""
    admin(gateway, "POST", "/upstream-keys", {"name": "main", "secret": GOOD_KEY, "weight": 1})
    admin(gateway, "PUT", "/prices", {"pattern": SDXL, "unit": "image", "unit_price": "0.01"})
    admin(gateway, "POST", "/plans", {"name": "prepaid", "prepaid": True})
    admin(gateway, "POST", "/customers", {"name": "stranded"})
    admin(gateway, "PUT", "/customers/stranded/subscription", {"plan": "prepaid"})
    admin(gateway, "POST", "/customers/stranded/credits", {"amount": "1"})
    created = admin(gateway, "POST", "/customers/stranded/keys")
    customer = Customer("stranded", created["key"], created["id"])
    assert eventually(lambda: gateway.knows(customer.key))
    return customer


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
    customer = prepaid_customer(gateway)
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
