"""What each route does once the caller is known: run, submit, the request operations,
REST calls through the SDK proxy, and the health, readiness and metrics answers.
"""

from __future__ import annotations

import json
from typing import Final

from aiohttp import ClientResponse
from yarl import URL

from nxs.errors import UpstreamFailed
from nxs.gateway import completions, routes
from nxs.gateway.exchange import Exchange
from nxs.gateway.forward import response_headers
from nxs.gateway.proxy import QUEUE_HOST, RUN_HOST
from nxs.gateway.queue import EventRewriter, queue_urls, rewrite_body
from nxs.gateway.routes import Route, app_id
from nxs.gateway.services import Services
from nxs.gateway.tickets import model_input
from nxs.store.models import KeyGrant

OP_SUFFIX: Final = {
    routes.RESULT: "",
    routes.STATUS: "/status",
    routes.STREAM: "/status/stream",
    routes.CANCEL: "/cancel",
}
URL_CACHE_LIMIT: Final = 4096
METRICS_HEADERS: Final = ((b"content-type", b"text/plain; version=0.0.4"),)


class Handlers:
    """The gateway's route handlers over the shared services."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self._limit = services.settings.max_body_bytes
        self._bases = {host: services.settings.upstream_base(host) for host in services.hosts}
        self._urls: dict[tuple[str, str, str], URL] = {}

    def url(self, host: str, path: str, query: str) -> URL:
        """The upstream URL (cached: most calls name the same few endpoints)."""
        cache_key = (host, path, query)
        url = self._urls.get(cache_key)
        if url is None:
            url = _url(self._bases[host], path, query)
            if len(self._urls) >= URL_CACHE_LIMIT:
                self._urls.clear()
            self._urls[cache_key] = url
        return url

    async def forward(self, ex: Exchange, route: Route, grant: KeyGrant, query: str) -> None:
        """Dispatch an authenticated call; `route.host` is set for proxied targets."""
        if route.kind in routes.REQUEST_OPS:
            await self.request_op(ex, route, grant, query)
        elif route.kind == routes.SUBMIT:
            await self.submit(ex, route, grant, query)
        elif route.kind == routes.REST and route.endpoint.rstrip("/") == "tokens":
            await self.s.realtime.issue_token(ex, grant, self._limit)  # NXS's own token
        else:
            await self.run(ex, route, grant, query)

    async def run(self, ex: Exchange, route: Route, grant: KeyGrant, query: str) -> None:
        """fal.run (or a rest.fal.ai call): any healthy key, failover before the answer."""
        body = await ex.read_body(self._limit)
        model = model_input(ex, body) if route.kind == routes.RUN else None  # 415/422 first
        ticket = await self.s.meter.admit(ex, grant, route, body, model)  # gateway/metering.py
        if await self.s.meter.replayed(ex, ticket):
            return
        url = self.url(route.host or RUN_HOST, route.endpoint, query)
        scheduled = route.kind == routes.RUN  # a model run takes one of fal's slots
        if scheduled:
            priority = ticket.plan.priority if ticket is not None else 1
            wait = self.s.settings.run_wait_seconds
            call = self.s.forwarder.scheduled(ex, grant.customer_id, priority, url, body, wait)
        else:
            call = self.s.forwarder.failover(ex, ex.method, url, body)
        entry, response = await self.s.meter.guard(ticket, call)
        ex.upstream = entry.name
        try:
            settled = self.s.meter.ran_response(ticket, response, entry.key.id)
            if settled is not None:  # billing: the answer waits for its ledger row
                await settled
            await self.s.forwarder.relay(ex, response)
        finally:
            if scheduled:
                self.s.forwarder.ran(entry, response)
            else:
                self.s.forwarder.done(entry, response)

    async def submit(self, ex: Exchange, route: Route, grant: KeyGrant, query: str) -> None:
        """Queue submit: recorded before answering, URLs pointed at the gateway."""
        body = await ex.read_body(self._limit)
        model = model_input(ex, body)
        callback = None
        if "fal_webhook=" in query:  # relayed when NXS_PUBLIC_URL is set (see webhooks)
            query, callback = await self.s.webhooks.register(grant.customer_id, query)  # 400
        ticket = await self.s.meter.admit(ex, grant, route, body, model)
        if await self.s.meter.replayed(ex, ticket):
            return
        url = self.url(QUEUE_HOST, route.endpoint, query) if callback is None else None
        url = url or _url(self._bases[QUEUE_HOST], route.endpoint, query)
        failover = self.s.forwarder.failover(ex, "POST", url, body)
        entry, response = await self.s.meter.guard(ticket, failover)
        ex.upstream = entry.name
        try:
            payload = await response.read()
            if response.status < 300 and callback is not None:
                await self.s.webhooks.attach(callback, payload)
            if response.status < 300:
                payload = await self._record(ex, route, grant, entry.key.id, payload)
            headers = response_headers(response, keep_length=False)
            await self.s.meter.submitted(ticket, response.status, headers, payload, entry.key.id)
            await ex.respond(response.status, payload, headers)
        finally:
            self.s.forwarder.done(entry, response)

    async def _record(
        self, ex: Exchange, route: Route, grant: KeyGrant, upstream_id: str, payload: bytes
    ) -> bytes:
        try:
            request_id = json.loads(payload)["request_id"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise UpstreamFailed("fal answered a submit without a request id") from exc
        await self.s.book.record(
            request_id, grant.customer_id, grant.key_id, upstream_id, route.endpoint
        )
        entry = self.s.pool.get(upstream_id)
        if entry is not None:
            self.s.outstanding.submitted(entry, request_id)
        base = ex.public_base(self.s.settings.public_url)
        return rewrite_body(payload, queue_urls(base, route.endpoint, request_id))

    async def request_op(self, ex: Exchange, route: Route, grant: KeyGrant, query: str) -> None:
        """Status, status stream, result, cancel: only the submitting key, never failover."""
        queued = await self.s.book.find(route.request_id, grant.customer_id)
        entry = self.s.pool.get(queued.upstream_key_id)
        if entry is None:
            raise UpstreamFailed("The upstream key of this request is no longer available")
        ex.upstream = entry.name
        await ex.read_body(self._limit)
        path = f"{app_id(queued.endpoint)}/requests/{queued.request_id}{OP_SUFFIX[route.kind]}"
        method = "PUT" if route.kind == routes.CANCEL else "GET"
        url = _url(self._bases[QUEUE_HOST], path, query)  # unique per request: not cached
        response = await self.s.forwarder.bound(ex, entry, method, url, b"")
        try:
            base = ex.public_base(self.s.settings.public_url)
            await completions.ended(self.s.meter, route.kind, queued.request_id, response)
            await self._answer(
                ex, route.kind, response, queue_urls(base, queued.endpoint, queued.request_id)
            )
            await completions.seen(self.s.meter, route.kind, queued.request_id, response)
            if await _ended(route.kind, response):
                self.s.outstanding.finished(queued.request_id, entry.key.id)
        finally:
            self.s.forwarder.done(entry, response)

    async def _answer(
        self, ex: Exchange, kind: str, response: ClientResponse, urls: dict[str, str]
    ) -> None:
        """Relay a request operation's answer, queue URLs pointed at the gateway."""
        if kind == routes.STATUS:
            payload = rewrite_body(await response.read(), urls)
            await ex.respond(response.status, payload, response_headers(response, False))
        elif kind == routes.STREAM:
            await self.s.forwarder.relay(ex, response, EventRewriter(urls))
        else:
            await self.s.forwarder.relay(ex, response)

    async def fal_webhook(self, ex: Exchange) -> None:
        await self.s.webhooks.callback(ex)

    async def jwks(self, ex: Exchange) -> None:
        await self.s.webhooks.jwks(ex)

    async def healthz(self, ex: Exchange) -> None:
        await ex.respond_json(200, {"status": "ok"})

    async def readyz(self, ex: Exchange) -> None:
        """Ready when the store answers and at least one upstream key is usable."""
        store_ok, usable = self.s.store_ok, self.s.pool.usable()
        ready = store_ok and usable > 0
        body = {"ready": ready, "store": store_ok, "usable_upstream_keys": usable}
        await ex.respond_json(200 if ready else 503, body)

    async def metrics(self, ex: Exchange) -> None:
        text = self.s.shared_metrics.render(self.s.pool)
        await ex.respond(200, text, list(METRICS_HEADERS))


async def _ended(kind: str, response: ClientResponse) -> bool:
    """Whether an answer says the request is over at fal: a result, or a COMPLETED status
    (read already: `_answer` rewrote it)."""
    if response.status >= 300:
        return False
    if kind == routes.RESULT:
        return True
    return kind == routes.STATUS and b'"COMPLETED"' in await response.read()


def _url(base: str, path: str, query: str) -> URL:
    text = f"{base}/{path}"
    return URL(f"{text}?{query}" if query else text, encoded=True)
