"""Queued requests: who submitted each one, and the URLs NXS hands out for it.

A submit is recorded (request id → customer, key, upstream key, endpoint) before the
client sees its answer; status/result/cancel find it again, and another customer's id is
answered exactly like an unknown one. `response_url`, `status_url` and `cancel_url` in
submit and status bodies (and status-stream events) point at the gateway's public base.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final, Protocol

from nxs.errors import NotFound
from nxs.gateway.routes import app_id
from nxs.store.models import QueuedRequest
from nxs.store.offload import Offload

RECENT_LIMIT: Final = 10_000
URL_FIELDS: Final = ("response_url", "status_url", "cancel_url")


class QueueStore(Protocol):
    def record_queued(self, queued: QueuedRequest) -> None: ...
    def find_queued(self, request_id: str) -> QueuedRequest | None: ...


class RequestNotFound(NotFound):
    detail = "Request not found"


class QueueBook:
    """The request-id mapping, with this process's recent submits kept in memory; the
    store is reached through `offload` (off the event loop on a network database)."""

    def __init__(self, store: QueueStore, offload: Offload) -> None:
        self._store = store
        self._offload = offload
        self._recent: dict[str, QueuedRequest] = {}

    async def record(
        self, request_id: str, customer_id: str, api_key_id: str, upstream_id: str, endpoint: str
    ) -> QueuedRequest:
        queued = QueuedRequest(
            request_id, customer_id, api_key_id, upstream_id, endpoint, time.time()
        )
        await self._offload.call(self._store.record_queued, queued)
        if len(self._recent) >= RECENT_LIMIT:
            del self._recent[next(iter(self._recent))]
        self._recent[request_id] = queued
        return queued

    async def find(self, request_id: str, customer_id: str) -> QueuedRequest:
        """The customer's own request; 404 for unknown ids and for other customers' ids."""
        queued = self._recent.get(request_id)
        if queued is None:
            queued = await self._offload.call(self._store.find_queued, request_id)
        if queued is None or queued.customer_id != customer_id:
            raise RequestNotFound()
        return queued


def queue_urls(base: str, endpoint: str, request_id: str) -> dict[str, str]:
    """The gateway's URLs for a queued request."""
    response_url = f"{base}/queue/{app_id(endpoint)}/requests/{request_id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }


def rewrite(data: Any, urls: dict[str, str]) -> bool:
    """Point the URL fields of a queue body at the gateway; True if anything changed."""
    if not isinstance(data, dict):
        return False
    changed = False
    for name in URL_FIELDS:
        if name in data:
            data[name] = urls[name]
            changed = True
    return changed


def rewrite_body(body: bytes, urls: dict[str, str]) -> bytes:
    """A JSON body with its queue URLs rewritten; other bodies unchanged."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(data, separators=(",", ":")).encode() if rewrite(data, urls) else body


class EventRewriter:
    """Rewrites the queue URLs in a status stream's `data:` lines, chunk by chunk."""

    def __init__(self, urls: dict[str, str]) -> None:
        self._urls = urls
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        cut = data.rfind(b"\n") + 1
        self._pending = data[cut:]
        if not cut:
            return b""
        lines = data[:cut].split(b"\n")
        return b"\n".join(self._line(line) for line in lines)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._line(rest)

    def _line(self, line: bytes) -> bytes:
        if not line.startswith(b"data:"):
            return line
        payload = line[5:].strip()
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            return line
        if not rewrite(data, self._urls):
            return line
        return b"data: " + json.dumps(data, separators=(",", ":")).encode()
