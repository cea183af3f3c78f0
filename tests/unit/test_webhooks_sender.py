"""The emulator's WebhookSender on its own: what it signs, how it retries, when it stops.
A real aiohttp receiver on a loopback port answers its POSTs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from tests.support.servers import free_port

from nxs.emulator.webhooks import Delivery, WebhookSender, jwks

Received = list[tuple[dict[str, str], bytes]]


@asynccontextmanager
async def receiver(statuses: Callable[[int], int]) -> AsyncIterator[tuple[str, Received]]:
    """A receiver answering the n-th POST with `statuses(n)`; yields its URL and log."""
    received: Received = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=statuses(len(received)))

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


def public_key(key: Ed25519PrivateKey) -> Ed25519PublicKey:
    x = jwks(key, "kid")["keys"][0]["x"]
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


async def wait_for(received: Received, count: int) -> None:
    for _ in range(200):
        if len(received) >= count:
            return
        await asyncio.sleep(0.02)


def test_delivery_is_signed_over_ids_timestamp_and_body_digest() -> None:
    key = Ed25519PrivateKey.generate()

    async def scenario() -> Received:
        async with receiver(lambda n: 200) as (url, received):
            sender = WebhookSender(key, ())
            sender.schedule(url, "req-1", "alice", {"request_id": "req-1", "status": "OK"})
            await wait_for(received, 1)
            await sender.close()
            return received

    ((headers, body),) = asyncio.run(scenario())
    assert json.loads(body) == {"request_id": "req-1", "status": "OK"}
    timestamp = headers["X-Fal-Webhook-Timestamp"]
    message = f"req-1\nalice\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    public_key(key).verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message)
    assert headers["X-Fal-Webhook-User-Id"] == "alice"


def test_failed_delivery_is_retried_until_the_receiver_accepts() -> None:
    async def scenario() -> Received:
        async with receiver(lambda n: 500 if n < 3 else 204) as (url, received):
            sender = WebhookSender(Ed25519PrivateKey.generate(), (0.01, 0.01, 0.01, 0.01))
            sender.schedule(url, "req-2", "bob", {"request_id": "req-2"})
            await wait_for(received, 3)
            await asyncio.sleep(0.1)  # room for a wrong fourth attempt to show up
            await sender.close()
            return received

    assert len(asyncio.run(scenario())) == 3


def test_delivery_gives_up_after_the_configured_retries() -> None:
    async def scenario() -> bool:
        sender = WebhookSender(Ed25519PrivateKey.generate(), (0.01, 0.01))
        delivered = await sender.deliver(
            Delivery(f"http://127.0.0.1:{free_port()}/", "r", "u", b"{}")
        )
        await sender.close()
        return delivered

    assert asyncio.run(scenario()) is False


def test_close_cancels_pending_deliveries() -> None:
    async def scenario() -> Received:
        async with receiver(lambda n: 500) as (url, received):
            sender = WebhookSender(Ed25519PrivateKey.generate(), (30.0,))
            sender.schedule(url, "req-3", "carol", {})
            await wait_for(received, 1)
            await sender.close()  # must not wait the 30 s retry
            return received

    assert len(asyncio.run(scenario())) == 1
