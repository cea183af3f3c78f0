"""The outbox and its worker against real receivers: a receiver that always fails gets
exactly the configured number of tries, each one recorded; a slow receiver never sees
more concurrent deliveries than the worker's bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from tests.support.servers import free_port

from nxs.relay import Relay, RelayConfig, apply_relay_schema
from nxs.relay.callbacks import Callbacks
from nxs.relay.outbox import Delivery
from nxs.relay.worker import WorkerConfig
from nxs.store.crypto import SecretBox
from nxs.store.database import Database

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def receiver(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def relay_with(
    database: Database, worker: WorkerConfig
) -> AsyncIterator[tuple[Relay, Callbacks]]:
    apply_relay_schema(database)
    config = RelayConfig("http://127.0.0.1:9", "http://127.0.0.1:9/jwks", True, worker=worker)
    relay = Relay(database, SecretBox("relay-test-secret", "a test secret"), config)
    await relay.start()
    try:
        yield relay, Callbacks(database, "http://127.0.0.1:9", allow_private=True)
    finally:
        await relay.stop()


def enqueue(relay: Relay, callbacks: Callbacks, target: str, request_id: str) -> None:
    callback = callbacks.find(relay.register("cus_a", target).callback_id)
    relay.outbox.enqueue(callback, request_id, b'{"request_id":"%s"}' % request_id.encode())


async def settled(relay: Relay, count: int) -> list[Delivery]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = [d for d in relay.outbox.recent() if d.state != "pending"]
        if len(done) >= count:
            return done
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} deliveries finished")


def test_failing_receiver_gets_ten_tries_then_the_delivery_is_failed(db: Database) -> None:
    posts: list[str] = []

    async def always_500(request: web.Request) -> web.Response:
        posts.append(request.headers["X-Fal-Webhook-Request-Id"])
        return web.Response(status=500)

    async def scenario() -> tuple[Delivery, list[tuple[int, int | None, str | None]]]:
        worker = WorkerConfig(retry_delays=(0.02,) * 9, allow_private=True, idle_poll_seconds=0.1)
        async with receiver(always_500) as url, relay_with(db, worker) as (relay, cbs):
            enqueue(relay, cbs, url, "req-1")
            (delivery,) = await settled(relay, 1)
            attempts = relay.outbox.attempts(delivery.id)
        return delivery, [(a.attempt, a.status, a.error) for a in attempts]

    delivery, attempts = asyncio.run(scenario())
    assert delivery.state == "failed" and delivery.attempts == 10
    assert attempts == [(n, 500, "HTTP 500") for n in range(1, 11)]
    assert posts == ["req-1"] * 10


def test_slow_receiver_sees_at_most_max_concurrency_deliveries(db: Database) -> None:
    active: list[int] = [0, 0]  # now, highest

    async def slow(request: web.Request) -> web.Response:
        active[0] += 1
        active[1] = max(active)
        await asyncio.sleep(0.2)
        active[0] -= 1
        return web.Response(status=204)

    async def scenario() -> list[Delivery]:
        worker = WorkerConfig(max_concurrency=2, allow_private=True, idle_poll_seconds=0.1)
        async with receiver(slow) as url, relay_with(db, worker) as (relay, cbs):
            for n in range(6):
                enqueue(relay, cbs, url, f"req-{n}")
            return await settled(relay, 6)

    deliveries = asyncio.run(scenario())
    assert {d.state for d in deliveries} == {"delivered"} and active[1] == 2
