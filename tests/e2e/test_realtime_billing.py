"""Realtime sessions billed through the real gateway: admitted like a run (subscription,
credit), settled on close as one ledger row of as many units as fal sent results back,
priced by the endpoint's rule × the plan's multiplier, and free when nothing came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import aiohttp
import msgpack
import pytest
from tests.e2e.conftest import GOOD_KEY, Customer, Deployment, Gateway, eventually
from tests.e2e.test_realtime import APP, realtime_js, realtime_token

PRICE = "0.01"  # USD per image for fast-lcm-diffusion (one result frame = one image)


@pytest.fixture(scope="module")
def billed(make_deployment: Callable[[], Deployment]) -> Deployment:
    deployment = make_deployment()
    deployment.add_upstream("main", GOOD_KEY)
    deployment.nxs("pricing", "set", APP, "image", PRICE)
    only = ("--endpoints", "fal-ai/fast-lcm-*")  # and shows when the gateway has the plan
    deployment.nxs("plans", "create", "rt-prepaid", "--prepaid", *only)
    deployment.nxs("plans", "create", "rt-markup", "--multiplier", "1.5", *only)
    deployment.nxs("plans", "create", "rt-single", "--max-in-flight", "1", *only)
    return deployment


@pytest.fixture(scope="module")
def gw(billed: Deployment, start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway(billed)


def usage(gw: Gateway, customer: Customer) -> list[dict[str, Any]]:
    """The customer's realtime rows in `nxs usage` (not the plan probes' runs)."""
    rows = json.loads(gw.deployment.nxs("usage", "--customer", customer.name, "--json"))
    return [row for row in rows if str(row["request_id"]).startswith("rt_")]


def closed_rows(gw: Gateway, customer: Customer, count: int) -> list[dict[str, Any]]:
    """The customer's rows once `count` of them are settled or refunded."""

    def done() -> bool:
        rows = usage(gw, customer)
        return len(rows) == count and all(r["status"] in ("settled", "refunded") for r in rows)

    assert eventually(done), usage(gw, customer)
    return usage(gw, customer)


def session(
    gw: Gateway, customer: Customer, frames: list[str | bytes], token: str | None = None
) -> list[Any]:
    """Open `/{APP}/realtime` with the key header (or `?fal_jwt_token=` when given a token);
    for each frame sent, read until fal's answer to it (a result or an error); then close.
    Returns every message received."""

    async def run() -> list[Any]:
        url = gw.url.replace("http", "ws") + f"/{APP}/realtime"
        headers = {} if token else {"Authorization": f"Key {customer.key}"}
        url += f"?fal_jwt_token={token}" if token else ""
        got: list[Any] = []
        async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
            for frame in frames:
                with contextlib.suppress(ConnectionError):  # refused: the gateway closes
                    await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))
                got.append(await ws.receive(timeout=10))
                while _waiting(got[-1]):
                    got.append(await ws.receive(timeout=10))
        return got

    return asyncio.run(run())


def _waiting(message: Any) -> bool:
    """Not yet fal's answer: only a control message (e.g. timings) so far."""
    if message.type == aiohttp.WSMsgType.TEXT:
        return "x-fal-error" not in message.data  # timings; or "Unauthorized", then a close
    return message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.CLOSE)


def prompt(text: str) -> bytes:
    return bytes(msgpack.packb({"prompt": text, "seed": 7}))


def on_plan(gw: Gateway, plan: str, credit: str | None = None) -> Customer:
    customer = gw.customer(plan)
    gw.deployment.nxs("subscriptions", "set", customer.name, plan)

    def plan_seen() -> bool:  # another endpoint is refused once the gateway has the plan
        return gw.request("POST", "/fal-ai/flux/dev", customer.key, json={}).status_code == 403

    assert eventually(plan_seen)
    if credit is not None:
        gw.deployment.nxs("credits", "grant", customer.name, credit)
    return customer


def refused(gw: Gateway, customer: Customer, reason: str) -> bool:
    """Accepted, told "Unauthorized" in fal's words, closed 1008 saying `reason`."""
    said, *_, closed = session(gw, customer, [prompt("knock")])
    return (
        said.type == aiohttp.WSMsgType.TEXT
        and json.loads(said.data) == {"status": "error", "error": "Unauthorized"}
        and closed.type == aiohttp.WSMsgType.CLOSE
        and closed.data == 1008
        and closed.extra == reason
    )


def balance(gw: Gateway, customer: Customer) -> str:
    rows = json.loads(gw.deployment.nxs("credits", "show", customer.name, "--json"))
    return str(rows[0]["available"])


def test_session_is_one_row_of_as_many_images_as_results(gw: Gateway) -> None:
    customer = on_plan(gw, "rt-markup")
    got = session(gw, customer, [prompt("a red fox"), prompt("a blue bird"), prompt("a cat")])
    assert len([m for m in got if m.type == aiohttp.WSMsgType.BINARY]) == 3
    (row,) = closed_rows(gw, customer, 1)
    assert row["request_id"].startswith("rt_") and row["endpoint"] == APP
    assert row["status"] == "settled" and row["unit"] == "image" and row["units"] == "3"
    assert Decimal(row["cost"]) == Decimal(PRICE) * 3 * Decimal("1.5")  # the plan's markup


@pytest.mark.parametrize("plan", ["rt-markup", "rt-prepaid"])  # row written at close; held
def test_session_row_names_the_pool_key_that_bridged_it(gw: Gateway, plan: str) -> None:
    customer = on_plan(gw, plan, credit="1.00" if plan == "rt-prepaid" else None)
    got = session(gw, customer, [prompt("a red fox")])
    assert len([m for m in got if m.type == aiohttp.WSMsgType.BINARY]) == 1
    (row,) = closed_rows(gw, customer, 1)
    pool = json.loads(gw.deployment.nxs("upstream", "list", "--json"))
    assert row["upstream_key_id"] == next(key["id"] for key in pool if key["name"] == "main")


def test_token_session_is_billed_to_the_key_that_asked_for_the_token(gw: Gateway) -> None:
    customer = on_plan(gw, "rt-markup")
    second = gw.deployment.new_key(customer.name)
    assert eventually(lambda: gw.knows(second.key))
    token = realtime_token(gw, second.key)
    got = session(gw, customer, [prompt("a red fox")], token=token)
    assert len([m for m in got if m.type == aiohttp.WSMsgType.BINARY]) == 1
    (row,) = closed_rows(gw, customer, 1)
    assert row["api_key_id"] == second.key_id != customer.key_id


def test_prepaid_session_through_the_js_client_spends_credit(gw: Gateway) -> None:
    customer = on_plan(gw, "rt-prepaid", credit="1.00")
    out = realtime_js(gw, customer.key, "proxyUrl", "a red fox", "a blue bird")
    assert out["errors"] == [] and len(out["results"]) == 2
    (row,) = closed_rows(gw, customer, 1)
    assert row["status"] == "settled" and row["units"] == "2" and row["cost"] == "0.02"
    assert balance(gw, customer) == "0.98"


def test_prepaid_customer_without_credit_is_refused(gw: Gateway) -> None:
    customer = on_plan(gw, "rt-prepaid")
    assert refused(gw, customer, "Insufficient credit")
    assert usage(gw, customer) == []  # a refusal writes nothing


def test_suspended_subscription_is_refused(gw: Gateway) -> None:
    customer = gw.customer("suspended")
    assert len(session(gw, customer, [prompt("while active")])) > 0
    gw.deployment.nxs("subscriptions", "set", customer.name, "default", "--status", "past_due")
    assert eventually(lambda: refused(gw, customer, "Subscription not active"))


def test_session_without_answers_costs_nothing(gw: Gateway) -> None:
    customer = on_plan(gw, "rt-prepaid", credit="0.50")
    got = session(gw, customer, ["not json"])  # fal answers with an x-fal-error only
    assert "x-fal-error" in got[-1].data
    (row,) = closed_rows(gw, customer, 1)
    assert row["status"] == "refunded" and row["cost"] == "0.00"
    assert balance(gw, customer) == "0.50"  # the hold went back


def test_open_session_holds_one_request_in_flight(gw: Gateway) -> None:
    customer = on_plan(gw, "rt-single")
    url = gw.url.replace("http", "ws") + f"/{APP}/realtime"
    headers = {"Authorization": f"Key {customer.key}"}

    async def two_at_once() -> tuple[Any, Any, int]:
        async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
            await ws.send_bytes(prompt("first"))
            while (await ws.receive(timeout=10)).type != aiohttp.WSMsgType.BINARY:
                pass  # the first session is open and answered
            async with http.ws_connect(url, headers=headers) as second:
                said, closed = await second.receive(timeout=10), await second.receive(timeout=10)
            run = await http.post(gw.url + f"/{APP}", headers=headers, json={"prompt": "x"})
            return said, closed, run.status

    said, closed, run_status = asyncio.run(two_at_once())
    assert json.loads(said.data)["reason"] == "Rate limit exceeded"
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1008
    assert run_status == 429  # a run waits for the session too
    (row,) = closed_rows(gw, customer, 1)  # the refused session wrote nothing
    assert row["units"] == "1"
    assert len(session(gw, customer, [prompt("after")])) > 0  # the slot is free again


def test_session_held_longer_than_a_stranded_hold_lives_is_still_charged(
    billed: Deployment, fresh_gateway: Callable[..., Gateway]
) -> None:
    token = "rt-admin-token-0123456789abcdef"  # quicker than the CLI: this test waits enough
    env = {"NXS_RESERVATION_TTL_SECONDS": "0.3", "NXS_ADMIN_TOKEN": token}  # holds unanswered
    gw = fresh_gateway(replace(billed, env={**billed.env, **env}))  # 0.3 s are released

    def admin(method: str, path: str, body: dict[str, str] | None = None) -> Any:
        answer = gw.request(method, f"/admin/v1{path}", token, scheme="Bearer", json=body)
        assert answer.is_success, answer.text
        return answer.json()

    name = "rt-long"
    admin("POST", "/customers", {"name": name})
    admin("PUT", f"/customers/{name}/subscription", {"plan": "rt-prepaid"})
    admin("POST", f"/customers/{name}/credits", {"amount": "1"})
    key = admin("POST", f"/customers/{name}/keys")["key"]  # last: known with its plan
    assert eventually(lambda: gw.knows(key))
    url = gw.url.replace("http", "ws") + f"/{APP}/realtime"

    async def result(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        await ws.send_bytes(prompt(text))
        while (await ws.receive(timeout=10)).type != aiohttp.WSMsgType.BINARY:
            pass

    async def long_session() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Key {key}"}
        async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
            await result(ws, "before")
            await asyncio.sleep(1.5)  # past the TTL, and a reconciler pass
            during = admin("GET", f"/usage/requests?customer={name}")
            await result(ws, "after")
        return list(during)

    (open_row,) = asyncio.run(long_session())
    assert open_row["status"] == "pending"  # fal has the session: not a stranded hold

    def charged() -> bool:
        (row,) = admin("GET", f"/usage/requests?customer={name}")
        return (row["status"], row["units"], row["cost"]) == ("settled", "2", "0.02")

    assert eventually(charged)
    assert admin("GET", f"/customers/{name}/balance")["available"] == "0.98"
