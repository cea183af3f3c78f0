"""Billing rules changed under a running gateway, which remembers what each customer pays
(plan and price, per store version): the next requests follow the new rule. And a credit
plan's hold for a priced request is never $0, so settling it always moves the balance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway, eventually

ACCOUNT = "acct-billing-changes"
ADMIN_TOKEN = "admin-token-billing-changes-5c1e"
SDXL = "fal-ai/fast-sdxl"  # the emulator bills one unit per image (num_images)
LCM = "fal-ai/fast-lcm-diffusion"
VISION = "fal-ai/realistic-vision"


@pytest.fixture(scope="module")
def gw(make_deployment: Callable[[], Deployment], start_gateway: Callable[..., Gateway]) -> Gateway:
    deployment = make_deployment()
    deployment.env["NXS_ADMIN_TOKEN"] = ADMIN_TOKEN  # fast reads of the ledger and balances
    deployment.add_upstream("main", f"{ACCOUNT}:secret-changes-0001")
    deployment.nxs("pricing", "set", VISION, "request", "0.01")
    deployment.nxs("pricing", "set", LCM, "request", "0.01")
    deployment.nxs("plans", "create", "prepaid", "--prepaid")
    return start_gateway(deployment)


def admin(gw: Gateway, path: str) -> Any:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = gw.client.get(f"{gw.url}/admin/v1{path}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def usage(gw: Gateway, customer: Customer) -> list[dict[str, Any]]:
    """The customer's ledger rows, oldest first."""
    return list(admin(gw, f"/usage/requests?customer={customer.name}"))


def available(gw: Gateway, customer: Customer) -> str:
    return str(admin(gw, f"/customers/{customer.name}/balance")["available"])


def test_a_new_price_reaches_the_next_requests_of_a_customer_already_priced(gw: Gateway) -> None:
    customer = gw.customer("repriced")
    assert gw.request("POST", f"/{LCM}", customer.key, json={"prompt": "a"}).status_code == 200
    gw.deployment.nxs("pricing", "set", LCM, "request", "0.02")

    def repriced() -> bool:
        answer = gw.request("POST", f"/{LCM}", customer.key, json={"prompt": "a"})
        assert answer.status_code == 200, answer.text
        return usage(gw, customer)[-1]["unit_price"] == "0.02"

    assert eventually(repriced)
    rows = usage(gw, customer)
    assert (rows[0]["unit_price"], rows[0]["cost"]) == ("0.01", "0.01")
    assert (rows[-1]["unit_price"], rows[-1]["cost"]) == ("0.02", "0.02")


def test_moving_a_served_customer_to_prepaid_without_credit_refuses_the_next_requests(
    gw: Gateway,
) -> None:
    customer = gw.customer("moved")

    def run() -> httpx.Response:
        return gw.request("POST", f"/{VISION}", customer.key, json={"prompt": "a"})

    assert run().status_code == 200
    gw.deployment.nxs("subscriptions", "set", customer.name, "prepaid")
    assert eventually(lambda: run().status_code == 402)
    answer = run()
    assert answer.status_code == 402
    assert answer.json()["detail"] == "Insufficient credit"
    gw.deployment.nxs("subscriptions", "set", customer.name, "default")  # and back
    assert eventually(lambda: run().status_code == 200)
