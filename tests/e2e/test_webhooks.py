"""Webhooks through the gateway: with NXS_PUBLIC_URL set, a customer's webhookUrl (JS
client) is relayed by NXS — fal's callback verified, the payload re-signed with NXS's
Ed25519 key — and the customer's receiver verifies it against NXS's JWKS; a receiver
that was down gets the delivery after a gateway restart; forged callbacks are refused."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.e2e.conftest import GOOD_KEY, Customer, Deployment, Gateway, eventually
from tests.support.clients import JS_DIR, run_node
from tests.support.servers import free_port, start_nxs

ENDPOINT = "fal-ai/flux/schnell"

# The customer's receiver: verifies each delivery with cryptography's Ed25519 against the
# JWKS at argv[3] (fetched on first use), then appends what it saw to argv[2].
RECEIVER = textwrap.dedent(
    """
    import base64, hashlib, json, sys, urllib.request
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    port, out, jwks_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]

    def keys():
        document = json.load(urllib.request.urlopen(jwks_url))
        raw = [base64.urlsafe_b64decode(k["x"] + "==") for k in document["keys"]]
        return [Ed25519PublicKey.from_public_bytes(r) for r in raw]

    class Hook(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            h = lambda name: self.headers["x-fal-webhook-" + name]
            digest = hashlib.sha256(body).hexdigest()
            message = f"{h('request-id')}\\n{h('user-id')}\\n{h('timestamp')}\\n{digest}"
            verified = False
            for key in keys():
                try:
                    key.verify(bytes.fromhex(h("signature")), message.encode())
                    verified = True
                except Exception:
                    pass
            seen = {"request_id": h("request-id"), "verified": verified, "body": json.loads(body)}
            with open(out, "a") as file:
                file.write(json.dumps(seen) + "\\n")
            self.send_response(200); self.end_headers()

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", port), Hook).serve_forever()
    """
)


class Receiver:
    """The customer's webhook receiver, started and stopped at will on a fixed port."""

    def __init__(self, folder: Path, jwks_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.out = folder / f"received-{self.port}.jsonl"
        self._jwks_url = jwks_url
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-c", RECEIVER, str(self.port), str(self.out), self._jwks_url]
        self._process = subprocess.Popen(args)
        assert eventually(self._answers), "receiver did not start"

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def seen(self, request_id: str) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        lines = self.out.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["request_id"] == request_id]


class RelaySite:
    """A deployment whose gateway relays webhooks (NXS_PUBLIC_URL is its own address)."""

    def __init__(self, deployment: Deployment, port: int) -> None:
        self.deployment, self.port = deployment, port
        self.url = f"http://127.0.0.1:{port}"
        self.gateway: Gateway | None = None

    def start(self) -> Gateway:
        args = ["serve", "--port", str(self.port)]
        log = self.deployment.folder / f"relay-gateway-{time.monotonic_ns()}.log"
        server = start_nxs(args, port=self.port, log_path=log, env=self.deployment.env)
        self.gateway = Gateway(server, self.deployment, httpx.Client(timeout=30))
        return self.gateway

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.client.close()
            self.gateway.server.stop()
            self.gateway = None

    def deliveries(self, request_id: str) -> list[dict[str, Any]]:
        query = "SELECT state, attempts FROM relay_deliveries WHERE request_id = ?"
        return self.deployment.rows(query, request_id)


@pytest.fixture(scope="module")
def site(make_deployment: Callable[[], Deployment]) -> Iterator[RelaySite]:
    deployment = make_deployment()
    port = free_port()
    deployment.env |= {
        "NXS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "NXS_WEBHOOK_ALLOW_PRIVATE": "true",
        "NXS_WEBHOOK_RETRY_DELAYS": "0.5,0.5,0.5,1,1,1,2,2,2",
    }
    deployment.add_upstream("main", GOOD_KEY)
    relay = RelaySite(deployment, port)
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture(scope="module")
def carol(site: RelaySite) -> Customer:
    assert site.gateway is not None
    return site.gateway.customer("carol")


def submit_js(site: RelaySite, key: str, mode: str, webhook_url: str) -> str:
    script = JS_DIR / "e2e" / "webhook-gateway.mjs"
    out = run_node(script, site.url, key, mode, ENDPOINT, webhook_url, timeout=60)
    return str(out["request_id"])


@pytest.mark.parametrize("mode", ["middleware", "proxyUrl"])
def test_webhook_relayed_and_verified_against_nxs_jwks(
    site: RelaySite, carol: Customer, tmp_path: Path, mode: str
) -> None:
    receiver = Receiver(tmp_path, f"{site.url}/.well-known/jwks.json")
    receiver.start()
    try:
        request_id = submit_js(site, carol.key, mode, receiver.url)
        assert eventually(lambda: bool(receiver.seen(request_id)), seconds=20)
    finally:
        receiver.stop()
    [seen] = receiver.seen(request_id)
    assert seen["verified"] is True  # NXS's signature, checked against NXS's JWKS
    assert seen["body"]["request_id"] == request_id
    assert seen["body"]["status"] == "OK"
    assert len(seen["body"]["payload"]["images"]) == 1


def test_receiver_down_gets_delivery_after_gateway_restart(
    site: RelaySite, carol: Customer, tmp_path: Path
) -> None:
    receiver = Receiver(tmp_path, f"{site.url}/.well-known/jwks.json")
    request_id = submit_js(site, carol.key, "proxyUrl", receiver.url)  # nobody listening
    assert eventually(lambda: _attempted(site, request_id), seconds=20)
    site.stop()  # the gateway goes away with the delivery still pending
    receiver.start()
    try:
        site.start()
        assert eventually(lambda: bool(receiver.seen(request_id)), seconds=20)
    finally:
        receiver.stop()
    assert receiver.seen(request_id)[0]["verified"] is True
    assert site.deliveries(request_id)[0]["state"] == "delivered"


def _attempted(site: RelaySite, request_id: str) -> bool:
    rows = site.deliveries(request_id)
    return bool(rows) and rows[0]["state"] == "pending" and rows[0]["attempts"] >= 1


def _callback_id(site: RelaySite, request_id: str) -> str:
    query = "SELECT id FROM relay_callbacks WHERE request_id = ?"
    [row] = site.deployment.rows(query, request_id)
    return str(row["id"])


def _forged_headers(request_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{request_id}\nacct-main\n{timestamp}\n{digest}".encode()
    signature = Ed25519PrivateKey.generate().sign(message).hex()  # not fal's key
    return {
        "content-type": "application/json",
        "x-fal-webhook-request-id": request_id,
        "x-fal-webhook-user-id": "acct-main",
        "x-fal-webhook-timestamp": str(timestamp),
        "x-fal-webhook-signature": signature,
    }


def test_forged_and_stale_callbacks_refused(
    site: RelaySite, carol: Customer, tmp_path: Path
) -> None:
    assert site.gateway is not None
    receiver = Receiver(tmp_path, f"{site.url}/.well-known/jwks.json")
    response = site.gateway.request(
        "POST", f"/queue/{ENDPOINT}?fal_webhook={receiver.url}", carol.key, json={"prompt": "x"}
    )
    request_id = response.json()["request_id"]
    callback = f"/webhooks/fal/{_callback_id(site, request_id)}"
    body = json.dumps({"request_id": request_id, "status": "OK", "payload": {}}).encode()
    forged = site.gateway.request(
        "POST", callback, content=body, headers=_forged_headers(request_id, body, int(time.time()))
    )
    assert forged.status_code == 401
    assert forged.json()["error_type"] == "invalid_webhook_signature"
    stale = site.gateway.request(
        "POST", callback, content=body, headers=_forged_headers(request_id, body, 1_000_000)
    )
    assert stale.status_code == 400 and stale.json()["error_type"] == "stale_webhook"
    unsigned = site.gateway.request("POST", callback, content=body)
    assert unsigned.status_code == 400 and "X-Fal-Webhook" in unsigned.json()["detail"]
    for answer in (forged, stale, unsigned):
        assert "secret" not in answer.text and "acct-main:" not in answer.text


def test_unknown_callback_id_is_404(site: RelaySite) -> None:
    assert site.gateway is not None
    response = site.gateway.request("POST", "/webhooks/fal/cb_nope", content=b"{}")
    assert response.status_code == 404
    assert response.json()["detail"] == "Webhook callback not found"


def test_private_webhook_target_refused_unless_allowed(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.env["NXS_PUBLIC_URL"] = "https://nxs.example"
    deployment.add_upstream("main", GOOD_KEY)
    gateway = fresh_gateway(deployment)
    customer = gateway.customer("dave")
    response = gateway.request(
        "POST",
        f"/queue/{ENDPOINT}?fal_webhook=http://127.0.0.1:9/hook",
        customer.key,
        json={"prompt": "x"},
    )
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_webhook_url"
    assert "NXS_WEBHOOK_ALLOW_PRIVATE" in response.json()["detail"]
