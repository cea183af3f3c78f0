"""Streaming through the gateway: `fal.stream` (JS client, middleware and proxyUrl) gets
each event when the emulator sent it, not bunched at the end; a client that hangs up
mid-stream closes the upstream call; queue status/stream passes events through."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import (
    GOOD_KEY,
    Customer,
    DatabaseEnv,
    Deployment,
    Gateway,
    eventually,
    launch,
)
from tests.support.clients import JS_DIR, run_node
from tests.support.servers import start_emulator

SLOW_SCALE = "1.5"  # flux/dev: three progress events ~0.4 s apart


@pytest.fixture(scope="module")
def slow(
    tmp_path_factory: pytest.TempPathFactory,
    tls_files: dict[str, Path],
    database_env: DatabaseEnv,
) -> Iterator[tuple[Gateway, Customer]]:
    """A gateway in front of an emulator slow enough to see events arrive one by one."""
    folder = tmp_path_factory.mktemp("slow-stream")
    emulator = start_emulator(folder, "--time-scale", SLOW_SCALE)
    env = {**database_env(folder), "NXS_UPSTREAM_URL": emulator.url, "NXS_REFRESH_SECONDS": "0.2"}
    deployment = Deployment(folder, env, emulator)
    deployment.add_upstream("main", GOOD_KEY)
    gateway = launch(deployment, tls_files)
    try:
        yield gateway, gateway.customer("streamer")
    finally:
        gateway.client.close()
        gateway.server.stop()
        emulator.stop()


@pytest.mark.parametrize("mode", ["middleware", "proxyUrl"])
def test_js_stream_events_arrive_as_sent(slow: tuple[Gateway, Customer], mode: str) -> None:
    gateway, customer = slow
    out = run_node(JS_DIR / "e2e" / "stream-timing.mjs", gateway.url, customer.key, mode)
    partials = [event for event in out["events"] if event["partial"]]
    assert out["images"] == 1
    assert len(partials) == 3
    sent = [event["sent"] for event in partials]
    arrived = [event["arrived"] for event in partials]
    spacing = min(later - earlier for earlier, later in itertools.pairwise(sent))
    assert spacing > 0.2  # the emulator really spaced them out
    for event in partials:
        # Each event reached the client well before the next one was even sent; a
        # buffering relay would hand over the first only at the end (≥ 2 × spacing late).
        assert event["arrived"] - event["sent"] < spacing / 2, out
    assert arrived[-1] - arrived[0] > spacing  # spread out, not bunched


def test_client_hanging_up_mid_stream_closes_the_upstream_call(
    slow: tuple[Gateway, Customer],
) -> None:
    gateway, customer = slow
    headers = {"Authorization": f"Key {customer.key}"}
    url = f"{gateway.url}/fal-ai/flux/dev/stream"
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url, json={"prompt": "left early"}, headers=headers) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-nxs-request-id"]
        first = next(response.iter_lines())
        assert first.startswith("data:") and '"partial":true' in first
    # The gateway saw the client go (logged as 499) and is still serving everyone.
    assert eventually(lambda: _logged_status(gateway, request_id) == 499)
    after = gateway.request("POST", "/fal-ai/flux/schnell", customer.key, json={"prompt": "x"})
    assert after.status_code == 200


def _logged_status(gateway: Gateway, request_id: str) -> int | None:
    for line in gateway.server.log().splitlines():
        if f'"request_id":"{request_id}"' in line:
            return int(json.loads(line)["status"])
    return None


def test_queue_status_stream_passes_events_through(gateway: Gateway, alice: Customer) -> None:
    submitted = gateway.submit("fal-ai/flux/dev", alice.key)
    request_id = submitted["request_id"]
    path = f"/queue/fal-ai/flux/requests/{request_id}/status/stream"
    with gateway.client.stream(
        "GET", gateway.url + path, headers={"Authorization": f"Key {alice.key}"}
    ) as response:
        assert response.status_code == 200
        events = [
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        ]
    assert events[-1]["status"] == "COMPLETED"
    assert events[-1]["response_url"].startswith(gateway.url)  # pointed at the gateway
