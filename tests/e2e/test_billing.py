"""Billing through the real gateway: credit reservations under concurrency, settlement from
the emulator's billable units, refunds only on upstream's verdict, plans, limits, pricing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway, eventually
from tests.support.servers import ROOT

ACCOUNT = "acct-billing"
SDXL = "fal-ai/fast-sdxl"
FLUX_1 = "fal-ai/flux-1/dev"  # billed by fal (and the emulator) per megapixel
ONE_1024_BY_768 = {"prompt": "a bay", "image_size": {"width": 1024, "height": 768}}


@pytest.fixture(scope="module")
def billed(make_deployment: Callable[[], Deployment]) -> Deployment:
    deployment = make_deployment()
    deployment.env["NXS_RECONCILE_AFTER_SECONDS"] = "0.5"
    deployment.add_upstream("main", f"{ACCOUNT}:secret-billing-0001")
    deployment.nxs("pricing", "set", SDXL, "image", "0.01")
    deployment.nxs("pricing", "set", FLUX_1, "image", "0.03")
    deployment.nxs(
        "pricing", "sync", "fal-ai/flux/dev", SDXL, FLUX_1, "fal-ai/nope"
    )  # fal's prices and units; the operator's SDXL and FLUX_1 prices stay
    deployment.nxs("plans", "create", "prepaid", "--prepaid")
    return deployment


@pytest.fixture(scope="module")
def gw(billed: Deployment, start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway(billed)


def ledger(deployment: Deployment, customer: Customer) -> list[dict[str, Any]]:
    """The customer's ledger rows, less the probes fal refused (422: no request id)."""
    rows = json.loads(deployment.nxs("usage", "--customer", customer.name, "--json"))
    return [row for row in rows if row["request_id"] is not None]


def balance(deployment: Deployment, customer: Customer) -> dict[str, str]:
    rows = json.loads(deployment.nxs("credits", "show", customer.name, "--json"))
    return dict(rows[0])


def prepaid(gw: Gateway, credit: str) -> Customer:
    """A customer on the prepaid plan (seen by the gateway: refused while broke) with credit."""
    customer = gw.customer("prepaid")
    gw.deployment.nxs("subscriptions", "set", customer.name, "prepaid")

    def broke() -> bool:
        return gw.request("POST", f"/queue/{SDXL}", customer.key, json={}).status_code == 402

    assert eventually(broke)
    gw.deployment.nxs("credits", "grant", customer.name, credit)
    return customer


def until_settled(gw: Gateway, customer: Customer, count: int) -> list[dict[str, Any]]:
    def closed() -> bool:
        rows = ledger(gw.deployment, customer)
        return len(rows) == count and all(r["status"] in ("settled", "refunded") for r in rows)

    assert eventually(closed, 20), ledger(gw.deployment, customer)
    return ledger(gw.deployment, customer)


def test_credit_for_exactly_10_images_admits_exactly_10_of_100_submits(gw: Gateway) -> None:
    customer = prepaid(gw, "0.10")

    def submit(_: int) -> httpx.Response:
        body = {"prompt": "a fox", "num_images": 1}
        return gw.request("POST", f"/queue/{SDXL}", customer.key, json=body)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(submit, range(100)))
    accepted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 402]
    assert len(accepted) == 10 and len(refused) == 90
    assert all(a.json()["detail"] == "Insufficient credit" for a in refused)
    rows = ledger(gw.deployment, customer)
    assert sum(Decimal(row["reserved"]) for row in rows) == Decimal("0.10")
    for answer in accepted:  # results fetched: each settles at the emulator's 1 image
        result_url = answer.json()["response_url"]
        assert gw.client.get(
            result_url, headers={"Authorization": f"Key {customer.key}"}
        ).is_success
    rows = until_settled(gw, customer, 10)
    assert sum(Decimal(row["cost"]) for row in rows) == Decimal("0.10")
    assert balance(gw.deployment, customer)["available"] == "0.00"


def test_run_settles_at_the_emulators_billable_units(gw: Gateway) -> None:
    customer = gw.customer("metered")
    body = {"prompt": "a bay", "num_images": 2, "image_size": {"width": 1024, "height": 768}}
    answer = gw.request("POST", "/fal-ai/flux/dev", customer.key, json=body)
    assert answer.status_code == 200, answer.text
    (row,) = ledger(gw.deployment, customer)
    assert row["status"] == "settled" and row["unit"] == "megapixel"
    assert Decimal(row["units"]) == Decimal(answer.headers["x-fal-billable-units"])
    assert row["request_id"] == answer.headers["x-fal-request-id"]


def test_error_result_is_refunded(gw: Gateway) -> None:
    customer = prepaid(gw, "1")
    submitted = gw.submit(SDXL, customer.key, prompt="[fail] a broken fox")
    gw.wait_completed(SDXL, submitted["request_id"], customer.key)
    result = gw.client.get(
        submitted["response_url"], headers={"Authorization": f"Key {customer.key}"}
    )
    assert result.status_code >= 400
    (row,) = until_settled(gw, customer, 1)
    assert row["request_id"] == submitted["request_id"]
    assert row["status"] == "refunded" and row["cost"] == "0.00"
    assert balance(gw.deployment, customer)["available"] == "1.00"


def test_abandoned_request_is_charged_by_the_reconciler_not_refunded(gw: Gateway) -> None:
    customer = gw.customer("walkaway")
    submitted = gw.submit(SDXL, customer.key)  # the client never polls again
    (row,) = until_settled(gw, customer, 1)
    assert row["request_id"] == submitted["request_id"]
    assert row["status"] == "settled" and row["cost"] == "0.01"
    assert row["units_source"] == "header"  # read back from the ledger: fal bills SDXL per image


def test_pricing_sync_imports_the_emulators_prices_and_keeps_the_operators(
    billed: Deployment,
) -> None:
    rules = {row["endpoint"]: row for row in json.loads(billed.nxs("pricing", "list", "--json"))}
    flux = rules["fal-ai/flux/dev"]
    assert (flux["unit"], Decimal(flux["unit_price"]), flux["source"]) == (
        "megapixel",
        Decimal("0.025"),
        "sync",
    )
    assert (rules[SDXL]["unit_price"], rules[SDXL]["source"]) == ("0.01", "operator")


def submits_upstream(deployment: Deployment) -> int:
    entries = deployment.received(ACCOUNT)
    return sum(1 for e in entries if e["method"] == "POST" and e["path"].startswith("/queue."))


def test_js_client_retrying_a_submit_with_an_idempotency_key_is_one_request_one_charge(
    gw: Gateway,
) -> None:
    customer = prepaid(gw, "1")
    before = submits_upstream(gw.deployment)
    script = ROOT / "tests" / "js" / "e2e" / "billing-idempotency.mjs"
    done = subprocess.run(
        ["node", str(script), gw.url, customer.key, SDXL, "order-4711"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=script.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["retry"]["requestId"] == out["first"]["requestId"]
    assert out["reused"]["status"] == 422
    assert out["images"] == 1
    assert submits_upstream(gw.deployment) == before + 1
    (row,) = until_settled(gw, customer, 1)
    assert row["cost"] == "0.01"
    assert balance(gw.deployment, customer)["available"] == "0.99"


def test_rpm_limit_answers_429_with_retry_after(gw: Gateway) -> None:
    gw.deployment.nxs("plans", "create", "slow", "--rpm", "2")
    customer = gw.customer("slow")
    gw.deployment.nxs("subscriptions", "set", customer.name, "slow")

    def limited() -> bool:
        answer = gw.request("POST", "/fal-ai/whisper", customer.key, json={})
        return answer.status_code == 429

    assert eventually(limited)
    answer = gw.request("POST", "/fal-ai/whisper", customer.key, json={})
    assert answer.status_code == 429
    assert answer.json()["detail"] == "Rate limit exceeded"
    assert int(answer.headers["Retry-After"]) >= 1


def test_in_flight_limit_holds_a_slot_until_the_request_ends(gw: Gateway) -> None:
    plan = ("plans", "create", "single", "--max-in-flight", "1", "--endpoints", "fal-ai/fast-*")
    gw.deployment.nxs(*plan)
    customer = gw.customer("single")
    gw.deployment.nxs("subscriptions", "set", customer.name, "single")

    def on_plan() -> bool:  # refused before any slot is taken
        return gw.request("POST", "/fal-ai/whisper", customer.key, json={}).status_code == 403

    assert eventually(on_plan)
    first = gw.submit(SDXL, customer.key)
    answer = gw.request("POST", f"/queue/{SDXL}", customer.key, json={"prompt": "b"})
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    gw.wait_completed(SDXL, first["request_id"], customer.key)
    auth = {"Authorization": f"Key {customer.key}"}
    assert gw.client.get(first["response_url"], headers=auth).status_code == 200
    assert gw.request("POST", f"/queue/{SDXL}", customer.key, json={"prompt": "c"}).is_success


def test_plan_access_inactive_subscription_402_and_disallowed_endpoint_403(gw: Gateway) -> None:
    gw.deployment.nxs("plans", "create", "images-only", "--endpoints", "fal-ai/fast-*")
    customer = gw.customer("narrow")
    gw.deployment.nxs("subscriptions", "set", customer.name, "images-only")

    def forbidden() -> bool:
        return gw.request("POST", "/fal-ai/whisper", customer.key, json={}).status_code == 403

    assert eventually(forbidden)
    answer = gw.request("POST", "/fal-ai/whisper", customer.key, json={})
    assert answer.json()["detail"] == "Endpoint not allowed by your plan"
    gw.deployment.nxs("subscriptions", "set", customer.name, "images-only", "--until", "2020-01-31")

    def expired() -> bool:
        return gw.request("POST", f"/queue/{SDXL}", customer.key, json={}).status_code == 402

    assert eventually(expired)
    answer = gw.request("POST", f"/queue/{SDXL}", customer.key, json={})
    assert answer.json()["detail"] == "Subscription not active"


def test_run_retried_with_an_idempotency_key_replays_without_a_second_call(gw: Gateway) -> None:
    customer = gw.customer("runner")
    headers = {"Idempotency-Key": "run-42"}
    body = {"prompt": "a quiet harbour"}

    def runs_upstream() -> int:
        return sum(1 for e in gw.deployment.received(ACCOUNT) if e["path"] == f"/fal.run/{SDXL}")

    before = runs_upstream()
    first = gw.request("POST", f"/{SDXL}", customer.key, json=body, headers=headers)
    again = gw.request("POST", f"/{SDXL}", customer.key, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["x-fal-request-id"] == first.headers["x-fal-request-id"]
    assert runs_upstream() == before + 1
    assert len(ledger(gw.deployment, customer)) == 1


def test_an_operators_per_image_price_charges_images_not_fals_megapixels(gw: Gateway) -> None:
    customer = gw.customer("per-image")  # FLUX_1: flux/dev under another id, priced per image
    answer = gw.request("POST", f"/{FLUX_1}", customer.key, json=ONE_1024_BY_768)
    assert answer.headers["x-fal-billable-units"] == "0.79"  # megapixels
    fetched = gw.submit(FLUX_1, customer.key)
    gw.wait_completed(FLUX_1, fetched["request_id"], customer.key)
    auth = {"Authorization": f"Key {customer.key}"}
    assert gw.client.get(fetched["response_url"], headers=auth).is_success
    gw.submit(FLUX_1, customer.key)  # never fetched: the reconciler settles it
    rows = until_settled(gw, customer, 3)
    charged = [(row["unit"], Decimal(row["units"]), row["cost"]) for row in rows]
    assert charged == [("image", 1, "0.03")] * 3
    assert rows[0]["units_source"] == "body"
