"""The official Python client (fal-client) against the emulator over TLS: run,
subscribe with logs and queue updates, submit/status/result/cancel, stream, and a 422
raised as the client's error. fal_client reads its hosts at import, so each scenario
runs in a fresh interpreter with FAL_RUN_HOST/FAL_QUEUE_RUN_HOST pointing at us.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.support.clients import run_python
from tests.support.servers import RunningServer

PRELUDE = """
import json, time, fal_client
def out(value): print(json.dumps(value))
FLUX = "fal-ai/flux/dev"
ARGS = {"prompt": "a lighthouse at dusk", "image_size": "square", "seed": 7}
"""


def run_client(server: RunningServer, ca: Path, code: str, key: str = "py-core") -> Any:
    host = f"127.0.0.1:{server.port}"
    env = {
        "FAL_KEY": key,
        "FAL_RUN_HOST": f"{host}/fal.run",
        "FAL_QUEUE_RUN_HOST": f"{host}/queue.fal.run",
        "SSL_CERT_FILE": str(ca),
    }
    return run_python(PRELUDE + textwrap.dedent(code), env=env, timeout=60)


def test_run_returns_images(tls_emulator: RunningServer, tls_files: dict[str, Path]) -> None:
    out = run_client(tls_emulator, tls_files["ca"], "out(fal_client.run(FLUX, arguments=ARGS))")
    image = out["images"][0]
    assert (image["width"], image["height"]) == (512, 512)
    assert image["url"].startswith(f"https://127.0.0.1:{tls_emulator.port}/v3.fal.media/files/")
    assert out["seed"] == 7 and out["prompt"] == "a lighthouse at dusk"


def test_subscribe_with_logs_and_queue_updates(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    code = """
    seen = []
    def update(status):
        logs = getattr(status, "logs", None) or []
        seen.append([type(status).__name__, [log["message"] for log in logs]])
    result = fal_client.subscribe(FLUX, arguments=ARGS, with_logs=True, on_queue_update=update)
    out({"result": result, "seen": seen})
    """
    out = run_client(tls_emulator, tls_files["ca"], code)
    kinds = [kind for kind, _ in out["seen"]]
    assert "InProgress" in kinds and kinds[-1] == "Completed"
    assert any(logs for kind, logs in out["seen"] if kind == "InProgress")
    assert out["result"]["images"][0]["content_type"] == "image/jpeg"


def test_submit_status_result_and_cancel(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    code = """
    handle = fal_client.submit(FLUX, arguments=ARGS)
    first = type(handle.status(with_logs=True)).__name__
    result = handle.get()
    final = handle.status(with_logs=True)
    again = fal_client.result(FLUX, handle.request_id)
    late = fal_client.submit(FLUX, arguments=ARGS)
    late.cancel()
    try:
        late.get()
        cancelled = None
    except fal_client.client.FalClientHTTPError as error:
        cancelled = error.status_code
    out({"first": first, "result": result, "again": again, "final_logs": len(final.logs),
         "metrics": final.metrics, "cancelled": cancelled})
    """
    out = run_client(tls_emulator, tls_files["ca"], code)
    assert out["first"] in ("Queued", "InProgress")
    assert out["result"] == out["again"]
    assert out["final_logs"] >= 1 and "inference_time" in out["metrics"]
    assert out["cancelled"] == 499  # fal's client_cancelled


def test_namespaced_endpoint_round_trips(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    code = """
    app = "workflows/fal-ai/image-pipeline/text-to-image"
    handle = fal_client.submit(app, arguments=ARGS)
    result = handle.get()
    out({"url": handle.response_url, "again": fal_client.result(app, handle.request_id),
         "result": result, "id": handle.request_id})
    """
    out = run_client(tls_emulator, tls_files["ca"], code)
    base = f"https://127.0.0.1:{tls_emulator.port}/queue.fal.run"
    assert out["url"] == f"{base}/workflows/fal-ai/image-pipeline/requests/{out['id']}"
    assert out["again"] == out["result"] and out["result"]["seed"] == 7


def test_stream_yields_events_until_the_result(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    code = 'out(list(fal_client.stream("fal-ai/flux/schnell", arguments=ARGS)))'
    events = run_client(tls_emulator, tls_files["ca"], code)
    assert len(events) >= 2 and events[0]["partial"] is True
    assert events[-1]["images"][0]["width"] == 512


def test_invalid_input_raises_the_clients_error(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    code = """
    try:
        fal_client.run(FLUX, arguments={"num_images": 0})
        out(None)
    except fal_client.client.FalClientHTTPError as error:
        out({"status": error.status_code, "detail": error.message})
    """
    out = run_client(tls_emulator, tls_files["ca"], code)
    assert out["status"] == 422
    fields = [entry["loc"] for entry in out["detail"]]
    assert fields == [["body", "prompt"], ["body", "num_images"]]
