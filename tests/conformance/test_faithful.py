"""Both official clients on the paths where they read more than a body: a start timeout
(X-Fal-Request-Timeout) that expires IN_QUEUE → 504 with x-fal-request-timeout-type
`user`, which neither client retries; a failed model → its status, error_type and
request id; a direct run refused with 429 at the concurrency limit (the Python client
retries it). One slow, single-slot emulator per transport makes the waits real.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conformance.test_py_core import run_client
from tests.support.clients import JS_DIR, run_node
from tests.support.servers import RunningServer, start_emulator

FLUX = "fal-ai/flux/dev"
SLOW = ["--concurrency", "1", "--time-scale", "3"]


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_emulator(tmp_path_factory.mktemp("slow-emulator"), *SLOW)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_tls_emulator(
    tmp_path_factory: pytest.TempPathFactory, tls_files: dict[str, Path]
) -> Iterator[RunningServer]:
    server = start_emulator(tmp_path_factory.mktemp("slow-tls-emulator"), *SLOW, tls=tls_files)
    yield server
    server.stop()


def run_js(emulator: RunningServer, scenario: str, key: str) -> Any:
    script = JS_DIR / "conformance" / "faithful.mjs"
    return run_node(script, emulator.url, key, scenario, timeout=60)


def test_js_start_timeout_is_a_user_timeout(slow_emulator: RunningServer) -> None:
    out = run_js(slow_emulator, "start-timeout", "js-start-timeout")
    assert out["error"]["status"] == 504
    assert out["timeoutType"] == "user" and out["isUserTimeout"] is True
    assert out["error"]["body"] == {"detail": "Request timed out", "error_type": "request_timeout"}
    assert out["requestId"]


def test_js_failed_run_carries_status_and_request_id(slow_emulator: RunningServer) -> None:
    out = run_js(slow_emulator, "failure", "js-failure")
    assert out["error"]["status"] == 500
    assert out["error"]["body"]["error_type"] == "runner_server_error"
    assert out["requestId"]


PY_START_TIMEOUT = """
blocker = fal_client.submit(FLUX, arguments=ARGS)
try:
    fal_client.subscribe(FLUX, arguments=ARGS, start_timeout=1.5)
    out({"error": None})
except fal_client.client.FalClientHTTPError as error:
    out({"status": error.status_code, "error_type": error.error_type, "message": str(error),
         "timeout_type": error.response_headers.get("x-fal-request-timeout-type")})
"""


def test_py_start_timeout_is_a_user_timeout(
    slow_tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    out = run_client(slow_tls_emulator, tls_files["ca"], PY_START_TIMEOUT, key="py-timeout")
    assert out == {
        "status": 504,
        "error_type": "request_timeout",
        "message": "Request timed out",
        "timeout_type": "user",
    }


PY_FAILURE = """
handle = fal_client.submit(FLUX, arguments={**ARGS, "prompt": "now [fail]"})
status = handle.status()
while type(status).__name__ != "Completed":
    time.sleep(0.05)
    status = handle.status()
try:
    handle.get()
    out({"error": None})
except fal_client.client.FalClientHTTPError as error:
    out({"status": status.error, "type": status.error_type, "code": error.status_code,
         "error_type": error.error_type,
         "request_id": error.response_headers.get("x-fal-request-id") == handle.request_id})
"""


def test_py_failed_request_reports_its_error_everywhere(
    slow_tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    out = run_client(slow_tls_emulator, tls_files["ca"], PY_FAILURE, key="py-failure")
    assert out["type"] == out["error_type"] == "runner_server_error"
    assert out["status"] and out["code"] == 500 and out["request_id"] is True


def test_direct_run_at_the_limit_is_a_429_not_a_wait(slow_emulator: RunningServer) -> None:
    headers = {"Authorization": "Key run-limit", "Content-Type": "application/json"}
    body = json.dumps({"prompt": "a mill", "image_size": "square"}).encode()
    base = slow_emulator.url
    submit = urllib.request.Request(f"{base}/queue.fal.run/fal-ai/flux/dev", body, headers)
    with urllib.request.urlopen(submit, timeout=10) as answer:
        assert answer.status == 200  # takes the account's only slot
    run = urllib.request.Request(f"{base}/fal.run/fal-ai/flux/dev", body, headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(run, timeout=10)
    assert refused.value.code == 429
    assert "Concurrent requests limit" in json.loads(refused.value.read())["detail"]


PY_RUN_WHILE_BUSY = """
FAST = "fal-ai/flux/schnell"
blocker = fal_client.submit(FAST, arguments=ARGS)
result = fal_client.run(FAST, arguments=ARGS)  # 429 while the blocker runs: retried
out({"images": len(result["images"]), "blocker": type(blocker.status()).__name__})
"""


def test_py_client_retries_a_direct_run_refused_at_the_limit(
    slow_tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    out = run_client(slow_tls_emulator, tls_files["ca"], PY_RUN_WHILE_BUSY, key="py-busy")
    assert out == {"images": 1, "blocker": "Completed"}


def test_queue_direct_runs_flag_makes_a_direct_run_wait(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    flags = ("--concurrency", "1", "--queue-direct-runs")
    server = start_emulator(tmp_path_factory.mktemp("queued-runs"), *flags)
    try:
        headers = {"Authorization": "Key waits", "Content-Type": "application/json"}
        body = json.dumps({"prompt": "a barn", "image_size": "square"}).encode()
        submit = urllib.request.Request(f"{server.url}/queue.fal.run/{FLUX}", body, headers)
        urllib.request.urlopen(submit, timeout=10).close()
        run = urllib.request.Request(f"{server.url}/fal.run/{FLUX}", body, headers)
        with urllib.request.urlopen(run, timeout=30) as answer:
            assert answer.status == 200 and json.loads(answer.read())["images"]
    finally:
        server.stop()
