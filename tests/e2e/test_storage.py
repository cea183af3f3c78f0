"""Storage through the gateway: the JS client's `fal.storage.upload` of a small and a
>90 MB (multipart) file through the middleware and proxyUrl, and the storage REST calls
on the gateway's own paths (`POST /storage/upload/initiate` …) with an `nxs_` key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.conftest import Customer, Gateway, eventually
from tests.support.clients import JS_DIR, run_node

LARGE = 95 * 1024 * 1024  # above the JS client's 90 MB multipart threshold


def upload_js(gateway: Gateway, key: str, mode: str, size: int) -> dict[str, Any]:
    script = JS_DIR / "e2e" / "storage-gateway.mjs"
    return dict(run_node(script, gateway.url, key, mode, str(size), timeout=120))


@pytest.mark.parametrize(("mode", "size"), [("middleware", 2048), ("proxyUrl", LARGE)])
def test_js_upload_through_the_gateway(
    gateway: Gateway, alice: Customer, mode: str, size: int
) -> None:
    before = len(gateway.deployment.received())
    out = upload_js(gateway, alice.key, mode, size)
    assert out["status"] == 200
    assert out["size"] == size
    assert out["got"] == out["sent"]  # the bytes came back intact
    initiated = [
        entry
        for entry in gateway.deployment.received()[before:]
        if "/storage/upload/initiate" in entry["path"]
    ]
    multipart = size > 90 * 1024 * 1024
    assert initiated[0]["path"].endswith("initiate-multipart" if multipart else "initiate")
    assert initiated[0]["account_id"] == "acct-main"  # a pool key, never the nxs_ key


@pytest.mark.parametrize(
    "path",
    [
        "/storage/upload/initiate?storage_type=fal-cdn-v3",
        "/storage/upload/initiate-multipart?storage_type=fal-cdn-v3",
    ],
)
def test_rest_initiate_paths(gateway: Gateway, alice: Customer, path: str) -> None:
    body = {"content_type": "text/plain", "file_name": "hello.txt"}
    response = gateway.request("POST", path, alice.key, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["file_url"].endswith("/hello.txt")
    put = gateway.client.put(answer["upload_url"], content=b"hello", timeout=10)
    assert put.status_code in (200, 201, 204) or "multipart" in path


def test_rest_cdn_token(gateway: Gateway, alice: Customer) -> None:
    response = gateway.request("POST", "/storage/auth/token?storage_type=fal-cdn-v3", alice.key)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_rest_paths_need_an_nxs_key(gateway: Gateway) -> None:
    response = gateway.request("POST", "/storage/upload/initiate", json={})
    assert response.status_code == 401
    assert "detail" in response.json()


def test_complete_multipart_is_forwarded(gateway: Gateway, alice: Customer) -> None:
    target = "https://rest.fal.ai/storage/upload/complete-multipart"
    response = gateway.request(
        "POST", "/api/proxy", alice.key, headers={"x-fal-target-url": target}, json={}
    )
    assert response.status_code != 400, response.text  # allowed by the proxy's allow-list
    request_id = response.headers["x-nxs-request-id"]
    assert eventually(lambda: _log_line(gateway, request_id) is not None)
    line = _log_line(gateway, request_id) or {}
    assert line["route"] == "proxy_rest" and line["upstream"] == "main"  # went upstream


def _log_line(gateway: Gateway, request_id: str) -> dict[str, Any] | None:
    for line in gateway.server.log().splitlines():
        if f'"request_id":"{request_id}"' in line:
            return dict(json.loads(line))
    return None
