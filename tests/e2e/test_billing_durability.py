"""Durability of the ledger: `nxs serve` killed with SIGKILL under load, then restarted —
every request whose answer reached a client is in the ledger.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from tests.e2e.conftest import Customer, Deployment, Gateway, eventually

SDXL = "fal-ai/fast-sdxl"


def hammer(gateway: Gateway, customer: Customer, stop: threading.Event) -> list[str]:
    """Runs and submits until `stop`; the fal request ids of every answer received."""
    seen: list[str] = []
    headers = {"Authorization": f"Key {customer.key}"}
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                ran = client.post(f"{gateway.url}/{SDXL}", json={"prompt": "r"}, headers=headers)
                if ran.status_code == 200:
                    seen.append(ran.headers["x-fal-request-id"])
                queued = client.post(
                    f"{gateway.url}/queue/{SDXL}", json={"prompt": "q"}, headers=headers
                )
                if queued.status_code == 200:
                    seen.append(queued.json()["request_id"])
            except httpx.HTTPError:
                return seen  # the gateway is gone
    return seen


def test_sigkill_under_load_loses_no_answered_request(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.env["NXS_RECONCILE_AFTER_SECONDS"] = "0.5"
    for n in range(4):  # the emulator runs 2 requests at a time per account
        deployment.add_upstream(f"key{n}", f"acct-durable{n}:secret-durable-000{n}")
    deployment.nxs("pricing", "set", SDXL, "image", "0.01")
    deployment.nxs("plans", "create", "prepaid", "--prepaid")
    gateway = fresh_gateway(deployment)
    metered = gateway.customer("metered")
    payer = gateway.customer("payer")
    deployment.nxs("subscriptions", "set", payer.name, "prepaid")
    deployment.nxs("credits", "grant", payer.name, "1000")
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(hammer, gateway, c, stop) for c in [metered, payer] * 8]
        time.sleep(2.5)
        gateway.server.kill()  # SIGKILL: no shutdown, no flush
        stop.set()
        answered = {rid for future in futures for rid in future.result()}
    assert len(answered) > 10
    restarted = fresh_gateway(deployment)
    assert restarted.request("GET", "/healthz").status_code == 200
    rows = json.loads(deployment.nxs("usage", "--json"))
    recorded = {row["request_id"] for row in rows}
    assert answered <= recorded

    def reconciled() -> bool:  # the restarted gateway settles the unfetched submits
        rows = json.loads(deployment.nxs("usage", "--json"))
        return all(r["status"] == "settled" for r in rows if r["request_id"] in answered)

    assert eventually(reconciled, 30)
