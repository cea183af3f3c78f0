"""A tiny local stand-in for Stripe's API (an external service, unreachable here): it
answers `POST /v1/checkout/sessions` like Stripe (an id and a hosted-page URL), keeps what
it was asked, serves that page, and signs events the way Stripe signs webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

SECRET_KEY = "sk_test_nxs_fake"
WEBHOOK_SECRET = "whsec_nxs_fake_secret"


@dataclass
class FakeStripe:
    server: ThreadingHTTPServer
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)
    authorizations: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def last_session(self) -> tuple[str, dict[str, str]]:
        session_id = list(self.sessions)[-1]
        return session_id, self.sessions[session_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[bytes, str]:
    """The payload and `Stripe-Signature` header Stripe would send for `event`."""
    payload = json.dumps(event).encode()
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return payload, f"t={stamp},v1={digest.hexdigest()}"


def event(event_id: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}


def start_fake_stripe() -> FakeStripe:
    ids = itertools.count(1)
    fake: FakeStripe

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            fake.authorizations.append(self.headers.get("authorization", ""))
            if self.path != "/v1/checkout/sessions":
                return self._json(404, {"error": {"type": "invalid_request_error"}})
            session_id = f"cs_test_{next(ids)}"
            fake.sessions[session_id] = dict(parse_qsl(body))
            self._json(
                200,
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "url": f"{fake.url}/c/pay/{session_id}",
                },
            )

        def do_GET(self) -> None:
            page = b"<!doctype html><title>Stripe Checkout (test)</title><h1>Stripe Checkout</h1>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def _json(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeStripe(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake
