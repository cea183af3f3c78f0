"""The emulator's storage and token routes over plain HTTP: the happy path step by step,
and every kind of bad input answered in fal's JSON shape.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.support.servers import RunningServer

KEY = {"Authorization": "Key storage-tester:secret"}


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON body or raw bytes, headers) of one request."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), dict(error.headers)
    try:
        return status, json.loads(raw), got
    except ValueError:
        return status, raw, got


def initiate(emulator: RunningServer, kind: str = "initiate") -> dict[str, str]:
    url = f"{emulator.url}/rest.fal.ai/storage/upload/{kind}?storage_type=fal-cdn-v3"
    body = {"content_type": "text/plain", "file_name": "hello world.txt"}
    status, answer, _ = call("POST", url, body, KEY)
    assert status == 200
    return answer


def test_initiated_file_is_404_until_its_bytes_arrive(emulator: RunningServer) -> None:
    urls = initiate(emulator)
    assert urls["upload_url"].startswith(emulator.url + "/v3.fal.media/")
    assert call("GET", urls["file_url"])[0] == 404
    assert call("PUT", urls["upload_url"], b"hello", {"Content-Type": "text/plain"})[0] == 200
    status, body, headers = call("GET", urls["file_url"])
    assert (status, body) == (200, b"hello")
    assert headers["Content-Type"].startswith("text/plain")


def test_multipart_parts_are_joined_in_part_order(emulator: RunningServer) -> None:
    upload_url = initiate(emulator, "initiate-multipart")["upload_url"]
    etags = {n: call("PUT", f"{upload_url}/{n}", f"part{n};".encode())[1] for n in (2, 1, 3)}
    assert etags[1]["partNumber"] == 1 and etags[1]["etag"]
    parts = [{"partNumber": n, "etag": etags[n]["etag"]} for n in (3, 1, 2)]
    status, _, _ = call("POST", f"{upload_url}/complete", {"parts": parts})
    assert status == 200


def test_complete_with_a_wrong_etag_is_refused(emulator: RunningServer) -> None:
    upload_url = initiate(emulator, "initiate-multipart")["upload_url"]
    call("PUT", f"{upload_url}/1", b"data")
    status, body, _ = call(
        "POST", f"{upload_url}/complete", {"parts": [{"partNumber": 1, "etag": "x"}]}
    )
    assert status == 400 and "ETag" in body["detail"]


def test_put_to_an_unknown_upload_is_404(emulator: RunningServer) -> None:
    status, body, _ = call("PUT", f"{emulator.url}/v3.fal.media/uploads/nope", b"x")
    assert status == 404 and body["detail"] == "Upload not found"


def test_initiate_without_a_key_is_401(emulator: RunningServer) -> None:
    url = f"{emulator.url}/rest.fal.ai/storage/upload/initiate"
    status, body, _ = call("POST", url, {"content_type": "a/b", "file_name": "x"})
    assert status == 401 and "detail" in body


def test_initiate_with_missing_fields_is_422(emulator: RunningServer) -> None:
    url = f"{emulator.url}/rest.fal.ai/storage/upload/initiate"
    status, body, _ = call("POST", url, {"content_type": "text/plain"}, KEY)
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "file_name"]


def test_initiate_with_malformed_json_is_400(emulator: RunningServer) -> None:
    url = f"{emulator.url}/rest.alpha.fal.ai/storage/upload/initiate"
    status, body, _ = call("POST", url, b"{not json", KEY)
    assert status == 400 and body["detail"] == "Request body is not valid JSON"


def test_unknown_storage_type_is_422(emulator: RunningServer) -> None:
    url = f"{emulator.url}/rest.fal.ai/storage/upload/initiate?storage_type=s3"
    status, body, _ = call("POST", url, {"content_type": "a/b", "file_name": "x"}, KEY)
    assert status == 422 and body["detail"][0]["loc"] == ["query", "storage_type"]


def test_cdn_upload_needs_a_cdn_token(emulator: RunningServer) -> None:
    url = f"{emulator.url}/v3.fal.media/files/upload"
    status, body, _ = call("POST", url, b"x", {"Authorization": "Bearer forged"})
    assert status == 401 and "detail" in body
    realtime_token = call(
        "POST", f"{emulator.url}/rest.fal.ai/tokens/", {"allowed_apps": ["x"]}, KEY
    )[1]
    wrong_kind = {"Authorization": f"Bearer {realtime_token}"}
    assert call("POST", url, b"x", wrong_kind)[0] == 401


def test_cdn_token_then_upload(emulator: RunningServer) -> None:
    url = f"{emulator.url}/rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3"
    status, token, _ = call("POST", url, {}, KEY)
    assert status == 200 and token["token_type"] == "Bearer"
    assert token["base_url"] == f"{emulator.url}/v3.fal.media"
    headers = {"Authorization": f"Bearer {token['token']}", "X-Fal-File-Name": "a.bin"}
    status, answer, _ = call("POST", f"{token['base_url']}/files/upload", b"\x00\x01", headers)
    assert status == 200
    assert call("GET", answer["access_url"])[1] == b"\x00\x01"


def test_realtime_token_is_a_json_string(emulator: RunningServer) -> None:
    body = {"allowed_apps": ["fast-lcm-diffusion"], "token_expiration": 120}
    status, token, _ = call("POST", f"{emulator.url}/rest.fal.ai/tokens/", body, KEY)
    assert status == 200 and isinstance(token, str) and token.count(".") == 2


def test_realtime_token_request_is_validated(emulator: RunningServer) -> None:
    url = f"{emulator.url}/rest.fal.ai/tokens/"
    status, body, _ = call("POST", url, {"allowed_apps": [], "token_expiration": 120}, KEY)
    assert status == 422 and body["detail"][0]["loc"] == ["body", "allowed_apps"]
    status, body, _ = call("POST", url, {"allowed_apps": ["a"], "token_expiration": -1}, KEY)
    assert status == 422 and body["detail"][0]["loc"] == ["body", "token_expiration"]
    assert call("POST", url, {"allowed_apps": ["a"]}, {"Authorization": "Key invalid-x"})[0] == 401
