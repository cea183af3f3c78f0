"""Bad input thrown at every emulator route: odd paths, methods, bodies, sizes and
headers all get a fal-shaped 4xx (JSON with `detail`, or the platform API's `error`),
never a 500 or a hang. Also the fail-fast and pricing rules fal documents:
`fal_max_queue_length`, the start-timeout header and unknown pricing ids.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.support.servers import RunningServer

RUN = "/fal.run/fal-ai/flux/schnell"
QUEUE = "/queue.fal.run/fal-ai/flux/schnell"
OK_INPUT = b'{"prompt": "a kite"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    key: str | None = "robust",
) -> Answer:
    """One raw request: no client-side cleaning of the path, method or body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    every = {"Content-Type": "application/json", **(headers or {})}
    if key:
        every["Authorization"] = f"Key {key}"
    connection.request(method, path, body=body, headers=every)
    response = connection.getresponse()
    answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, b"")
    answer.body = response.read()
    connection.close()
    return answer


def assert_fal_error(answer: Answer, status: int) -> Any:
    assert answer.status == status, answer.body[:300]
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert "detail" in body
    return body["detail"]


BAD_PATHS = [
    ("POST", "//"),
    ("POST", "/queue.fal.run/"),
    ("POST", "/queue.fal.run//"),
    ("POST", "/fal.run/"),
    ("POST", "/fal.run/nobody/nothing"),
    ("GET", "/queue.fal.run/fal-ai/flux/requests/%2F..%2F/status"),
    ("GET", "/queue.fal.run/fal-ai/flux/requests/does-not-exist"),
    ("PUT", "/queue.fal.run/fal-ai/flux/requests/does-not-exist/cancel"),
    ("GET", "/v3.fal.media/files/../../etc/passwd"),
    ("GET", "/v3.fal.media/files/%2e%2e/x"),
    ("GET", "/nowhere.fal.run/x"),
]


@pytest.mark.parametrize(("method", "path"), BAD_PATHS)
def test_malformed_paths_are_fal_404s(emulator: RunningServer, method: str, path: str) -> None:
    assert_fal_error(send(emulator, method, path, b"{}"), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", QUEUE),
        ("DELETE", "/queue.fal.run/fal-ai/flux/requests/abc"),
        ("POST", "/queue.fal.run/fal-ai/flux/requests/abc/status"),
        ("OPTIONS", RUN),
        ("HEAD", RUN),
        ("PUT", RUN),
    ],
)
def test_odd_methods_are_fal_405s(emulator: RunningServer, method: str, path: str) -> None:
    answer = send(emulator, method, path)
    assert answer.status == 405
    if method != "HEAD":  # a HEAD answer has no body
        assert answer.json()["detail"] == "Method Not Allowed"


DEEP = b"[" * 100_000 + b"]" * 100_000
BAD_BODIES = [
    pytest.param(b'\xff\xfe{"prompt"', id="not-utf8"),
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b"3", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"prompt": "x"', id="truncated"),
    pytest.param(DEEP, id="deeply-nested-array"),
    pytest.param(b'{"prompt": "x", "a": ' + DEEP + b"}", id="deeply-nested-field"),
    pytest.param(b'{"prompt": "x", "num_images": 0}', id="num_images-0"),
    pytest.param(b'{"prompt": "x", "num_images": 5}', id="num_images-5"),
    pytest.param(b'{"prompt": "x", "num_images": -1e9}', id="num_images-negative"),
    pytest.param(b'{"prompt": "x", "seed": 1e400}', id="seed-infinite"),
    pytest.param(b'{"prompt": "x", "seed": -1}', id="seed-negative"),
    pytest.param(b'{"prompt": "x", "num_inference_steps": NaN}', id="steps-nan"),
    pytest.param(b'{"prompt": "x", "num_inference_steps": true}', id="steps-bool"),
    pytest.param(b'{"prompt": "x", "image_size": {"width": 100000, "height": 100000}}', id="huge"),
    pytest.param(b'{"prompt": "x", "image_size": {"width": -5, "height": 1e308}}', id="negative"),
    pytest.param(b'{"prompt": "x", "image_size": "huge"}', id="size-enum"),
    pytest.param(b'{"prompt": ["x"]}', id="prompt-list"),
    pytest.param(b"{}", id="no-prompt"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("path", [RUN, QUEUE])
def test_bad_bodies_are_fal_422s(emulator: RunningServer, path: str, body: bytes) -> None:
    answer = send(emulator, "POST", path, body)
    detail = assert_fal_error(answer, 422)
    assert isinstance(detail, list) and detail[0]["loc"][0] == "body"
    assert answer.headers["x-fal-billable-units"] == "0"
    assert answer.headers["x-fal-request-id"]  # the app saw it, as on fal


@pytest.mark.parametrize(
    ("body", "count", "size"),
    [
        (b'{"prompt": "x", "num_images": "2"}', 2, (1024, 768)),  # pydantic's lax int
        (b'{"prompt": "x", "image_size": {"width": 1, "height": 1}}', 1, (1, 1)),
        (b'{"prompt": "\\ud800 lone surrogate"}', 1, (1024, 768)),
    ],
)
def test_edge_inputs_fal_accepts_still_work(
    emulator: RunningServer, body: bytes, count: int, size: tuple[int, int]
) -> None:
    answer = send(emulator, "POST", RUN, body)
    assert answer.status == 200, answer.body[:300]
    images = answer.json()["images"]
    assert len(images) == count and (images[0]["width"], images[0]["height"]) == size


def test_wrong_content_type_is_a_415(emulator: RunningServer) -> None:
    answer = send(emulator, "POST", RUN, OK_INPUT, {"Content-Type": "text/plain"})
    assert_fal_error(answer, 415)


def test_absurd_query_strings_and_big_headers_still_reach_the_route(
    emulator: RunningServer,
) -> None:
    long_query = RUN + "?" + "a=1&" * 5000
    assert send(emulator, "POST", long_query, OK_INPUT).status == 200
    big = send(emulator, "POST", RUN, OK_INPUT, {"X-Big": "a" * 50_000})
    assert big.status == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/rest.fal.ai/storage/upload/initiate", b"[1]"),
        ("/rest.fal.ai/storage/upload/initiate", b'{"content_type": 5, "file_name": null}'),
        ("/rest.fal.ai/storage/upload/initiate", DEEP),
        ("/rest.fal.ai/storage/auth/token", b"null"),
        ("/rest.fal.ai/tokens/", b'{"allowed_apps": 5, "token_expiration": -1}'),
        ("/rest.fal.ai/tokens/", b'{"allowed_apps": ["a"], "token_expiration": 1e300}'),
        ("/v3.fal.media/files/upload", b"abc"),  # no CDN token
    ],
)
def test_rest_hosts_refuse_bad_bodies_in_fal_shape(
    emulator: RunningServer, path: str, body: bytes
) -> None:
    answer = send(emulator, "POST", path, body)
    assert 400 <= answer.status < 500 and "detail" in answer.json()


@pytest.mark.parametrize(
    "webhook", ["notaurl", "http://[::1", "ftp://example.org/hook", "https://"]
)
def test_a_bad_webhook_url_is_a_422_naming_the_parameter(
    emulator: RunningServer, webhook: str
) -> None:
    answer = send(emulator, "POST", f"{QUEUE}?fal_webhook={webhook}", OK_INPUT)
    assert assert_fal_error(answer, 422)[0]["loc"] == ["query", "fal_webhook"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 40])
def test_a_bad_max_queue_length_is_a_422(emulator: RunningServer, value: str) -> None:
    answer = send(emulator, "POST", f"{QUEUE}?fal_max_queue_length={value}", OK_INPUT)
    assert assert_fal_error(answer, 422)[0]["loc"] == ["query", "fal_max_queue_length"]


def test_max_queue_length_rejects_when_more_wait_than_allowed(emulator: RunningServer) -> None:
    for _ in range(4):  # two start, the others wait IN_QUEUE
        assert send(emulator, "POST", QUEUE, OK_INPUT, key="qlen").status == 200
    full = send(emulator, "POST", f"{QUEUE}?fal_max_queue_length=1", OK_INPUT, key="qlen")
    assert "Queue is full" in assert_fal_error(full, 429)
    roomy = send(emulator, "POST", f"{QUEUE}?fal_max_queue_length=1000", OK_INPUT, key="qlen")
    assert roomy.status == 200 and roomy.json()["status"] == "IN_QUEUE"


@pytest.mark.parametrize("value", ["soon", "-3", "0", "nan", "1e99"])
def test_a_bad_start_timeout_header_is_a_400(emulator: RunningServer, value: str) -> None:
    answer = send(emulator, "POST", QUEUE, OK_INPUT, {"X-Fal-Request-Timeout": value})
    assert "X-Fal-Request-Timeout" in assert_fal_error(answer, 400)


def test_unknown_app_path_is_a_404_billing_nothing(emulator: RunningServer) -> None:
    answer = send(emulator, "POST", "/fal.run/fal-ai/flux/nonexistent", OK_INPUT)
    assert assert_fal_error(answer, 404) == "Path /fal-ai/flux/nonexistent not found"
    assert answer.headers["x-fal-billable-units"] == "0"


PRICING = "/api.fal.ai/v1/models/pricing"


@pytest.mark.parametrize(
    ("query", "status", "kind"),
    [
        ("", 400, "validation_error"),
        ("?endpoint_id=", 400, "validation_error"),
        ("?endpoint_id=" + ",".join(f"a/b{i}" for i in range(51)), 400, "validation_error"),
        ("?endpoint_id=nobody/nothing", 404, "not_found"),
        ("?endpoint_id=nobody/nothing&endpoint_id=x%2Fy", 404, "not_found"),
    ],
)
def test_pricing_refuses_missing_or_unknown_ids(
    emulator: RunningServer, query: str, status: int, kind: str
) -> None:
    answer = send(emulator, "GET", PRICING + query)
    assert answer.status == status and answer.json()["error"]["type"] == kind


def test_pricing_leaves_out_unknown_ids_among_known_ones(emulator: RunningServer) -> None:
    answer = send(emulator, "GET", PRICING + "?endpoint_id=fal-ai/flux/dev,nobody/nothing")
    body = answer.json()
    assert answer.status == 200 and [p["endpoint_id"] for p in body["prices"]] == [
        "fal-ai/flux/dev"
    ]
    assert body["has_more"] is False and body["next_cursor"] is None


def test_flaky_errors_name_their_type_in_the_header(emulator: RunningServer) -> None:
    seen = {}
    for _ in range(40):  # the coin is tossed before the route: an unknown id is quick
        path = "/queue.fal.run/fal-ai/flux/requests/nope/status"
        answer = send(emulator, "GET", path, key="flaky-robust")
        if answer.status >= 500:
            seen[answer.status] = answer.headers["x-fal-error-type"], answer.json()["error_type"]
    assert {status for status in seen} <= {500, 503} and seen
    assert all(header == body for header, body in seen.values())


def test_base_url_is_the_address_reached(emulator: RunningServer) -> None:
    answer = send(emulator, "POST", QUEUE, OK_INPUT)
    assert urlsplit(answer.json()["status_url"]).port == emulator.port


def test_every_answer_about_a_request_names_it(emulator: RunningServer) -> None:
    submitted = send(emulator, "POST", QUEUE, OK_INPUT, key="ids")
    request_id = submitted.json()["request_id"]
    assert submitted.headers["x-fal-request-id"] == request_id
    home = f"/queue.fal.run/fal-ai/flux/requests/{request_id}"
    for method, path in [("GET", f"{home}/status"), ("PUT", f"{home}/cancel")]:
        assert send(emulator, method, path, key="ids").headers["x-fal-request-id"] == request_id
    result = send(emulator, "GET", home, key="ids")
    for _ in range(100):  # 400 while its cancellation is still finishing
        if result.status != 400:
            break
        time.sleep(0.02)
        result = send(emulator, "GET", home, key="ids")
    assert result.status == 499 and result.headers["x-fal-request-id"] == request_id
    assert result.headers["x-fal-error-type"] == result.json()["error_type"] == "client_cancelled"
    ran = send(emulator, "POST", RUN, OK_INPUT, key="ids")
    assert ran.status == 200 and ran.headers["x-fal-request-id"]
    assert float(ran.headers["x-fal-billable-units"]) > 0
