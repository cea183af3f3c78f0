"""The official JS client (@fal-ai/client, run by node) against the emulator's core:
run, subscribe with logs and queue updates, submit/status/result/cancel, stream, and a
422 surfaced as the client's ValidationError. The scenarios live in core.mjs.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from tests.support.clients import JS_DIR, run_node
from tests.support.servers import RunningServer


def run_scenario(emulator: RunningServer, scenario: str, key: str = "js-core") -> Any:
    return run_node(JS_DIR / "conformance" / "core.mjs", emulator.url, key, scenario, timeout=60)


def test_run_returns_a_real_png_of_the_requested_size(emulator: RunningServer) -> None:
    out = run_scenario(emulator, "run")
    image = out["data"]["images"][0]
    assert (image["width"], image["height"], image["content_type"]) == (512, 512, "image/png")
    assert image["url"].startswith(f"{emulator.url}/v3.fal.media/files/")
    assert out["image"]["status"] == 200 and out["image"]["magic"] == "89504e47"
    assert out["requestId"] and out["data"]["seed"] == 42


def test_subscribe_reports_queue_progress_with_logs(emulator: RunningServer) -> None:
    out = run_scenario(emulator, "subscribe")
    statuses = [update["status"] for update in out["updates"]]
    assert statuses[0] == "IN_QUEUE" and "IN_PROGRESS" in statuses
    assert statuses[-1] == "COMPLETED"
    assert any(update["logs"] for update in out["updates"] if update["status"] == "IN_PROGRESS")
    assert len(out["data"]["images"]) == 2 and out["requestId"]
    streamed = out["streamed"]
    assert streamed[-1]["status"] == "COMPLETED"
    assert streamed[-1]["logs"] == out["updates"][-1]["logs"]  # each line once, in order


def test_queue_submit_status_result_and_cancel_after_completion(emulator: RunningServer) -> None:
    out = run_scenario(emulator, "queue")
    request_id = out["submitted"]["request_id"]
    assert out["submitted"]["status"] == "IN_QUEUE"
    assert out["submitted"]["status_url"].startswith(f"{emulator.url}/queue.fal.run/fal-ai/flux/")
    assert out["completed"]["status"] == "COMPLETED" and out["completed"]["logs"]
    assert "inference_time" in out["completed"]["metrics"]
    assert out["result"]["requestId"] == request_id
    assert out["result"]["data"]["images"][0]["width"] == 512
    assert out["cancelAfterDone"]["status"] == 400


def test_cancel_of_a_queued_request_ends_it(emulator: RunningServer) -> None:
    out = run_scenario(emulator, "cancel", key="js-cancel")
    assert out["final"]["status"] == "COMPLETED"
    assert out["final"]["error_type"] == "client_cancelled"
    assert out["result"]["status"] == 499  # fal's client_cancelled


def test_namespaced_endpoint_drops_its_path_from_request_urls(emulator: RunningServer) -> None:
    out = run_scenario(emulator, "workflow")
    assert out["statuses"][-1] == "COMPLETED" and out["data"]["images"]
    assert out["status"]["status"] == "COMPLETED"
    prefix = f"{emulator.url}/queue.fal.run/workflows/fal-ai/image-pipeline/requests/"
    assert out["status"]["response_url"] == prefix + out["requestId"]


def test_stream_sends_partials_then_the_final_result(emulator: RunningServer) -> None:
    out = run_scenario(emulator, "stream")
    assert len(out["events"]) >= 2
    assert all(event.get("partial") for event in out["events"][:-1])
    assert out["done"] == out["events"][-1]
    assert out["done"]["images"][0]["content_type"] == "image/jpeg"
    assert out["requestId"]


@pytest.mark.parametrize("call", ["run", "subscribe"])
def test_invalid_input_is_a_validation_error(emulator: RunningServer, call: str) -> None:
    outcome = run_scenario(emulator, "invalid")[call]
    assert outcome["name"] == "ValidationError" and outcome["status"] == 422
    fields = [error["loc"] for error in outcome["fieldErrors"]]
    assert ["body", "prompt"] in fields


def test_the_key_the_client_used_is_what_reached_the_emulator(emulator: RunningServer) -> None:
    run_scenario(emulator, "run", key="js-witness:secret")
    with urllib.request.urlopen(f"{emulator.url}/_emulator/received") as response:
        received = json.load(response)["received"]
    mine = [entry for entry in received if entry["account_id"] == "js-witness"]
    assert any(entry["path"] == "/fal.run/fal-ai/flux/schnell" for entry in mine)
