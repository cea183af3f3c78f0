"""SIGTERM with work in flight: a run and a stream finish and are answered in full, a
realtime session is closed with 1001, the run's ledger row and access line are written,
new connections are refused, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import msgpack
import pytest
from tests.e2e.conftest import Deployment, Gateway, eventually, launch
from tests.support.servers import RunningServer, start_emulator

SLOW = "3"  # the emulator's time scale: a flux/dev run takes ~2.4 s


@pytest.fixture(scope="module")
def slow_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_emulator(tmp_path_factory.mktemp("slow-emulator"), "--time-scale", SLOW)
    yield server
    server.stop()


@pytest.fixture
def draining(
    make_deployment: Callable[[], Deployment],
    slow_fal: RunningServer,
    tls_files: dict[str, Path],
) -> Iterator[Gateway]:
    deployment = make_deployment()
    deployment.emulator = slow_fal  # `received()` asks this one
    deployment.env.update(NXS_UPSTREAM_URL=slow_fal.url, NXS_DRAIN_SECONDS="20")
    deployment.add_upstream("main", "acct-drain:secret-drain-0001")
    gateway = launch(deployment, tls_files)
    yield gateway
    gateway.client.close()
    gateway.server.stop()


def in_background(call: Callable[[], Any]) -> Callable[[], Any]:
    """Start `call` in a thread; the returned function waits for its result."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    return lambda: (thread.join(30), box[0])[1]


def test_sigterm_lets_a_run_and_a_stream_finish_then_flushes_ledger_and_log(
    draining: Gateway,
) -> None:
    customer = draining.customer("drain")
    headers = {"Authorization": f"Key {customer.key}"}

    def stream() -> list[str]:
        url = draining.url + "/fal-ai/flux/dev/stream"
        with httpx.stream("POST", url, json={"prompt": "b"}, headers=headers, timeout=30) as r:
            return [line for line in r.iter_lines() if line.startswith("data:")]

    run = in_background(
        lambda: draining.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": "a"})
    )
    events = in_background(stream)
    assert eventually(lambda: len(draining.deployment.received()) == 2, 5)  # both at fal
    draining.server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # uvicorn has stopped accepting by now
    with pytest.raises(httpx.ConnectError):
        httpx.get(draining.url + "/healthz", timeout=2)
    response, received = run(), events()
    assert response.status_code == 200 and response.json()["images"]
    assert received and '"images"' in received[-1]  # the stream's last event: the result
    assert draining.server.process.wait(timeout=30) == 0
    fal_id = response.headers["x-fal-request-id"]
    rows = draining.deployment.rows("SELECT status FROM ledger WHERE request_id = ?", fal_id)
    assert [row["status"] for row in rows] == ["settled"]  # the writer flushed at exit
    assert response.headers["x-nxs-request-id"] in draining.server.log()  # and the access log
    assert "Traceback" not in draining.server.log()


def test_sigterm_closes_a_realtime_session_with_1001(draining: Gateway) -> None:
    customer = draining.customer("drain-rt")
    url = draining.url.replace("http", "ws") + "/fal-ai/fast-lcm-diffusion/realtime"

    async def session() -> aiohttp.WSMessage:
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(url, headers={"Authorization": f"Key {customer.key}"}) as ws,
        ):
            await ws.send_bytes(msgpack.packb({"prompt": "a boat", "seed": 1}))
            while (await ws.receive(timeout=20)).type != aiohttp.WSMsgType.BINARY:
                pass  # fal's timings before the result: the session is bridged
            draining.server.process.send_signal(signal.SIGTERM)
            return await ws.receive(timeout=20)

    closed = asyncio.run(session())
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1001
    assert closed.extra == "Server shutting down"
    assert draining.server.process.wait(timeout=30) == 0
