"""The emulator's realtime WebSocket with a raw `websockets` client: what it refuses
and how, and what it answers to frames the official clients would never send.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import msgpack
import pytest
from tests.support.servers import RunningServer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

APP = "fal-ai/fast-lcm-diffusion"


def token_for(emulator: RunningServer, *apps: str, key: str = "rt-raw:secret") -> str:
    request = urllib.request.Request(
        f"{emulator.url}/rest.fal.ai/tokens/",
        data=json.dumps({"allowed_apps": list(apps), "token_expiration": 60}).encode(),
        headers={"Authorization": f"Key {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return str(json.load(response))


def ws_url(emulator: RunningServer, endpoint: str = APP, token: str | None = None) -> str:
    url = f"ws://127.0.0.1:{emulator.port}/fal.run/{endpoint}/realtime"
    return f"{url}?fal_jwt_token={token}" if token else url


def test_token_for_another_app_gets_unauthorized_then_close(emulator: RunningServer) -> None:
    with connect(ws_url(emulator, token=token_for(emulator, "flux"))) as ws:
        assert json.loads(ws.recv(timeout=5)) == {"status": "error", "error": "Unauthorized"}
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_no_credentials_gets_unauthorized(emulator: RunningServer) -> None:
    with connect(ws_url(emulator)) as ws:
        assert json.loads(ws.recv(timeout=5))["error"] == "Unauthorized"


def test_bad_key_on_the_handshake_is_refused_with_its_status(emulator: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(emulator), additional_headers={"Authorization": "Key limited-x:y"})
    assert refused.value.response.status_code == 429


def test_unknown_realtime_app_is_404(emulator: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(emulator, "fal-ai/no-such-app", token_for(emulator, "no-such-app")))
    assert refused.value.response.status_code == 404


def test_malformed_frames_get_x_fal_error_and_the_socket_survives(
    emulator: RunningServer,
) -> None:
    with connect(ws_url(emulator, token=token_for(emulator, "fast-lcm-diffusion"))) as ws:
        ws.send(b"\xc1 not msgpack")
        assert json.loads(ws.recv(timeout=5))["type"] == "x-fal-error"
        ws.send(msgpack.packb({"prompt": "x", "image_size": "huge"}))
        error = json.loads(ws.recv(timeout=5))
        assert error["error"] == "VALIDATION_ERROR" and "image_size" in error["reason"]
        ws.send(msgpack.packb({"prompt": "a boat", "format": "png", "num_images": 2}))
        frames = [ws.recv(timeout=5) for _ in range(2)]
    timing, result = json.loads(frames[0]), msgpack.unpackb(frames[1])
    assert timing["type"] == "x-fal-message"
    assert [image["content"][:4] for image in result["images"]] == [b"\x89PNG"] * 2


def test_plain_http_get_on_the_realtime_path_is_400(emulator: RunningServer) -> None:
    url = f"{emulator.url}/fal.run/{APP}/realtime"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    assert refused.value.code == 400
    with refused.value as response:
        assert json.load(response)["detail"] == "Expected a WebSocket upgrade"
