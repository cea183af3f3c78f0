"""Verifying fal's callbacks against a JWKS served by a real aiohttp server: a rotated
fal key is picked up by one re-fetch, forged signatures do not hammer the JWKS, stale
timestamps and missing headers are refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tests.support.servers import free_port

from nxs.errors import NxsError
from nxs.relay.verify import FalWebhookVerifier

BODY = b'{"request_id":"req-9","status":"OK","payload":{"images":[]}}'


class FalKeys:
    """fal's side: the current signing key, and how often its JWKS was fetched."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.fetches = 0

    def jwks(self) -> dict[str, object]:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k", "alg": "EdDSA"}]}

    def headers(self, timestamp: int | None = None) -> dict[str, str]:
        ts = int(time.time()) if timestamp is None else timestamp
        message = f"req-9\nfal-user\n{ts}\n{hashlib.sha256(BODY).hexdigest()}".encode()
        return {
            "x-fal-webhook-request-id": "req-9",
            "x-fal-webhook-user-id": "fal-user",
            "x-fal-webhook-timestamp": str(ts),
            "x-fal-webhook-signature": self.key.sign(message).hex(),
        }


@asynccontextmanager
async def verifier(
    fal: FalKeys, clock: Callable[[], float] = time.time
) -> AsyncIterator[FalWebhookVerifier]:
    async def serve_jwks(request: web.Request) -> web.Response:
        fal.fetches += 1
        return web.json_response(fal.jwks())

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve_jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
            yield FalWebhookVerifier(session, url, refresh_seconds=30.0, clock=clock)
    finally:
        await runner.cleanup()


async def refusal(check: FalWebhookVerifier, headers: dict[str, str]) -> NxsError:
    with pytest.raises(NxsError) as caught:
        await check.verify(headers, BODY)
    return caught.value


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_forged_signatures_do_not_refetch_fals_jwks_within_30_seconds() -> None:
    async def scenario() -> tuple[str, list[int], int]:
        fal = FalKeys()
        async with verifier(fal) as check:
            verified = await check.verify(fal.headers(), BODY)
            fal.key = Ed25519PrivateKey.generate()  # a key fal never published (yet)
            errors = [await refusal(check, fal.headers()) for _ in range(5)]
            return verified.request_id, [error.status for error in errors], fal.fetches

    assert asyncio.run(scenario()) == ("req-9", [401] * 5, 1)


def test_a_rotated_fal_key_is_picked_up_by_one_refetch() -> None:
    async def scenario() -> tuple[str, int, int]:
        fal, clock = FalKeys(), Clock()
        async with verifier(fal, clock) as check:
            await check.verify(fal.headers(), BODY)
            clock.offset = 31.0  # the cached JWKS is now old enough to re-fetch
            fal.key = Ed25519PrivateKey.generate()  # fal rotates its key
            verified = await check.verify(fal.headers(), BODY)
            fetches = fal.fetches
            forged = FalKeys()  # signed by a key fal never published
            error = await refusal(check, forged.headers())
            return verified.user_id, fetches, error.status

    assert asyncio.run(scenario()) == ("fal-user", 2, 401)


def test_stale_tampered_and_incomplete_callbacks_are_refused() -> None:
    async def scenario() -> list[tuple[int, str]]:
        fal = FalKeys()
        async with verifier(fal) as check:
            stale = await refusal(check, fal.headers(timestamp=int(time.time()) - 301))
            future = await refusal(check, fal.headers(timestamp=int(time.time()) + 301))
            headers = fal.headers()
            with pytest.raises(NxsError) as tampered:
                await check.verify(headers, BODY.replace(b"OK", b"KO"))
            del headers["x-fal-webhook-signature"]
            missing = await refusal(check, headers)
        errors = [stale, future, tampered.value, missing]
        return [(error.status, error.error_type) for error in errors]

    assert asyncio.run(scenario()) == [
        (400, "stale_webhook"),
        (400, "stale_webhook"),
        (401, "invalid_webhook_signature"),
        (400, "invalid_webhook"),
    ]


def test_unreachable_jwks_answers_502_so_fal_retries() -> None:
    async def scenario() -> NxsError:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
            return await refusal(FalWebhookVerifier(session, url), FalKeys().headers())

    error = asyncio.run(scenario())
    assert (error.status, error.error_type) == (502, "jwks_unavailable")
