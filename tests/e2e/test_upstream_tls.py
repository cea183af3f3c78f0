"""The production path: fal reached over TLS, REST and realtime (wss), its certificate
checked against `NXS_UPSTREAM_CA_FILE` (here the test CA the TLS emulator's certificate
is signed by); without that CA the same upstream is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import msgpack
from tests.e2e.conftest import Deployment, Gateway
from tests.support.servers import RunningServer


def over_tls(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    tls_emulator: RunningServer,
    ca_file: Path | None,
) -> Gateway:
    deployment = make_deployment()
    deployment.emulator = tls_emulator
    deployment.env["NXS_UPSTREAM_URL"] = tls_emulator.url  # https://127.0.0.1:PORT
    if ca_file is not None:
        deployment.env["NXS_UPSTREAM_CA_FILE"] = str(ca_file)
    deployment.add_upstream("main", "acct-tls:secret-tls-0001")
    return fresh_gateway(deployment)


def test_runs_and_realtime_reach_fal_over_tls_with_the_configured_ca(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    tls_emulator: RunningServer,
    tls_files: dict[str, Path],
) -> None:
    gateway = over_tls(make_deployment, fresh_gateway, tls_emulator, tls_files["ca"])
    customer = gateway.customer("tls")
    run = gateway.request("POST", "/fal-ai/flux/schnell", customer.key, json={"prompt": "a"})
    assert run.status_code == 200, run.text
    assert run.json()["images"]
    url = gateway.url.replace("http", "ws") + "/fal-ai/fast-lcm-diffusion/realtime"

    async def session() -> aiohttp.WSMessage:
        headers = {"Authorization": f"Key {customer.key}"}
        async with aiohttp.ClientSession() as client, client.ws_connect(url, headers=headers) as ws:
            await ws.send_bytes(msgpack.packb({"prompt": "a boat", "seed": 1}))
            while (message := await ws.receive(timeout=20)).type == aiohttp.WSMsgType.TEXT:
                pass  # fal's timings before the result
            return message

    result = asyncio.run(session())
    assert result.type == aiohttp.WSMsgType.BINARY
    assert len(msgpack.unpackb(result.data)["images"]) == 1


def test_an_upstream_certificate_from_an_unknown_ca_is_refused(
    make_deployment: Callable[[], Deployment],
    fresh_gateway: Callable[..., Gateway],
    tls_emulator: RunningServer,
) -> None:
    gateway = over_tls(make_deployment, fresh_gateway, tls_emulator, None)
    customer = gateway.customer("tls-unknown-ca")
    run = gateway.request("POST", "/fal-ai/flux/schnell", customer.key, json={"prompt": "a"})
    assert run.status_code == 502
    assert run.json()["detail"] == "All upstream keys failed — try again later"
