"""@fal-ai/client's `fal.storage.upload` against `nxs emulator`: the initiate flow for
small files and the multipart flow above 90 MB, each fetched back byte for byte.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.support.clients import JS_DIR, run_node
from tests.support.servers import RunningServer

SCRIPT = JS_DIR / "conformance" / "storage-upload.mjs"


def js_upload(emulator: RunningServer, key: str, size: int, *args: str) -> Any:
    return run_node(SCRIPT, emulator.url, key, str(size), *args)


def received_paths(emulator: RunningServer, account_id: str | None = None) -> list[str]:
    with urllib.request.urlopen(f"{emulator.url}/_emulator/received") as response:
        data = json.load(response)
    records = data["received"] if isinstance(data, dict) else data
    return [
        f"{r['method']} {r['path']}"
        for r in records
        if account_id is None or r["account_id"] == account_id
    ]


def test_small_upload_returns_a_url_serving_the_same_bytes(emulator: RunningServer) -> None:
    result = js_upload(emulator, "js-up-alice:secret", 4096, "notes.txt", "text/plain")
    assert result["status"] == 200
    assert result["got_sha256"] == result["sent_sha256"]
    assert result["content_type"].startswith("text/plain")
    assert result["url"].startswith(f"{emulator.url}/v3.fal.media/files/")
    assert result["url"].endswith("/notes.txt")
    paths = received_paths(emulator, "js-up-alice")
    assert "POST /rest.fal.ai/storage/upload/initiate" in paths


def test_upload_above_90_mb_goes_multipart_and_reassembles(emulator: RunningServer) -> None:
    size = 95 * 1024 * 1024
    result = js_upload(emulator, "js-up-bob:secret", size, "video.bin")
    assert result["got_size"] == size
    assert result["got_sha256"] == result["sent_sha256"]
    assert "POST /rest.fal.ai/storage/upload/initiate-multipart" in received_paths(
        emulator, "js-up-bob"
    )
    upload_id = result["url"].split("/files/up-")[1].split("/")[0]
    parts = [p for p in received_paths(emulator) if f"/uploads/{upload_id}/" in p]
    assert sum(p.startswith("PUT ") for p in parts) == 10  # 10 MB parts
    assert parts[-1].endswith("/complete")


def test_upload_with_a_locked_key_is_refused(emulator: RunningServer) -> None:
    result = js_upload(emulator, "locked-js:secret", 100)
    assert result["status"] == 403
    assert "Exhausted balance" in result["detail"]
