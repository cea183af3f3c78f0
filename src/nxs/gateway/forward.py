"""Calls to fal through one pooled aiohttp session, and their answers streamed back.

`failover` tries pool keys until one gives an answer worth passing on (only before any
byte reached the client); `scheduled` does the same for runs, each attempt on a key with a
free slot (`nxs.gateway.scheduler`); `bound` uses the one key a queued request belongs to;
`relay` streams the upstream answer with `more_body=True` chunks, unbuffered. When no key
gave an answer: 502 if some key really failed, 429 if every usable key was busy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from functools import partial
from typing import Final

import aiohttp
from yarl import URL

from nxs.config import Settings
from nxs.errors import NoUpstreamKeys, UpstreamBrokeOff, UpstreamBusy, UpstreamFailed
from nxs.gateway.exchange import Exchange, Headers
from nxs.gateway.metrics import Metrics
from nxs.gateway.pool import BUSY, OK, KeyPool, PoolKey
from nxs.gateway.queue import EventRewriter
from nxs.gateway.scheduler import RunQueue

DROPPED: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"set-cookie",
        b"server",
        b"date",
    }
)
SMALL_BODY: Final = 256 * 1024  # answers up to this size are sent in one ASGI message
UPSTREAM_ERRORS: Final = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
LOG = logging.getLogger(__name__)
BOUND_READ_TRIES: Final = 16  # a status or result read fal's front failed is asked again
# (16: a front failing half its answers, as the emulator's flaky keys do, still fails a
# read once in 65,536; at 8 a client polling a queued request saw it every few hundred)


def _front_failure(response: aiohttp.ClientResponse) -> bool:
    """A 5xx from fal's front (no request id on it), not the request's own error."""
    return response.status >= 500 and "x-fal-request-id" not in response.headers


def open_session(settings: Settings) -> aiohttp.ClientSession:
    """The one upstream session: keep-alive pool, no cookies, bytes passed as they come."""
    verify: ssl.SSLContext | bool = True  # the system's CAs
    if settings.upstream_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.upstream_ca_file))
    connector = aiohttp.TCPConnector(
        limit=0, ttl_dns_cache=300, enable_cleanup_closed=True, ssl=verify
    )
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=10.0, sock_read=settings.upstream_timeout_seconds
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding", "User-Agent"),
    )


def response_headers(response: aiohttp.ClientResponse, keep_length: bool = True) -> Headers:
    """Upstream headers minus hop-by-hop ones, cookies, and the length if it will change."""
    drop = DROPPED if keep_length else DROPPED | {b"content-length"}
    return [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in drop]


class Forwarder:
    """Sends calls upstream with pool keys and relays the answers to the client."""

    def __init__(
        self, session: aiohttp.ClientSession, pool: KeyPool, metrics: Metrics, runs: RunQueue
    ) -> None:
        self._session, self._pool, self._metrics, self.runs = session, pool, metrics, runs

    async def _send(
        self, ex: Exchange, entry: PoolKey, method: str, url: URL, body: bytes
    ) -> aiohttp.ClientResponse | None:
        headers = [*ex.forward, ("authorization", entry.authorization)]
        started = time.perf_counter()
        try:
            response = await self._session.request(
                method, url, headers=headers, data=body or None, allow_redirects=False
            )
        except UPSTREAM_ERRORS:
            self._pool.failed(entry)
            self._metrics.observe_upstream(entry.name, "error", time.perf_counter() - started)
            return None
        elapsed = time.perf_counter() - started
        self._metrics.observe_upstream(entry.name, str(response.status), elapsed)
        return response

    async def failover(
        self, ex: Exchange, method: str, url: URL, body: bytes
    ) -> tuple[PoolKey, aiohttp.ClientResponse]:
        """The first pool key's answer worth passing on; the key stays leased (see `done`)."""
        tried: set[str] = set()
        busy = failed = False
        while (entry := self._choose(tried)) is not None:
            tried.add(entry.key.id)
            verdict, response = await self._attempt(ex, entry, method, url, body, run=False)
            if response is not None:
                return entry, response
            busy = busy or verdict == BUSY
            failed = failed or (verdict != BUSY and entry.state == "active")  # 5xx, no answer
        if failed or (tried and not busy):  # tried keys failed, or were found invalid/locked
            raise UpstreamFailed()
        raise UpstreamBusy(self._pool.retry_after())  # busy, or every active key cooling

    async def scheduled(
        self, ex: Exchange, customer: str, priority: int, url: URL, body: bytes, wait: float
    ) -> tuple[PoolKey, aiohttp.ClientResponse]:
        """A run's answer from a key with a free slot, waiting for one up to `wait` seconds;
        the slot stays held (see `ran`). A key that failed is not tried again; a busy one
        only learned its limit."""
        deadline = time.monotonic() + wait
        tried: set[str] = set()
        while True:
            gone = partial(_disconnected, ex)  # watched only while the run waits
            entry = await self.runs.take(customer, priority, tried, deadline, gone)
            try:
                verdict, response = await self._attempt(ex, entry, ex.method, url, body, True)
            except BaseException:
                self.runs.give_back(entry)
                raise
            if response is not None:
                return entry, response
            self.runs.give_back(entry)
            if verdict != BUSY:
                tried.add(entry.key.id)

    async def _attempt(
        self, ex: Exchange, entry: PoolKey, method: str, url: URL, body: bytes, run: bool
    ) -> tuple[str, aiohttp.ClientResponse | None]:
        """One key's verdict, and its answer if worth passing on (the key left with the call
        counted in flight), else None (answer released, count taken back)."""
        entry.in_flight += 1
        response = None
        verdict = "retry"
        try:
            response = await self._send(ex, entry, method, url, body)
            if response is not None:
                verdict = await self._judge(entry, response, run)
        finally:
            if verdict != OK:
                entry.in_flight -= 1
                if response is not None:
                    response.release()
        return verdict, response if verdict == OK else None

    def _choose(self, tried: set[str]) -> PoolKey | None:
        try:
            return self._pool.choose(tried)
        except NoUpstreamKeys:
            if tried:  # the keys tried have just been taken out of the pool
                return None
            raise

    async def bound(
        self, ex: Exchange, entry: PoolKey, method: str, url: URL, body: bytes
    ) -> aiohttp.ClientResponse:
        """The answer of the one key a queued request belongs to (no failover). A read
        (status, result) is asked again when fal's front answered 5xx or nothing: it is
        idempotent, and the request's key is the only one that may ask."""
        entry.in_flight += 1
        response = None
        for _ in range(BOUND_READ_TRIES if method == "GET" else 1):
            if response is not None:
                response.release()
            response = await self._send(ex, entry, method, url, body)
            if response is not None and not _front_failure(response):
                break
        if response is None:
            entry.in_flight -= 1
            raise UpstreamFailed()
        try:
            await self._judge(entry, response, run=False)
        except BaseException:
            self.done(entry, response)
            raise
        return response

    async def _judge(self, entry: PoolKey, response: aiohttp.ClientResponse, run: bool) -> str:
        status = response.status
        if status < 400 or (status >= 500 and "x-fal-request-id" in response.headers):
            if run:
                entry.strikes = 0
            return OK  # a 5xx carrying fal's request id is the model's own error: no retry
        body = await response.read() if status == 403 else b""
        return self._pool.judge(entry, status, body, response.headers.get("Retry-After"), run)

    @staticmethod
    def done(entry: PoolKey, response: aiohttp.ClientResponse) -> None:
        entry.in_flight -= 1
        response.release()

    def ran(self, entry: PoolKey, response: aiohttp.ClientResponse) -> None:
        """A scheduled run's answer was relayed: its slot goes to the next run."""
        self.done(entry, response)
        self.runs.give_back(entry)

    @staticmethod
    async def relay(
        ex: Exchange, response: aiohttp.ClientResponse, events: EventRewriter | None = None
    ) -> None:
        """Stream the upstream answer to the client as it arrives."""
        length = response.content_length
        if events is None and length is not None and length <= SMALL_BODY:
            body = await response.read()
            await ex.start(response.status, response_headers(response))
            await ex.send({"type": "http.response.body", "body": body})
            return
        await ex.start(response.status, response_headers(response, keep_length=events is None))
        watcher = asyncio.ensure_future(_close_on_disconnect(ex, response))
        try:
            await _stream(ex, response, events)
        except UPSTREAM_ERRORS as exc:
            if not watcher.done():
                await _broke_off(ex, response)
                raise UpstreamBrokeOff() from None
            # The client left. aiohttp keeps this error on the closed response: without its
            # traceback it no longer pins the relay's frames (and their last chunk).
            exc.__traceback__ = None
        finally:
            watcher.cancel()


async def _stream(
    ex: Exchange, response: aiohttp.ClientResponse, events: EventRewriter | None
) -> None:
    send = ex.send
    async for chunk in response.content.iter_any():
        out = events.feed(chunk) if events else chunk
        if out:
            await send({"type": "http.response.body", "body": out, "more_body": True})
    tail = events.flush() if events else b""
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _broke_off(ex: Exchange, response: aiohttp.ClientResponse) -> None:
    """fal's connection died mid-answer: a stream's client gets an error event before the
    body is cut short (the answer's status is logged as 502)."""
    LOG.warning("upstream connection lost mid-answer (%s)", response.url.path)
    ex.status = UpstreamBrokeOff.status
    if response.content_type == "text/event-stream":
        error = UpstreamBrokeOff()
        data = json.dumps({"detail": error.detail, "error_type": error.error_type})
        event = f"event: error\ndata: {data}\n\n".encode()
        await ex.send({"type": "http.response.body", "body": event, "more_body": True})


async def _disconnected(ex: Exchange) -> None:
    """Returns once the client has gone (its body was read: nothing else arrives)."""
    while (await ex.receive())["type"] != "http.disconnect":
        pass


async def _close_on_disconnect(ex: Exchange, response: aiohttp.ClientResponse) -> None:
    """Stop reading a long upstream answer once its client has gone (body already read)."""
    while (await ex.receive())["type"] != "http.disconnect":
        pass
    if not response.content.is_eof():  # else the answer is complete: nothing to stop
        ex.status = 499
        response.close()
