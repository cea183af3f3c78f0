"""Webhooks from the emulator: delivered when a queued request ends, signed as fal signs
them (verified here with Ed25519 against the JWKS the emulator publishes), retried when
the receiver fails. The receiver is a real aiohttp server on a free loopback port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tests.support.clients import JS_DIR, run_node, run_python
from tests.support.servers import RunningServer, free_port


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """An aiohttp server in a background thread: records POSTs, fails the first N."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.deliveries: list[Delivery] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))

    async def _receive(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(dict(request.headers), await request.read()))
        if len(self.deliveries) <= self.failures:
            return web.Response(status=500, text="receiver down")
        return web.Response(status=200, text="ok")

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        self._loop.close()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.deliveries) >= count, f"{len(self.deliveries)} deliveries, wanted {count}"
        return list(self.deliveries)


def public_keys(
    emulator_url: str, host: str = "rest.fal.ai", context: ssl.SSLContext | None = None
) -> list[Ed25519PublicKey]:
    """The keys of the JWKS the emulator publishes, as a receiver would load them."""
    url = f"{emulator_url}/{host}/.well-known/jwks.json"
    with urllib.request.urlopen(url, context=context) as response:
        keys = json.load(response)["keys"]
    assert all(key["kty"] == "OKP" and key["crv"] == "Ed25519" for key in keys)
    raw = [base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4)) for key in keys]
    return [Ed25519PublicKey.from_public_bytes(blob) for blob in raw]


def verifies(delivery: Delivery, keys: list[Ed25519PublicKey]) -> bool:
    """fal's check: Ed25519 over request id, user id, timestamp and the body's SHA-256."""
    headers = {name.lower(): value for name, value in delivery.headers.items()}
    timestamp = int(headers["x-fal-webhook-timestamp"])
    if abs(time.time() - timestamp) > 300:
        return False
    message = "\n".join(
        [
            headers["x-fal-webhook-request-id"],
            headers["x-fal-webhook-user-id"],
            str(timestamp),
            hashlib.sha256(delivery.body).hexdigest(),
        ]
    ).encode()
    for key in keys:
        try:
            key.verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message)
            return True
        except Exception:  # cryptography's InvalidSignature, or a malformed signature
            continue
    return False


def submit(
    emulator: RunningServer, endpoint: str, body: dict[str, Any], hook: str, key: str
) -> Any:
    query = urllib.parse.urlencode({"fal_webhook": hook})
    request = urllib.request.Request(
        f"{emulator.url}/queue.fal.run/{endpoint}?{query}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Key {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


SUBMIT_WITH_FAL_CLIENT = """
import json, sys
import fal_client
handle = fal_client.submit(
    "fal-ai/flux/schnell", arguments={"prompt": "a lighthouse", "seed": 1}, webhook_url=sys.argv[1]
)
print(json.dumps({"request_id": handle.request_id}))
"""


def test_webhook_from_fal_client_submit_verifies_against_published_jwks(
    tls_emulator: RunningServer, tls_files: dict[str, Path]
) -> None:
    env = {
        "FAL_KEY": "webhook-alice:secret",
        "FAL_RUN_HOST": f"127.0.0.1:{tls_emulator.port}/fal.run",
        "FAL_QUEUE_RUN_HOST": f"127.0.0.1:{tls_emulator.port}/queue.fal.run",
        "SSL_CERT_FILE": str(tls_files["ca"]),
    }
    with WebhookReceiver() as receiver:
        out = run_python(SUBMIT_WITH_FAL_CLIENT, receiver.url, env=env, timeout=60)
        request_id = out["request_id"]
        (delivery,) = receiver.wait_for(1)
    body = delivery.json()
    assert body["request_id"] == request_id and body["status"] == "OK"
    assert body["payload"]["images"][0]["url"].startswith(tls_emulator.url)
    assert delivery.headers["X-Fal-Webhook-Request-Id"] == request_id
    context = ssl.create_default_context(cafile=str(tls_files["ca"]))
    assert verifies(delivery, public_keys(tls_emulator.url, context=context))


def test_webhook_from_js_queue_submit_carries_the_result(emulator: RunningServer) -> None:
    script = JS_DIR / "conformance" / "webhook-submit.mjs"
    with WebhookReceiver() as receiver:
        args = [emulator.url, "hook-erin:secret", "fal-ai/flux/dev", receiver.url, "a kite"]
        request_id = run_node(script, *args, timeout=60)["request_id"]
        (delivery,) = receiver.wait_for(1)
    body = delivery.json()
    assert body["request_id"] == request_id and body["status"] == "OK"
    assert body["payload"]["prompt"] == "a kite"
    assert delivery.headers["X-Fal-Webhook-User-Id"] == "hook-erin"
    assert verifies(delivery, public_keys(emulator.url))


def test_webhook_is_retried_after_the_receiver_answers_500(emulator: RunningServer) -> None:
    with WebhookReceiver(failures=1) as receiver:
        submitted = submit(
            emulator, "fal-ai/flux/schnell", {"prompt": "a fox"}, receiver.url, "hook-bob"
        )
        first, second = receiver.wait_for(2)
    assert first.json() == second.json()
    assert second.json()["request_id"] == submitted["request_id"]
    assert verifies(second, public_keys(emulator.url))


def test_jwks_is_published_on_both_rest_hosts(emulator: RunningServer) -> None:
    assert public_keys(emulator.url) and public_keys(emulator.url, "rest.alpha.fal.ai")


def test_a_tampered_body_fails_verification(emulator: RunningServer) -> None:
    with WebhookReceiver() as receiver:
        submit(emulator, "fal-ai/flux/schnell", {"prompt": "a heron"}, receiver.url, "hook-carol")
        (delivery,) = receiver.wait_for(1)
    tampered = Delivery(delivery.headers, delivery.body.replace(b"heron", b"crane"))
    assert verifies(delivery, public_keys(emulator.url))
    assert not verifies(tampered, public_keys(emulator.url))


def test_failed_request_webhook_reports_error(emulator: RunningServer) -> None:
    with WebhookReceiver() as receiver:
        body = {"prompt": "[fail] a broken kettle"}
        submit(emulator, "fal-ai/flux/schnell", body, receiver.url, "hook-dave")
        (delivery,) = receiver.wait_for(1)
    body = delivery.json()
    assert body["status"] == "ERROR" and body["error"] == "Invalid status code: 500"
    assert body["payload"]["error_type"] == "runner_server_error" and body["payload"]["detail"]
    assert verifies(delivery, public_keys(emulator.url))
