"""Realtime through the gateway: `fal.realtime.connect` (JS client) with NXS's own token
from the proxied tokens/ call, a WebSocket opened with an `nxs_` key header, and the
limits: forged or foreign tokens, tokens of revoked keys, oversized frames (1009) and idle
sessions (1001)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from tests.e2e.conftest import GOOD_KEY, Customer, Deployment, Gateway, eventually
from tests.support.clients import JS_DIR, run_node, run_python

APP = "fal-ai/fast-lcm-diffusion"


def realtime_js(
    gateway: Gateway, key: str, mode: str, *prompts: str, token: str | None = None
) -> dict[str, Any]:
    env = {"REALTIME_TOKEN": token} if token else {}
    script = JS_DIR / "e2e" / "realtime-gateway.mjs"
    return dict(run_node(script, gateway.url, key, mode, APP, *prompts, env=env, timeout=60))


@pytest.mark.parametrize("mode", ["middleware", "proxyUrl"])
def test_js_realtime_round_trips_through_the_gateway(
    gateway: Gateway, alice: Customer, mode: str
) -> None:
    before = len(gateway.deployment.received())
    out = realtime_js(gateway, alice.key, mode, "a red fox", "a blue bird")
    assert out["errors"] == []
    assert [result["images"] for result in out["results"]] == [1, 1]
    assert all(result["bytes"] > 100 for result in out["results"])
    assert out["urls"][0].startswith(gateway.url.replace("http", "ws") + f"/{APP}/realtime?")
    # Upstream, a pool key minted fal's token and opened fal's socket; never the nxs_ key.
    reached = gateway.deployment.received()[before:]
    paths = {(entry["path"], entry["account_id"]) for entry in reached}
    assert ("/rest.fal.ai/tokens/", "acct-main") in paths
    assert (f"/fal.run/{APP}/realtime", "acct-main") in paths


def test_proxied_token_is_nxs_own_and_scoped(gateway: Gateway, alice: Customer) -> None:
    def token_for(app: str) -> str:
        response = gateway.request(
            "POST",
            "/api/proxy",
            alice.key,
            headers={"x-fal-target-url": "https://rest.fal.ai/tokens/"},
            json={"allowed_apps": [app], "token_expiration": 60},
        )
        assert response.status_code == 200, response.text
        return str(response.json())

    token = token_for("fast-lcm-diffusion")
    assert token.startswith("nxsrt.")  # NXS's own: useless at fal, no pool key exposed
    works = realtime_js(gateway, alice.key, "proxyUrl", "x", token=token)
    assert works["errors"] == [] and len(works["results"]) == 1
    other = realtime_js(gateway, alice.key, "proxyUrl", "x", token=token_for("flux"))
    assert other["results"] == [] and other["errors"][0]["status"] == 1008


def realtime_token(gateway: Gateway, key: str) -> str:
    """An NXS realtime token for APP, asked for with `key` (`POST /tokens/`)."""
    body = {"allowed_apps": [APP.split("/")[-1]], "token_expiration": 60}
    response = gateway.request("POST", "/tokens/", key, json=body)
    assert response.status_code == 200, response.text
    return str(response.json())


def test_token_request_validated(gateway: Gateway, alice: Customer) -> None:
    response = gateway.request("POST", "/tokens/", alice.key, json={"allowed_apps": "nope"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "allowed_apps"]


def test_forged_token_refused(gateway: Gateway, alice: Customer) -> None:
    out = realtime_js(gateway, alice.key, "proxyUrl", "x", token="nxsrt.e30.AAAA")
    assert out["results"] == []
    assert out["errors"][0]["status"] == 1008
    assert "acct-main" not in json.dumps(out) and "secret" not in json.dumps(out)


def ws_session(
    gateway: Gateway,
    headers: dict[str, str],
    actions: Callable[[Any], Any],
    path: str = APP,
    token: str | None = None,
) -> Any:
    async def run() -> Any:
        url = gateway.url.replace("http", "ws") + f"/{path}/realtime"
        url += f"?fal_jwt_token={token}" if token else ""
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, headers=headers, max_msg_size=0) as ws,
        ):
            return await actions(ws)

    return asyncio.run(run())


def test_nxs_key_header_binary_and_text_frames(gateway: Gateway, alice: Customer) -> None:
    async def actions(ws: Any) -> list[Any]:
        await ws.send_bytes(msgpack.packb({"prompt": "binary frame", "seed": 1}))
        frames = [await ws.receive(timeout=10), await ws.receive(timeout=10)]
        await ws.send_str(json.dumps({"prompt": "text frame", "seed": 2}))
        frames += [await ws.receive(timeout=10), await ws.receive(timeout=10)]
        return frames

    frames = ws_session(gateway, {"Authorization": f"Key {alice.key}"}, actions)
    results = [msgpack.unpackb(f.data) for f in frames if f.type == aiohttp.WSMsgType.BINARY]
    texts = [json.loads(f.data) for f in frames if f.type == aiohttp.WSMsgType.TEXT]
    assert len(results) == 2 and all(len(r["images"]) == 1 for r in results)
    assert all(text["type"] == "x-fal-message" for text in texts)


def test_unknown_key_refused_on_the_socket(gateway: Gateway) -> None:
    async def actions(ws: Any) -> tuple[Any, Any]:
        return await ws.receive(timeout=10), await ws.receive(timeout=10)

    said, closed = ws_session(gateway, {"Authorization": "Key nxs_not-a-key"}, actions)
    assert json.loads(said.data) == {"status": "error", "error": "Unauthorized"}
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1008


def test_token_of_a_key_revoked_since_is_refused(gateway: Gateway) -> None:
    customer = gateway.customer("rt-revoked")
    token = realtime_token(gateway, customer.key)

    async def answer(ws: Any) -> Any:
        await ws.send_bytes(msgpack.packb({"prompt": "knock", "seed": 1}))
        while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
            pass  # fal's timings, or "Unauthorized" before the close
        return message

    assert ws_session(gateway, {}, answer, token=token).type == aiohttp.WSMsgType.BINARY
    gateway.deployment.nxs("keys", "revoke", customer.key_id)
    assert eventually(lambda: not gateway.knows(customer.key))
    closed = ws_session(gateway, {}, answer, token=token)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1008


def test_oversized_frame_closes_with_1009(gateway: Gateway, alice: Customer) -> None:
    async def actions(ws: Any) -> Any:
        await ws.send_bytes(b"\0" * (5 * 1024 * 1024))  # the default limit is 4 MiB
        return await ws.receive(timeout=10)

    closed = ws_session(gateway, {"Authorization": f"Key {alice.key}"}, actions)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1009


def test_idle_session_closed(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.env["NXS_REALTIME_IDLE_SECONDS"] = "0.5"
    deployment.add_upstream("main", GOOD_KEY)
    gateway = fresh_gateway(deployment)
    customer = gateway.customer("idle")

    async def actions(ws: Any) -> Any:
        return await ws.receive(timeout=10)

    closed = ws_session(gateway, {"Authorization": f"Key {customer.key}"}, actions)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1001
    assert "Idle" in closed.extra


PY_REALTIME = textwrap.dedent(
    """
    import json, fal_client
    client = fal_client.SyncClient()
    with client.realtime("fal-ai/fast-lcm-diffusion", use_jwt=False) as connection:
        connection.send({"prompt": "a paper boat", "seed": 3})
        result = connection.recv()
    print(json.dumps({"images": len(result["images"])}))
    """
)


def test_python_client_realtime_with_key_header_over_tls(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    tls_files: dict[str, Path],
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("main", GOOD_KEY)
    gateway = fresh_gateway(deployment, tls=True)
    customer = gateway.customer("pyrt")
    env = {
        "FAL_KEY": customer.key,
        "FAL_RUN_HOST": f"127.0.0.1:{gateway.server.port}",  # wss://{FAL_RUN_HOST}/…
        "SSL_CERT_FILE": str(tls_files["ca"]),
    }
    assert run_python(PY_REALTIME, env=env, timeout=60) == {"images": 1}
