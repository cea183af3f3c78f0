"""One HTTP exchange on raw ASGI: the request's headers read once, its body read within the
size limit, and the helpers that answer (JSON, errors, and the public base URL).
"""

from __future__ import annotations

import json
from typing import Any, Final

from nxs.errors import NxsError, PayloadTooLarge, render

Headers = list[tuple[bytes, bytes]]
Scope = dict[str, Any]

# Request headers passed upstream besides x-fal-*; authorization is replaced.
PASSED: Final = frozenset({b"content-type", b"accept", b"user-agent"})
JSON_HEADERS: Final = ((b"content-type", b"application/json"),)


class ClientGone(NxsError):
    """The client disconnected before its request was read (nobody is left to answer)."""

    status, error_type, detail = 499, "client_disconnected", "Client disconnected"


# headers kept as they are, by the attribute that holds them
_TEXT_HEADERS: Final = {
    b"authorization": "authorization",
    b"host": "host",
    b"idempotency-key": "idempotency_key",
    b"x-forwarded-for": "forwarded_for",  # believed only from a trusted proxy (gateway/edge.py)
    b"origin": "origin",
    b"access-control-request-method": "cors_method",
    b"access-control-request-headers": "cors_request_headers",
}


class Exchange:
    """Request facts the gateway needs, gathered in one pass over the headers."""

    __slots__ = (
        "authorization",
        "client",
        "content_length",
        "cors_method",
        "cors_request_headers",
        "customer",
        "edge_headers",
        "forward",
        "forwarded_for",
        "forwarded_host",
        "forwarded_proto",
        "host",
        "idempotency_key",
        "method",
        "origin",
        "path",
        "query",
        "receive",
        "request_id",
        "route",
        "scope",
        "send",
        "started",
        "status",
        "target",
        "upstream",
    )

    def __init__(self, scope: Scope, receive: Any, send: Any, request_id: str) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.method: str = scope["method"]
        raw = scope.get("raw_path")
        self.path: str = raw.decode("latin-1").partition("?")[0] if raw else scope["path"]
        self.query: str = scope["query_string"].decode("latin-1")
        self.request_id = request_id
        self.status = 0
        self.route = "unknown"  # the route's name once known, for metrics and the log
        self.started = False
        self.authorization: str | None = None
        self.content_length: int | None = None
        self.target: str | None = None
        self.idempotency_key: str | None = None
        self.host = self.forwarded_host = self.forwarded_proto = self.forwarded_for = ""
        self.origin = self.cors_method = self.cors_request_headers = ""
        client = scope.get("client")
        self.client: str = client[0] if client else ""  # the peer; `Edge.admit` may refine
        self.edge_headers: Headers = []  # CORS headers every answer carries
        self.forward: list[tuple[str, str]] = []
        self.customer = self.upstream = ""  # for the access log: names, never keys
        self._read_headers(scope["headers"])

    def _read_headers(self, headers: Headers) -> None:
        forward = self.forward
        for name, value in headers:
            if name.startswith(b"x-fal-"):
                if name == b"x-fal-target-url":
                    self.target = value.decode("latin-1")
                else:
                    forward.append((name.decode("latin-1"), value.decode("latin-1")))
            elif name in PASSED:
                forward.append((name.decode("latin-1"), value.decode("latin-1")))
            elif name in _TEXT_HEADERS:
                setattr(self, _TEXT_HEADERS[name], value.decode("latin-1"))
            elif name == b"content-length":
                self.content_length = _length(value)
            elif name == b"x-forwarded-host":
                self.forwarded_host = value.decode("latin-1").split(",")[0].strip()
            elif name == b"x-forwarded-proto":
                self.forwarded_proto = value.decode("latin-1").split(",")[0].strip()

    def public_base(self, configured: str | None) -> str:
        """Base of the URLs handed out: NXS_PUBLIC_URL, else X-Forwarded-* (kept only from
        a trusted proxy, see `Edge.admit`), else Host."""
        if configured:
            return configured.rstrip("/")
        proto = self.forwarded_proto or self.scope.get("scheme", "http")
        host = self.forwarded_host or self.host
        if not host:
            server = self.scope.get("server") or ("localhost", None)
            host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
        return f"{proto}://{host}"

    async def read_body(self, limit: int) -> bytes:
        """The whole request body; 413 as soon as it is known to exceed `limit`."""
        if self.content_length is not None and self.content_length > limit:
            raise PayloadTooLarge()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge()
            if not message.get("more_body", False):
                if not chunks:
                    return chunk
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)

    async def start(self, status: int, headers: Headers) -> None:
        self.status, self.started = status, True
        headers.append((b"x-nxs-request-id", self.request_id.encode()))
        if self.edge_headers:
            headers.extend(self.edge_headers)
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def respond(self, status: int, body: bytes, headers: Headers | None = None) -> None:
        """A complete response in two ASGI messages."""
        headers = list(headers or JSON_HEADERS)
        headers.append((b"content-length", str(len(body)).encode()))
        await self.start(status, headers)
        await self.send({"type": "http.response.body", "body": body})

    async def respond_json(self, status: int, data: Any) -> None:
        await self.respond(status, json.dumps(data, separators=(",", ":")).encode())

    async def respond_error(self, error: NxsError) -> None:
        headers = [*JSON_HEADERS, (b"x-fal-error-type", error.error_type.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        await self.respond(error.status, render(error), headers)


def _length(value: bytes) -> int | None:
    """The declared length; None when unparsable (the server rejects such requests)."""
    try:
        return int(value)
    except ValueError:
        return None
