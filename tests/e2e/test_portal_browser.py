"""The customer portal in a real browser (Debian's Chromium driven by Playwright): what a
customer does — sign up from an invitation, make a key, call with curl, see the request
and its cost, top up through (a fake) Stripe, subscribe, see a failed renewal turn calls
into 402, and see why when the operator suspends the account. With
`NXS_SCREENSHOTS=docs/screenshots` every page is saved as portal-*.png.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.e2e.conftest import GOOD_KEY, DatabaseEnv, Deployment, Gateway, launch
from tests.support import fake_stripe
from tests.support.browser import screenshot_folder
from tests.support.fake_stripe import FakeStripe, signed
from tests.support.portal import PASSWORD, invite_link
from tests.support.servers import RunningServer, eventually

FLUX = "fal-ai/flux/dev"


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    instant_fal: RunningServer,
    database_env: DatabaseEnv,
    stripe: FakeStripe,
    tls_files: dict[str, Path],
) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("portal-browser")
    env = {
        **database_env(folder),
        "NXS_UPSTREAM_URL": instant_fal.url,
        "NXS_REFRESH_SECONDS": "0.2",
        "NXS_PROBE_SECONDS": "3600",
        "NXS_STRIPE_SECRET_KEY": fake_stripe.SECRET_KEY,
        "NXS_STRIPE_WEBHOOK_SECRET": fake_stripe.WEBHOOK_SECRET,
        "NXS_STRIPE_API_URL": stripe.url,
    }
    deployment = Deployment(folder, env, instant_fal)
    deployment.add_upstream("main", GOOD_KEY)
    deployment.nxs("pricing", "set", FLUX, "image", "0.025")
    deployment.nxs("pricing", "set", "fal-ai/flux/schnell", "image", "0.003")
    deployment.nxs("plans", "create", "pro", "--rpm", "600")
    deployment.nxs("plans", "update", "pro", "--stripe-price", "price_pro_monthly")
    running = launch(deployment, tls_files)
    yield running
    running.client.close()
    running.server.stop()


def shot(page: Page, name: str) -> None:
    folder = screenshot_folder()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"portal-{name}.png"), full_page=True)


def curl(
    gateway: Gateway, key: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, str]:
    """A real HTTP call with curl: (status, body)."""
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H", f"Authorization: Key {key}"]
    if body is not None:
        args += ["-X", "POST", "-H", "Content-Type: application/json", "-d", json.dumps(body)]
    done = subprocess.run([*args, gateway.url + path], capture_output=True, text=True, timeout=30)
    text, _, status = done.stdout.rpartition("\n")
    return int(status), text


def stripe_event(gateway: Gateway, event_id: str, kind: str, obj: dict[str, Any]) -> None:
    payload, header = signed(fake_stripe.event(event_id, kind, obj))
    answer = httpx.post(
        gateway.url + "/webhooks/stripe", content=payload, headers={"Stripe-Signature": header}
    )
    assert answer.status_code == 200, answer.text


def sign_up(page: Page, gateway: Gateway, name: str) -> None:
    gateway.deployment.nxs("customers", "create", name)
    link = invite_link(
        gateway.deployment.nxs(
            "customers", "invite", name, f"ops@{name}.test", "--base-url", gateway.url
        )
    )
    page.goto(link)
    page.get_by_label("Your name or company").fill(f"{name.title()} Studio")
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    shot(page, "sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{gateway.url}/portal/overview")


def make_key(page: Page, gateway: Gateway, alias: str) -> str:
    page.goto(f"{gateway.url}/portal/keys")
    page.get_by_label("Name").fill(alias)
    page.get_by_role("button", name="Create key").press("Enter")
    return page.locator("#new-key").inner_text().strip()


def test_sign_up_key_curl_and_the_request_with_its_cost_in_usage(
    page: Page, gateway: Gateway
) -> None:
    sign_up(page, gateway, "acme")
    key = make_key(page, gateway, "production")
    assert key.startswith("nxs_")
    shot(page, "keys-new")
    status, _ = curl(gateway, key, f"/{FLUX}", {"prompt": "a lighthouse at dusk"})
    assert status == 200
    status, body = curl(gateway, key, "/queue/fal-ai/flux/schnell", {"prompt": "a red fox"})
    assert status == 200
    request_id = json.loads(body)["request_id"]
    assert eventually(
        lambda: curl(gateway, key, f"/queue/fal-ai/flux/requests/{request_id}")[0] == 200
    )
    page.goto(f"{gateway.url}/portal/usage")
    row = page.get_by_role("row").filter(has_text=FLUX)
    expect(row).to_contain_text("$0.025")
    expect(row).to_contain_text("production")
    expect(page.get_by_role("row").filter(has_text="fal-ai/flux/schnell")).to_contain_text("$0.003")
    shot(page, "usage")
    page.get_by_role("link", name="result").first.click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator("img").first).to_be_visible()
    shot(page, "request")
    page.goto(f"{gateway.url}/portal/keys")
    expect(page.get_by_role("row").filter(has_text="production")).not_to_contain_text("never")
    shot(page, "keys")


def test_top_up_subscribe_failed_renewal_and_suspension(
    page: Page, gateway: Gateway, stripe: FakeStripe
) -> None:
    sign_up(page, gateway, "bolt")
    key = make_key(page, gateway, "ci")
    page.goto(f"{gateway.url}/portal/billing")
    page.get_by_label("Amount in USD (5–10000)").fill("25")
    page.get_by_role("button", name="Pay with Stripe").click()
    expect(page).to_have_title("Stripe Checkout (test)")
    session_id, form = stripe.last_session()
    paid = {
        "id": session_id,
        "mode": "payment",
        "payment_status": "paid",
        "amount_total": 2500,
        "metadata": {"nxs_customer": form["metadata[nxs_customer]"]},
    }
    stripe_event(gateway, "evt_bolt_topup", "checkout.session.completed", paid)
    page.goto(f"{gateway.url}/portal/overview")
    expect(page.locator(".stat").filter(has_text="Balance")).to_contain_text("$25.00")
    page.goto(f"{gateway.url}/portal/billing")
    expect(page.get_by_role("row").filter(has_text="Stripe payment")).to_contain_text("$25.00")
    shot(page, "billing")

    page.get_by_label("Plan").select_option("pro")
    page.get_by_role("button", name="Subscribe with Stripe").click()
    expect(page).to_have_title("Stripe Checkout (test)")
    _, form = stripe.last_session()
    metadata = {"nxs_customer": form["metadata[nxs_customer]"], "nxs_plan": "pro"}
    done = {
        "id": "cs_bolt",
        "mode": "subscription",
        "subscription": "sub_bolt",
        "metadata": metadata,
    }
    stripe_event(gateway, "evt_bolt_sub", "checkout.session.completed", done)
    page.goto(f"{gateway.url}/portal/overview")
    expect(page.locator(".stat").filter(has_text="Plan")).to_contain_text("pro")
    assert curl(gateway, key, f"/{FLUX}", {"prompt": "a plan"})[0] == 200
    shot(page, "overview")

    stripe_event(
        gateway,
        "evt_bolt_fail",
        "invoice.payment_failed",
        {"id": "in_1", "subscription": "sub_bolt"},
    )
    assert eventually(lambda: curl(gateway, key, f"/{FLUX}", {"prompt": "unpaid"})[0] == 402)
    page.goto(f"{gateway.url}/portal/overview")
    expect(page.get_by_role("alert")).to_contain_text("last payment failed")
    shot(page, "past-due")

    stripe_event(
        gateway, "evt_bolt_paid", "invoice.paid", {"id": "in_2", "subscription": "sub_bolt"}
    )
    assert eventually(lambda: curl(gateway, key, f"/{FLUX}", {"prompt": "paid"})[0] == 200)
    gateway.deployment.nxs("customers", "suspend", "bolt")
    assert eventually(lambda: curl(gateway, key, f"/{FLUX}", {"prompt": "suspended"})[0] == 402)
    page.goto(f"{gateway.url}/portal/overview")
    expect(page.get_by_role("alert")).to_contain_text("suspended by the operator")
    shot(page, "suspended")


def test_every_page_renders_and_is_reachable_by_keyboard(page: Page, gateway: Gateway) -> None:
    page.goto(f"{gateway.url}/portal/overview")
    expect(page).to_have_url(f"{gateway.url}/portal/sign-in")
    shot(page, "sign-in")
    sign_up(page, gateway, "cove")
    for name in ("prices", "quickstart"):
        response = page.goto(f"{gateway.url}/portal/{name}")
        assert response is not None and response.status == 200
        shot(page, name)
    expect(page.locator("pre").first).to_contain_text(f"{gateway.url}/fal-ai/flux/dev")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    page.keyboard.press("Tab")
    started = time.monotonic()
    while (
        page.evaluate("document.activeElement.textContent") != "API keys"
        and time.monotonic() - started < 5
    ):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{gateway.url}/portal/keys")
