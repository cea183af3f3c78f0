"""Webhook deliveries signed as fal signs them, and the JWKS that verifies them.

`WebhookSender.schedule` returns at once; a background task POSTs the JSON body with
an Ed25519 signature over `request_id\\nuser_id\\ntimestamp\\nsha256hex(body)` and
retries on non-2xx answers or connection errors after each of the configured delays.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nxs.emulator.state import STATE_KEY

logger = logging.getLogger("nxs.emulator.webhooks")

JWKS_HOSTS = ("rest.fal.ai", "rest.alpha.fal.ai")
DELIVERY_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Delivery:
    """One webhook to send: where, for which request and user, and the JSON body."""

    url: str
    request_id: str
    user_id: str
    body: bytes


def signed_headers(key: Ed25519PrivateKey, delivery: Delivery, timestamp: int) -> dict[str, str]:
    """The headers fal puts on a webhook POST, signature included."""
    digest = hashlib.sha256(delivery.body).hexdigest()
    message = f"{delivery.request_id}\n{delivery.user_id}\n{timestamp}\n{digest}"
    return {
        "Content-Type": "application/json",
        "X-Fal-Webhook-Request-Id": delivery.request_id,
        "X-Fal-Webhook-User-Id": delivery.user_id,
        "X-Fal-Webhook-Timestamp": str(timestamp),
        "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
    }


def jwks(key: Ed25519PrivateKey, key_id: str) -> dict[str, Any]:
    """The JSON Web Key Set publishing the public half of the signing key."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id, "use": "sig", "alg": "EdDSA"}
    return {"keys": [jwk]}


class WebhookSender:
    """Delivers webhooks in the background, retrying; owns its tasks and HTTP session."""

    def __init__(self, key: Ed25519PrivateKey, retry_delays: tuple[float, ...]) -> None:
        self._key = key
        self._retry_delays = retry_delays
        self._tasks: set[asyncio.Task[bool]] = set()
        self._session: aiohttp.ClientSession | None = None

    def schedule(self, url: str, request_id: str, user_id: str, payload: dict[str, Any]) -> None:
        """Queue one delivery of `payload` to `url`; returns immediately."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        task = asyncio.get_running_loop().create_task(
            self.deliver(Delivery(url, request_id, user_id, body))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, delivery: Delivery) -> bool:
        """Send until the receiver answers 2xx or the delays run out; True if delivered."""
        for delay in (0.0, *self._retry_delays):
            if delay:
                await asyncio.sleep(delay)
            if await self._attempt(delivery):
                return True
        logger.warning("webhook for request %s not delivered; giving up", delivery.request_id)
        return False

    async def _attempt(self, delivery: Delivery) -> bool:
        headers = signed_headers(self._key, delivery, int(time.time()))
        timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_SECONDS)
        try:
            async with self._client().post(
                delivery.url, data=delivery.body, headers=headers, timeout=timeout
            ) as response:
                await response.read()
                delivered = 200 <= response.status < 300
                status = str(response.status)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            delivered, status = False, type(exc).__name__
        logger.info("webhook for request %s: %s", delivery.request_id, status)
        return delivered

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


WEBHOOKS_KEY = web.AppKey("nxs_emulator_webhooks", WebhookSender)


async def serve_jwks(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.record(request.method, request.path, None)
    return web.json_response(jwks(state.signing_key, state.signing_key_id))


def add_routes(app: web.Application) -> None:
    state = app[STATE_KEY]
    app[WEBHOOKS_KEY] = WebhookSender(state.signing_key, state.config.webhook_retry_delays)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[WEBHOOKS_KEY].close()

    app.cleanup_ctx.append(lifecycle)
    for host in JWKS_HOSTS:
        app.router.add_get(f"/{host}/.well-known/jwks.json", serve_jwks)
