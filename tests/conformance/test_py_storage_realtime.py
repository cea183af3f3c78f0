"""The official Python client's uploads and realtime against `nxs emulator` (TLS).

fal_client hard-codes `REST_URL = "https://rest.fal.ai"` and `CDN_URL =
"https://v3.fal.media"` (no environment override), so each script sets those two module
constants to the emulator's `/rest.fal.ai` and `/v3.fal.media` prefixes: that is how its
uploads and tokens reach a non-fal host. Realtime also uses `FAL_RUN_HOST` (env).
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.clients import run_python
from tests.support.servers import RunningServer

PRELUDE = """
import hashlib, json, os, ssl, sys, urllib.request
import fal_client
import fal_client.client as fal_module
base = os.environ["EMULATOR_URL"]
fal_module.REST_URL = base + "/rest.fal.ai"
fal_module.CDN_URL = base + "/v3.fal.media"
tls = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])

def fetch(url):
    with urllib.request.urlopen(url, context=tls) as response:
        return response.read(), response.headers["content-type"]

def sample(size):
    return bytes((i * 7 + (i >> 10)) & 0xFF for i in range(size))
"""

UPLOAD = """
data = sample(int(sys.argv[1]))
if len(sys.argv) > 2:  # a lower multipart threshold, so a small file goes multipart
    fal_module.MULTIPART_THRESHOLD = fal_module.MULTIPART_CHUNK_SIZE = int(sys.argv[2])
repository = sys.argv[3] if len(sys.argv) > 3 else None
url = fal_client.upload(data, "image/png", file_name="pic.png", repository=repository)
body, content_type = fetch(url)
print(json.dumps({"url": url, "same": body == data, "content_type": content_type}))
"""

REALTIME = """
results = []
with fal_client.realtime("fal-ai/fast-lcm-diffusion", use_jwt=sys.argv[1] == "jwt") as conn:
    for prompt in ("a cat", "a cat", "a dog"):
        conn.send({"prompt": prompt, "seed": 3, "image_size": "landscape_4_3"})
        result = conn.recv()
        image = result["images"][0]
        results.append({
            "size": [image["width"], image["height"]],
            "content_type": image["content_type"],
            "magic": image["content"][:3].hex(),
            "sha256": hashlib.sha256(image["content"]).hexdigest(),
            "seed": result["seed"],
        })
    conn.send({"seed": 3})
    try:
        conn.recv()
    except fal_module.RealtimeError as error:
        results.append({"error": error.error, "reason": error.reason})
print(json.dumps(results))
"""


def run_client(
    script: str, server: RunningServer, tls_files: dict[str, Path], key: str, *args: str
) -> Any:
    env = {
        "FAL_KEY": key,
        "EMULATOR_URL": server.url,
        "FAL_RUN_HOST": f"127.0.0.1:{server.port}/fal.run",
        "FAL_QUEUE_RUN_HOST": f"127.0.0.1:{server.port}/queue.fal.run",
        "SSL_CERT_FILE": str(tls_files["ca"]),
    }
    return run_python(PRELUDE + script, *args, env=env, timeout=60)


def received_paths(server: RunningServer, tls_files: dict[str, Path], account_id: str) -> list[str]:
    """What the emulator recorded for one account, as `METHOD /path` lines."""
    context = ssl.create_default_context(cafile=str(tls_files["ca"]))
    with urllib.request.urlopen(f"{server.url}/_emulator/received", context=context) as response:
        data = json.load(response)
    records = data["received"] if isinstance(data, dict) else data
    return [f"{r['method']} {r['path']}" for r in records if r["account_id"] == account_id]


def test_upload_uses_the_cdn_token_flow_and_serves_the_bytes(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    out = run_client(UPLOAD, tls_emulator, tls_files, "py-up-alice:secret", "5000")
    assert out["same"] and out["content_type"] == "image/png"
    assert out["url"].startswith(f"{tls_emulator.url}/v3.fal.media/files/")
    assert out["url"].endswith("/pic.png")
    paths = received_paths(tls_emulator, tls_files, "py-up-alice")
    assert paths == ["POST /rest.fal.ai/storage/auth/token", "POST /v3.fal.media/files/upload"]


def test_large_upload_goes_multipart_and_reassembles(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    out = run_client(UPLOAD, tls_emulator, tls_files, "py-up-bob:secret", "3000000", "1000000")
    assert out["same"]
    paths = received_paths(tls_emulator, tls_files, "py-up-bob")
    assert "POST /v3.fal.media/files/upload/multipart" in paths
    assert sum(p.startswith("PUT ") and "/multipart/" in p for p in paths) == 3
    assert paths[-1].endswith("/complete")


def test_upload_to_the_storage_repository_uses_initiate(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    args = ("2000", str(10**9), "fal")
    out = run_client(UPLOAD, tls_emulator, tls_files, "py-up-carol:secret", *args)
    assert out["same"] and out["content_type"] == "image/png"
    paths = received_paths(tls_emulator, tls_files, "py-up-carol")
    assert paths == ["POST /rest.fal.ai/storage/upload/initiate"]


def test_realtime_answers_each_input_with_a_deterministic_image(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    first, again, other, invalid = run_client(
        REALTIME, tls_emulator, tls_files, "py-rt-alice:secret", "jwt"
    )
    assert first["size"] == [1024, 768] and first["content_type"] == "image/jpeg"
    assert first["magic"] == "ffd8ff" and first["seed"] == 3
    assert first["sha256"] == again["sha256"] != other["sha256"]
    assert invalid == {"error": "VALIDATION_ERROR", "reason": "prompt: field required"}


def test_realtime_with_the_key_on_the_handshake(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    results = run_client(REALTIME, tls_emulator, tls_files, "py-rt-bob:secret", "key")
    assert results[0]["size"] == [1024, 768]
