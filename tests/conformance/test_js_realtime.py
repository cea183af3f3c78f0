"""@fal-ai/client's `fal.realtime.connect` against `nxs emulator`: token, WebSocket,
msgpack frames out and image frames back; a forged token is refused.
"""

from __future__ import annotations

from typing import Any

from tests.support.clients import JS_DIR, run_node
from tests.support.servers import RunningServer

SCRIPT = JS_DIR / "conformance" / "realtime-connect.mjs"


def js_realtime(emulator: RunningServer, key: str, endpoint: str, *prompts: str, **env: str) -> Any:
    return run_node(SCRIPT, emulator.url, key, endpoint, *prompts, env=env, timeout=60)


def test_each_sent_input_comes_back_as_an_image(emulator: RunningServer) -> None:
    out = js_realtime(emulator, "rt-alice:secret", "fal-ai/fast-lcm-diffusion", "a cat", "a dog")
    assert out["errors"] == []
    assert len(out["results"]) == 2
    for result in out["results"]:
        (image,) = result["images"]
        assert (image["width"], image["height"]) == (512, 512)
        assert image["content_type"] == "image/jpeg"
        assert image["magic"].startswith("ffd8ff")  # real JPEG bytes, delivered as binary
        assert result["seed"] == 7 and result["has_nsfw_concepts"] == [False]
    assert out["results"][0]["images"][0]["bytes"] != out["results"][1]["images"][0]["bytes"]


def test_a_forged_token_is_refused_as_unauthorized(emulator: RunningServer) -> None:
    out = js_realtime(
        emulator,
        "rt-bob:secret",
        "fal-ai/fast-lcm-diffusion",
        "a cat",
        REALTIME_TOKEN="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged",
        REALTIME_TIMEOUT_MS="5000",
    )
    assert out["results"] == []
    assert out["errors"][0]["message"].endswith("Unauthorized")
