"""The operator console in a real browser (headless Chromium through Playwright), against
a real gateway in front of the emulator: sign in, invite, grant credit, see a customer's
request in usage and its cost in the margin view, disable a failing upstream key, and a
viewer refused. With `NXS_SCREENSHOTS=docs/screenshots` it saves every page's screenshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page
from tests.e2e.conftest import GOOD_KEY, DatabaseEnv, Deployment, Gateway, eventually
from tests.support.browser import screenshot_folder
from tests.support.receiver import WebhookReceiver
from tests.support.servers import RunningServer, free_port, start_nxs

ADMIN_TOKEN = "console-test-admin-token"
PASSWORD = "correct horse battery"
PAGES = ("", "/customers", "/pool", "/plans", "/usage", "/requests", "/webhooks", "/audit")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, instant_fal: RunningServer, database_env: DatabaseEnv
) -> Deployment:
    folder = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {
        **database_env(folder),
        "NXS_UPSTREAM_URL": instant_fal.url,
        "NXS_REFRESH_SECONDS": "0.2",
        "NXS_PROBE_SECONDS": "3600",
        "NXS_ADMIN_TOKEN": ADMIN_TOKEN,
        "NXS_PUBLIC_URL": f"http://127.0.0.1:{port}",  # turns the webhook relay on
        "NXS_WEBHOOK_ALLOW_PRIVATE": "true",
        "NXS_WEBHOOK_RETRY_DELAYS": "0.2,3600",
    }
    deployment = Deployment(folder, env, instant_fal)
    deployment.add_upstream("main", GOOD_KEY)
    deployment.add_upstream("shaky", "flaky-acct:secret-flaky-0001")
    deployment.nxs("operators", "create", "olga", "--password-stdin", stdin=PASSWORD + "\n")
    deployment.nxs(
        "operators", "create", "vic", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n"
    )
    deployment.nxs("pricing", "set", "fal-ai/flux/dev", "image", "0.025")
    deployment.nxs("plans", "create", "resale", "--prepaid", "--multiplier", "2")
    deployment.nxs("customers", "create", "bolt")
    return deployment


@pytest.fixture(scope="module")
def gateway(deployment: Deployment) -> Iterator[Gateway]:
    """The gateway on the port its NXS_PUBLIC_URL names (fal's webhooks come back to it)."""
    port = int(deployment.env["NXS_PUBLIC_URL"].rsplit(":", 1)[1])
    log = deployment.folder / "gateway.log"
    server = start_nxs(["serve", "--port", str(port)], port=port, log_path=log, env=deployment.env)
    running = Gateway(server, deployment, httpx.Client(timeout=30))
    yield running
    running.client.close()
    running.server.stop()


def sign_in(page: Page, gateway: Gateway, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{gateway.url}/console")
    page.fill("#account", name)
    page.fill("#password", password)
    page.click("button.primary")


def show_traffic(gateway: Gateway) -> None:
    """A little more traffic for the screenshots: another customer, an unpriced endpoint."""
    customer = gateway.customer("northwind")
    gateway.deployment.nxs("credits", "grant", customer.name, "20")
    for endpoint in ("fal-ai/flux/dev", "fal-ai/flux/dev", "fal-ai/flux/schnell"):
        answer = gateway.request("POST", f"/{endpoint}", customer.key, json={"prompt": "a fox"})
        assert answer.status_code == 200, answer.text
    gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": "a fox [fail]"})


def test_signed_out_pages_lead_to_sign_in(page: Page, gateway: Gateway) -> None:
    page.goto(f"{gateway.url}/console/usage")
    assert page.url == f"{gateway.url}/console/sign-in"


def test_wrong_password_is_refused(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, "olga", "not the password")
    assert page.locator("[role=alert]").inner_text() == "Wrong name or password (or admin token)"


def test_invite_grant_and_see_the_request_in_usage_and_margin(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, "olga")
    page.goto(f"{gateway.url}/console/customers")
    page.fill("#invite-name", "acme")
    page.get_by_role("button", name="Invite").click()
    assert "Customer 'acme' created" in page.locator("[role=status]").inner_text()
    page.get_by_role("link", name="acme").click()
    page.select_option("#plan", "resale")
    page.get_by_role("button", name="Change plan").click()
    page.fill("#amount", "12.50")
    page.get_by_role("button", name="Grant credit").click()
    assert (
        page.locator("[role=status]").inner_text()
        == "Credit granted: 'acme' now has $12.50 available."
    )
    page.goto(f"{gateway.url}/console/audit?action=credits.grant")
    actor = page.locator("#audit tbody tr").first.locator("td").nth(1).inner_text()
    assert actor == "console: olga"
    page.goto(f"{gateway.url}/console/customers/acme")
    page.get_by_role("button", name="Create a key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert eventually(lambda: gateway.knows(key))
    answer = gateway.request("POST", "/fal-ai/flux/dev", key, json={"prompt": "a lighthouse"})
    assert answer.status_code == 200, answer.text
    page.goto(f"{gateway.url}/console/usage?customer=acme")
    row = page.locator("#by-customer tbody tr").first
    assert [cell.inner_text() for cell in row.locator("td").all()] == [
        "acme",
        "1",
        "0",
        "$0.05",
        "$0.025",
        "$0.025",
        "50.0%",
    ]
    page.goto(f"{gateway.url}/console/customers/acme")
    page.get_by_role("button", name="Revoke").click()
    assert (
        page.locator("[role=status]").inner_text().endswith("revoked: it is refused from now on.")
    )
    assert eventually(lambda: not gateway.knows(key))


def test_disabling_a_failing_key_changes_the_pool_page(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, "olga")
    page.goto(f"{gateway.url}/console/pool")
    row = page.locator("tr[data-key=shaky]")
    assert row.locator(".badge").first.inner_text() == "active"
    row.locator("button", has_text="Disable").click()
    row = page.locator("tr[data-key=shaky]")
    assert row.locator(".badge").first.inner_text() == "invalid"
    assert row.locator("button").all_inner_texts() == ["Save", "Enable"]
    assert gateway.deployment.upstream_states() == {"main": "active", "shaky": "invalid"}


def test_a_keys_concurrency_is_given_when_added_and_changed_in_its_row(
    page: Page, gateway: Gateway
) -> None:
    sign_in(page, gateway, "olga")
    page.goto(f"{gateway.url}/console/pool")
    page.fill("#key-name", "big")
    page.fill("#key-secret", "big-acct:secret-big-0001")
    page.fill("#key-concurrency", "12")
    page.get_by_role("button", name="Add key").click()
    assert "big" in page.locator("[role=status]").inner_text()
    listed = json.loads(gateway.deployment.nxs("upstream", "list", "--json"))
    assert [(k["weight"], k["concurrency"]) for k in listed if k["name"] == "big"] == [(1, 12)]
    row = page.locator("tr[data-key=big]")
    limit = row.locator("td.num").nth(1).inner_text().split(" / ")[1]  # in flight / limit
    assert limit == "12"
    page.get_by_label("Weight of big").fill("3")
    page.get_by_label("Concurrency of big").fill("20")
    row.get_by_role("button", name="Save").click()
    assert page.locator("[role=status]").inner_text() == (
        "Upstream key 'big': weight 3, concurrency 20."
    )
    listed = json.loads(gateway.deployment.nxs("upstream", "list", "--json"))
    assert [(k["weight"], k["concurrency"]) for k in listed if k["name"] == "big"] == [(3, 20)]
    audit = "SELECT actor, action FROM audit_log WHERE target = 'big' ORDER BY id"
    assert gateway.deployment.rows(audit)[-2:] == [
        {"actor": "admin-api", "action": "upstream.set"},  # the change, then who made it
        {"actor": "console", "action": "upstream.set"},
    ]


def test_pricing_sync_button_imports_fals_prices(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, "olga")
    page.goto(f"{gateway.url}/console/plans")
    page.get_by_role("button", name="Sync prices from fal").last.click()
    assert page.locator("[role=status]").inner_text().startswith("Imported ")
    synced = "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'pricing.sync'"
    assert gateway.deployment.rows(synced) == [{"n": 2}]  # the admin API's and the console's


def test_a_viewer_is_refused_a_change(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, "vic")
    page.goto(f"{gateway.url}/console/customers/bolt")
    page.fill("#amount", "5")
    with page.expect_response(lambda r: r.url.endswith("/credit")) as posted:
        page.get_by_role("button", name="Grant credit").click()
    assert posted.value.status == 403
    assert (
        page.locator(".alert-error").inner_text()
        == "Your role is viewer: it can look, not change anything"
    )
    grants = "SELECT COUNT(*) AS n FROM credit_grants g JOIN customers c ON c.id = g.customer_id"
    assert gateway.deployment.rows(f"{grants} WHERE c.name = 'bolt'") == [{"n": 0}]


def test_a_portal_session_and_a_console_session_never_open_each_others_pages(
    browser: Browser, page: Page, gateway: Gateway
) -> None:
    sign_in(page, gateway, "olga")
    page.goto(f"{gateway.url}/console/customers")
    page.fill("#invite-name", "gamma")
    page.fill("#invite-email", "ops@gamma.test")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#invite-link").inner_text().strip()
    assert link.startswith(f"{gateway.url}/portal/sign-up/")
    customer = browser.new_context()
    portal = customer.new_page()
    portal.goto(link)
    portal.fill("#password", PASSWORD)
    portal.fill("#confirm", PASSWORD)
    portal.locator("form button[type=submit]").click()
    assert portal.url == f"{gateway.url}/portal/overview"
    portal.goto(f"{gateway.url}/console/customers")
    assert portal.url == f"{gateway.url}/console/sign-in"
    page.goto(f"{gateway.url}/portal/overview")
    assert page.url == f"{gateway.url}/portal/sign-in"
    customer.close()


def test_webhook_deliveries_show_their_attempts(page: Page, gateway: Gateway) -> None:
    customer = gateway.customer("hooked")
    with WebhookReceiver() as receiver:
        delivered = submit_with_webhook(gateway, customer.key, receiver.url)
        failing = submit_with_webhook(gateway, customer.key, "http://127.0.0.1:9/hook")
        assert eventually(lambda: attempts(gateway, delivered) >= 1)
        assert eventually(lambda: attempts(gateway, failing) >= 1)
    sign_in(page, gateway, "olga")
    page.goto(f"{gateway.url}/console/webhooks")
    rows = {
        row.get_attribute("data-request"): row.locator(".badge").inner_text()
        for row in page.locator("#deliveries tbody tr").all()
    }
    assert (rows[delivered], rows[failing]) == ("delivered", "pending")
    failed = page.locator(f"tr[data-request='{failing}'] .attempt").first.inner_text()
    assert failed.startswith("#1 ") and "HTTP" not in failed


def attempts(gateway: Gateway, request_id: str) -> int:
    query = "SELECT COUNT(*) AS n FROM relay_attempts a JOIN relay_deliveries d"
    query += " ON d.id = a.delivery_id WHERE d.request_id = ?"
    return int(gateway.deployment.rows(query, request_id)[0]["n"])


def submit_with_webhook(gateway: Gateway, key: str, target: str) -> str:
    path = f"/queue/fal-ai/flux/dev?fal_webhook={target}"
    answer = gateway.request("POST", path, key, json={"prompt": "a lighthouse"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["request_id"])


def test_admin_token_signs_in_and_a_form_without_csrf_is_refused(
    page: Page, gateway: Gateway
) -> None:
    sign_in(page, gateway, "", ADMIN_TOKEN)
    assert page.locator(".who").inner_text().startswith("admin token")
    cookies: dict[str, Any] = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(
        f"{gateway.url}/console/customers", data={"name": "forged"}, cookies=cookies, timeout=10
    )
    assert forged.status_code == 403


def test_every_page_renders(page: Page, gateway: Gateway) -> None:
    sign_in(page, gateway, "olga")
    folder = screenshot_folder()
    if folder is not None:
        show_traffic(gateway)
    page.goto(f"{gateway.url}/console/customers")
    first = page.locator("tbody a").first.get_attribute("href") or ""
    for path in (*PAGES, first.removeprefix("/console")):
        response = page.goto(f"{gateway.url}/console{path}")
        assert response is not None and response.status == 200, path
        if folder is not None:
            name = path.strip("/").replace("/", "-") or "overview"
            page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)
