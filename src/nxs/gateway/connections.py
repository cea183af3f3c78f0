"""What a client connection may cost the gateway: uvicorn's httptools protocol with a
deadline on request headers and a cap on their size, which uvicorn lacks (its keep-alive
timer is not armed until a first response, and any byte disarms it), so a slow-loris
client trickling headers a byte at a time would hold its socket forever; and past
`NXS_MAX_CONNECTIONS`, fal's 503 shape instead of uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    """`header_seconds`: a request's headers must be in within this long of the connection
    opening or the previous response ending; `max_header_bytes`: their largest size."""

    header_seconds: float = 10.0
    max_header_bytes: int = 64 * 1024


def _refusal(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer in fal's error shape that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


TOO_SLOW = _refusal(408, "Request Timeout", "Request headers not received in time")
TOO_LARGE = _refusal(431, "Request Header Fields Too Large", "Request headers too large")
# uvicorn's own answer past `limit_concurrency` (NXS_MAX_CONNECTIONS) is text/plain
BUSY = _refusal(503, "Service Unavailable", "Too many connections to this gateway: retry shortly")


class GuardedHttpTools(HttpToolsProtocol):
    """httptools, with `ConnectionLimits` on every request's headers."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.header_deadline: asyncio.TimerHandle | None = None
        self.header_bytes = 0
        self.body_done = True  # the current request's body has been received whole

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        awaiting = self.header_deadline is not None
        super().data_received(data)  # on_headers_complete ends the wait when they are in
        if awaiting and self.header_deadline is not None:
            self.header_bytes += len(data)
            if self.header_bytes > self.limits.max_header_bytes:
                self._refuse(TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._headers_done()
        self.body_done = False
        if self._over_capacity():  # as uvicorn decides it, answered in fal's shape
            self._refuse(BUSY)
            return
        super().on_headers_complete()

    def _over_capacity(self) -> bool:
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def on_message_complete(self) -> None:
        self.body_done = True
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            self._next_request()  # answered before its body was read (a 401, a 413)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.body_done:  # else the rest of the body is still to come, and is no header
            self._next_request()

    def _next_request(self) -> None:
        if not self.transport.is_closing() and not self.pipeline:
            self._await_headers()  # the next request on this connection, if any

    def _await_headers(self) -> None:
        self._headers_done()
        self.header_bytes = 0
        self.header_deadline = self.loop.call_later(self.limits.header_seconds, self._too_slow)

    def _headers_done(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _too_slow(self) -> None:
        """Deadline passed: a 408 to a client that sent part of a request, else a close."""
        self.header_deadline = None
        if self.header_bytes:
            self._refuse(TOO_SLOW)
        elif not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        self._headers_done()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
