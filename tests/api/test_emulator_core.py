"""The emulator's queue and run hosts over plain HTTP: status codes, logs, accounts and
test keys, bad input in fal's shape, per-account queueing and URLs built from the
address reached. `Fal` is the tiny urllib client the emulator API tests share.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.servers import RunningServer, start_emulator

FLUX = "fal-ai/flux/dev"
ARGS = {"prompt": "a lighthouse", "image_size": "square", "seed": 3}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Fal:
    """Plain HTTP to one emulator as one key (or none)."""

    def __init__(self, base: str, key: str | None = "alice") -> None:
        self.base, self.key = base, key

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None and "Content_Type" not in headers:
            request.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        if self.key:
            request.add_header("Authorization", f"Key {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())

    def submit(self, endpoint: str = FLUX, body: Any = None) -> dict[str, Any]:
        reply = self.call("POST", f"/queue.fal.run/{endpoint}", ARGS if body is None else body)
        assert reply.status == 200, reply.body
        return dict(reply.json())

    def wait(self, app: str, request_id: str, until: str = "COMPLETED") -> Reply:
        path = f"/queue.fal.run/{app}/requests/{request_id}/status?logs=1"
        for _ in range(400):
            reply = self.call("GET", path)
            if reply.json()["status"] == until:
                return reply
            time.sleep(0.05)
        raise AssertionError(f"{request_id} never reached {until}")


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An emulator with stretched timings and a 2 KB body limit."""
    flags = ("--time-scale", "6", "--max-body-bytes", "2048")
    server = start_emulator(tmp_path_factory.mktemp("slow-emulator"), *flags)
    yield server
    server.stop()


def test_status_codes_follow_the_request_through_the_queue(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    submitted = fal.submit()
    assert submitted["status"] == "IN_QUEUE" and submitted["queue_position"] == 0
    progress = fal.wait("fal-ai/flux", submitted["request_id"], "IN_PROGRESS")
    assert progress.status == 202 and isinstance(progress.json()["logs"], list)
    done = fal.wait("fal-ai/flux", submitted["request_id"])
    assert done.status == 200
    assert done.json()["logs"] and "inference_time" in done.json()["metrics"]
    quiet = fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{submitted['request_id']}/status")
    assert quiet.json()["logs"] is None


def test_result_carries_request_id_and_billable_units(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    request_id = fal.submit(body={**ARGS, "num_images": 2})["request_id"]
    fal.wait("fal-ai/flux", request_id)
    result = fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{request_id}/")
    assert result.status == 200
    assert result.headers["x-fal-request-id"] == request_id
    assert result.headers["x-fal-billable-units"] == "0.52"  # 2 × 512² pixels
    cancel = fal.call("PUT", f"/queue.fal.run/fal-ai/flux/requests/{request_id}/cancel")
    assert (cancel.status, cancel.json()) == (400, {"status": "ALREADY_COMPLETED"})


def test_another_accounts_request_looks_unknown(emulator: RunningServer) -> None:
    request_id = Fal(emulator.url, "alice").submit()["request_id"]
    bob, path = Fal(emulator.url, "bob"), "/queue.fal.run/fal-ai/flux/requests/"
    theirs = bob.call("GET", f"{path}{request_id}/status")
    unknown = bob.call("GET", f"{path}00000000-0000-0000-0000-000000000000/status")
    assert theirs.status == unknown.status == 404
    assert theirs.body == unknown.body and theirs.json()["detail"] == "Request not found"
    assert bob.call("PUT", f"{path}{request_id}/cancel").status == 404


@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("invalid-1", 401), ("locked-1", 403), ("limited-1", 429)]
)
def test_test_keys_are_refused_as_fal_refuses(
    emulator: RunningServer, key: str | None, status: int
) -> None:
    reply = Fal(emulator.url, key).call("POST", f"/fal.run/{FLUX}", ARGS)
    assert reply.status == status and isinstance(reply.json()["detail"], str)
    if key == "locked-1":
        assert reply.json()["detail"].startswith("User is locked. Reason: Exhausted balance")


def test_bad_input_is_answered_in_fals_shape(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    missing = fal.call("POST", f"/fal.run/{FLUX}", {"image_size": "square"})
    assert missing.status == 422 and missing.json() == {
        "detail": [
            {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}
        ]
    }
    malformed = fal.call("POST", f"/fal.run/{FLUX}", b"{not json")
    assert malformed.status == 422 and malformed.json()["detail"][0]["loc"][0] == "body"
    wrong_type = fal.call("POST", f"/fal.run/{FLUX}", b"prompt=x", Content_Type="text/plain")
    assert wrong_type.status == 415 and "detail" in wrong_type.json()
    unknown = fal.call("POST", "/fal.run/fal-ai/no-such-model", ARGS)
    assert unknown.status == 404 and "not found" in unknown.json()["detail"]
    assert fal.call("POST", f"/fal.run/{FLUX}", [1, 2]).status == 422


def test_oversized_body_is_413(slow_emulator: RunningServer) -> None:
    reply = Fal(slow_emulator.url).call("POST", f"/fal.run/{FLUX}", {"prompt": "x" * 5000})
    assert reply.status == 413 and "detail" in reply.json()


def test_requests_past_the_concurrency_limit_wait_in_queue(slow_emulator: RunningServer) -> None:
    fal = Fal(slow_emulator.url, "carol")
    ids = [fal.submit()["request_id"] for _ in range(4)]
    for request_id in ids[:2]:
        fal.wait("fal-ai/flux", request_id, "IN_PROGRESS")
    waiting = [fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{i}/status") for i in ids[2:]]
    assert [reply.status for reply in waiting] == [202, 202]
    assert [reply.json()["queue_position"] for reply in waiting] == [0, 1]
    assert Fal(slow_emulator.url, "dave").submit()["queue_position"] == 0
    fal.call("PUT", f"/queue.fal.run/fal-ai/flux/requests/{ids[0]}/cancel")
    moved = fal.wait("fal-ai/flux", ids[2], "IN_PROGRESS")
    assert moved.status == 202
    last = fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{ids[3]}/status").json()
    assert last["queue_position"] == 0
    for request_id in ids:
        fal.call("PUT", f"/queue.fal.run/fal-ai/flux/requests/{request_id}/cancel")


def test_urls_are_built_from_the_address_reached(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    submitted = fal.call("POST", f"/queue.fal.run/{FLUX}", ARGS, Host="nxs.example:4321").json()
    home = f"http://nxs.example:4321/queue.fal.run/fal-ai/flux/requests/{submitted['request_id']}"
    assert submitted["response_url"] == home
    assert submitted["status_url"] == home + "/status"
    assert submitted["cancel_url"] == home + "/cancel"
    localhost = Fal(emulator.url.replace("127.0.0.1", "localhost"))
    image = localhost.call("POST", f"/fal.run/{FLUX}", ARGS).json()["images"][0]
    assert image["url"].startswith(f"http://localhost:{emulator.port}/v3.fal.media/files/")


def test_a_failing_request_completes_with_an_error(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    request_id = fal.submit(body={"prompt": "please [fail]"})["request_id"]
    status = fal.wait("fal-ai/flux", request_id).json()
    assert status["error"] and status["error_type"] == "runner_server_error"
    result = fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{request_id}")
    assert result.status == 500 and result.json()["detail"] == status["error"]
    assert result.headers["x-fal-billable-units"] == "0"
    direct = fal.call("POST", f"/fal.run/{FLUX}", {"prompt": "[fail]"})
    assert direct.status == 500 and "x-fal-request-id" in direct.headers


def test_status_stream_sends_events_until_completed(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    request_id = fal.submit()["request_id"]
    reply = fal.call(
        "GET", f"/queue.fal.run/fal-ai/flux/requests/{request_id}/status/stream?logs=1"
    )
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(chunk[6:]) for chunk in reply.body.decode().split("\n\n") if chunk]
    assert events[-1]["status"] == "COMPLETED"
    assert all(event["status"] != "COMPLETED" for event in events[:-1])
    streamed = [log["message"] for event in events for log in event.get("logs") or []]
    polled = fal.call("GET", f"/queue.fal.run/fal-ai/flux/requests/{request_id}/status?logs=1")
    assert streamed == [log["message"] for log in polled.json()["logs"]]


def test_run_answers_directly_and_accepts_get_with_query_input(emulator: RunningServer) -> None:
    fal = Fal(emulator.url)
    posted = fal.call("POST", f"/fal.run/{FLUX}/", ARGS)
    assert posted.status == 200 and posted.headers["x-fal-request-id"]
    got = fal.call("GET", f"/fal.run/{FLUX}?prompt=a%20lighthouse&image_size=square&seed=3")
    assert got.status == 200 and got.json()["images"][0]["width"] == 512
    assert fal.call("GET", "/healthz").json() == {"ok": True}


def test_received_log_names_the_account_but_never_the_secret(emulator: RunningServer) -> None:
    since = time.time()
    Fal(emulator.url, "erin:s3cret-value").call("POST", f"/fal.run/{FLUX}", ARGS)
    log = Fal(emulator.url, None).call("GET", f"/_emulator/received?since={since}")
    entries = [entry for entry in log.json()["received"] if entry["account_id"] == "erin"]
    assert [(entry["method"], entry["path"]) for entry in entries] == [("POST", f"/fal.run/{FLUX}")]
    assert b"s3cret" not in log.body
    assert Fal(emulator.url).call("GET", "/_emulator/received?since=soon").status == 400
