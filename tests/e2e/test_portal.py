"""The customer portal over HTTP: invitations, sessions, CSRF, throttling, tenancy (another
customer's ids answer 404), escaping, the admin API closed to portal sessions, and Stripe
(signed top-ups granted once, subscription events moving the plan, no Stripe → no buttons).
The walk a person takes in a browser is tests/e2e/test_portal_browser.py."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import GOOD_KEY, Deployment, Gateway
from tests.support import fake_stripe
from tests.support.fake_stripe import FakeStripe, signed
from tests.support.portal import PortalClient, invite_link
from tests.support.servers import eventually

from nxs.store.database import parse_url
from nxs.store.store import connect
from nxs.web.sessions import Sessions

ADMIN_TOKEN = "admin-token-for-portal-tests"
FLUX = "fal-ai/flux/dev"


@pytest.fixture(scope="module")
def deployment(make_deployment: Callable[[], Deployment], stripe: FakeStripe) -> Deployment:
    deployment = make_deployment()
    deployment.env.update(
        NXS_ADMIN_TOKEN=ADMIN_TOKEN,
        NXS_STRIPE_SECRET_KEY=fake_stripe.SECRET_KEY,
        NXS_STRIPE_WEBHOOK_SECRET=fake_stripe.WEBHOOK_SECRET,
        NXS_STRIPE_API_URL=stripe.url,
    )
    deployment.add_upstream("main", GOOD_KEY)
    deployment.nxs("pricing", "set", FLUX, "image", "0.025")
    return deployment


@pytest.fixture(scope="module")
def portal(deployment: Deployment, start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway(deployment)


Browsers = Callable[[Gateway], PortalClient]


@pytest.fixture
def browsers() -> Iterator[Browsers]:
    """`new(gateway)`: a fresh cookie jar on that gateway; all closed after the test."""
    opened: list[PortalClient] = []

    def new(gateway: Gateway) -> PortalClient:
        opened.append(PortalClient.open(gateway.url))
        return opened[-1]

    yield new
    for client in opened:
        client.close()


def signed_up(
    browsers: Browsers, gateway: Gateway, name: str, display: str = "Acme Ltd"
) -> PortalClient:
    """A new customer who followed its invitation: a signed-in browser."""
    link = admin_invite(gateway, name)
    client = browsers(gateway)
    response = client.sign_up(link, display)
    assert response.status_code == 303 and response.headers["location"] == "/portal/overview"
    return client


def admin_invite(gateway: Gateway, name: str) -> str:
    """A new customer and its sign-up link, through the admin API."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    admin = gateway.url + "/admin/v1/customers"
    assert gateway.client.post(admin, json={"name": name}, headers=headers).status_code == 201
    invite = gateway.client.post(
        f"{admin}/{name}/invites", json={"email": f"{name}@example.com"}, headers=headers
    )
    assert invite.status_code == 201, invite.text
    return str(invite.json()["link"])


def customer_id(deployment: Deployment, name: str) -> str:
    return str(deployment.rows("SELECT id FROM customers WHERE name = ?", name)[0]["id"])


def make_key(client: PortalClient, alias: str) -> str:
    page = client.submit("/portal/keys", "/portal/keys", {"alias": alias})
    assert page.status_code == 200
    start = page.text.index('id="new-key">') + len('id="new-key">')
    return page.text[start : page.text.index("<", start)].strip()


def post_event(gateway: Gateway, event: dict[str, Any], **sign: Any) -> httpx.Response:
    payload, header = signed(event, **sign)
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    return gateway.client.post(gateway.url + "/webhooks/stripe", content=payload, headers=headers)


def test_invitation_signs_up_once_and_then_signs_in(browsers: Browsers, portal: Gateway) -> None:
    portal.deployment.nxs("customers", "create", "inv-1")
    link = invite_link(portal.deployment.nxs("customers", "invite", "inv-1", "Inv@Example.com"))
    first, second = browsers(portal), browsers(portal)
    assert first.sign_up(link).status_code == 303
    assert second.get(link[link.index("/portal/") :]).status_code == 404  # spent
    signed_in = second.submit(
        "/portal/sign-in",
        "/portal/sign-in",
        {"account": "inv@example.com", "password": "correct horse battery"},
    )
    assert signed_in.status_code == 303
    assert "Overview" in second.get("/portal/overview").text


def test_session_cookie_is_httponly_lax_and_scoped_to_the_portal(
    browsers: Browsers, portal: Gateway
) -> None:
    portal.deployment.nxs("customers", "create", "cookie-1")
    link = invite_link(portal.deployment.nxs("customers", "invite", "cookie-1", "c1@example.com"))
    client = browsers(portal)
    response = client.sign_up(link)
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("nxs_portal=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # plain HTTP here; under TLS it is Secure


def test_a_form_without_its_csrf_token_is_refused(browsers: Browsers, portal: Gateway) -> None:
    client = signed_up(browsers, portal, "csrf-1")
    response = client.http.post("/portal/keys", data={"alias": "sneaky", "csrf": "forged"})
    assert response.status_code == 403
    assert portal.deployment.rows("SELECT id FROM api_keys WHERE alias = ?", "sneaky") == []


def test_sign_in_is_throttled_after_five_failures(browsers: Browsers, portal: Gateway) -> None:
    client = browsers(portal)
    fields = {"account": "nobody@example.com", "password": "wrong password!"}
    statuses = [
        client.submit("/portal/sign-in", "/portal/sign-in", fields).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_pages_of_another_customer_answer_404(browsers: Browsers, portal: Gateway) -> None:
    alice, bob = signed_up(browsers, portal, "ten-alice"), signed_up(browsers, portal, "ten-bob")
    key = make_key(alice, "alice-prod")
    run = portal.request("POST", f"/{FLUX}", key, json={"prompt": "a lighthouse"})
    assert run.status_code == 200
    deployment = portal.deployment
    alice_id = customer_id(deployment, "ten-alice")
    key_id = deployment.rows("SELECT id FROM api_keys WHERE customer_id = ?", alice_id)[0]["id"]
    assert eventually(
        lambda: deployment.rows("SELECT id FROM ledger WHERE customer_id = ?", alice_id) != []
    )
    ledger_id = deployment.rows("SELECT id FROM ledger WHERE customer_id = ?", alice_id)[0]["id"]
    revoke = bob.submit("/portal/keys", f"/portal/keys/{key_id}/revoke", {})
    assert revoke.status_code == 404
    assert bob.get(f"/portal/requests/{ledger_id}").status_code == 404
    assert alice.get(f"/portal/requests/{ledger_id}").status_code == 200
    assert "alice-prod" not in bob.get("/portal/keys").text + bob.get("/portal/usage").text
    assert f",{FLUX},alice-prod,settled,1,image,0.025000," in alice.get("/portal/usage.csv").text
    assert bob.get("/portal/usage.csv").text.count("\n") == 1  # the header only
    assert (
        portal.request("POST", f"/{FLUX}", key, json={"prompt": "still works"}).status_code == 200
    )


def test_a_script_as_a_name_or_alias_renders_inert(browsers: Browsers, portal: Gateway) -> None:
    script = "<script>alert(1)</script>"
    client = signed_up(browsers, portal, "xss-1", display=script)
    make_key(client, script)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for page in ("/portal/overview", "/portal/keys", "/portal/quickstart"):
        html = client.get(page).text
        assert "<script" not in html and escaped in html, page  # the name in the header


def test_a_portal_session_opens_nothing_of_the_admin_api(
    browsers: Browsers, portal: Gateway
) -> None:
    client = signed_up(browsers, portal, "adm-1")
    token = client.http.cookies.get("nxs_portal")
    assert token
    for scheme in ("Bearer", "Key"):
        answer = portal.client.get(
            portal.url + "/admin/v1/customers",
            headers={"Cookie": f"nxs_portal={token}", "Authorization": f"{scheme} {token}"},
        )
        assert answer.status_code == 401
    assert (
        portal.client.get(
            portal.url + "/admin/v1/customers", headers={"Cookie": f"nxs_portal={token}"}
        ).status_code
        == 401
    )


def test_a_console_session_does_not_open_the_portal(portal: Gateway) -> None:
    deployment = portal.deployment
    database = connect(parse_url(deployment.env["NXS_DATABASE_URL"]), 1)
    try:
        token, _ = Sessions(database, "console").open(customer_id(deployment, "adm-1"))
    finally:
        database.close()
    response = portal.client.get(
        portal.url + "/portal/overview", headers={"Cookie": f"nxs_portal={token}"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/portal/sign-in"


def test_a_signed_top_up_grants_credit_exactly_once(
    browsers: Browsers, portal: Gateway, stripe: FakeStripe
) -> None:
    client = signed_up(browsers, portal, "pay-1")
    checkout = client.submit("/portal/billing", "/portal/billing/top-up", {"amount": "20"})
    assert checkout.status_code == 303 and checkout.headers["location"].startswith(stripe.url)
    session_id, form = stripe.last_session()
    assert form["line_items[0][price_data][unit_amount]"] == "2000"
    assert stripe.authorizations[-1] == f"Bearer {fake_stripe.SECRET_KEY}"
    paid = {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "amount_total": 2000,
        "metadata": {"nxs_customer": form["metadata[nxs_customer]"]},
    }
    event = fake_stripe.event("evt_topup_1", "checkout.session.completed", paid)
    assert post_event(portal, event).status_code == 200
    assert post_event(portal, event).status_code == 200  # replayed: acknowledged, not granted
    forged = fake_stripe.event("evt_topup_2", "checkout.session.completed", paid)
    assert post_event(portal, forged, secret="whsec_wrong").status_code == 400
    stale = fake_stripe.event("evt_topup_3", "checkout.session.completed", paid)
    assert post_event(portal, stale, at=int(time.time()) - 3600).status_code == 400
    balance = portal.deployment.nxs("credits", "show", "pay-1")
    assert "20.00" in balance and "40.00" not in balance


def test_subscription_events_move_the_plan_and_calls_follow(
    browsers: Browsers, portal: Gateway, stripe: FakeStripe
) -> None:
    deployment = portal.deployment
    deployment.nxs("plans", "create", "pro")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    priced = portal.client.put(
        portal.url + "/admin/v1/plans/pro/stripe-price",
        json={"price": "price_pro_monthly"},
        headers=headers,
    )
    assert priced.json() == {"plan": "pro", "price": "price_pro_monthly"}
    client = signed_up(browsers, portal, "sub-1")
    key = make_key(client, "sub-key")
    checkout = client.submit("/portal/billing", "/portal/billing/subscribe", {"plan": "pro"})
    assert checkout.status_code == 303
    _, form = stripe.last_session()
    assert form["line_items[0][price]"] == "price_pro_monthly" and form["mode"] == "subscription"
    metadata = {"nxs_customer": form["metadata[nxs_customer]"], "nxs_plan": "pro"}
    done = {
        "id": "cs_sub",
        "object": "checkout.session",
        "mode": "subscription",
        "subscription": "sub_1",
        "metadata": metadata,
    }
    steps = [
        ("checkout.session.completed", done, 200),
        ("invoice.payment_failed", {"id": "in_1", "subscription": "sub_1"}, 402),
        ("invoice.paid", {"id": "in_2", "subscription": "sub_1"}, 200),
        ("customer.subscription.deleted", {"id": "sub_1", "metadata": metadata}, 402),
    ]
    for number, (kind, obj, expected) in enumerate(steps):
        assert (
            post_event(portal, fake_stripe.event(f"evt_sub_{number}", kind, obj)).status_code == 200
        )

        def answers(status: int = expected) -> bool:
            run = portal.request("POST", f"/{FLUX}", key, json={"prompt": "a plan"})
            return run.status_code == status

        assert eventually(answers), kind
    assert "subscription has ended" in client.get("/portal/overview").text


def test_without_stripe_there_are_no_billing_buttons(
    browsers: Browsers,
    deployment: Deployment,
    portal: Gateway,
    start_gateway: Callable[..., Gateway],
) -> None:
    env = {k: v for k, v in deployment.env.items() if not k.startswith("NXS_STRIPE_")}
    plain = start_gateway(dataclasses.replace(deployment, env=env))
    client = signed_up(browsers, plain, "nostripe-1")
    assert "Billing" not in client.get("/portal/overview").text
    assert client.get("/portal/billing").status_code == 404
    payload, header = signed(fake_stripe.event("evt_x", "checkout.session.completed", {}))
    answer = plain.client.post(
        plain.url + "/webhooks/stripe", content=payload, headers={"Stripe-Signature": header}
    )
    assert answer.status_code == 404


def test_a_new_invitation_resets_the_password_and_signs_out_old_sessions(
    browsers: Browsers, portal: Gateway
) -> None:
    old = signed_up(browsers, portal, "reset-1")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    again = portal.client.post(
        portal.url + "/admin/v1/customers/reset-1/invites",
        json={"email": "reset-1@example.com"},
        headers=headers,
    )
    fresh = browsers(portal)
    assert fresh.sign_up(again.json()["link"], password="a brand new password").status_code == 303
    assert old.get("/portal/overview").headers["location"] == "/portal/sign-in"
    wrong = {"account": "reset-1@example.com", "password": "correct horse battery"}
    assert browsers(portal).submit("/portal/sign-in", "/portal/sign-in", wrong).status_code == 401
