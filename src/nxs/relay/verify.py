"""Verifying fal's webhook callbacks: its four `X-Fal-Webhook-*` headers, an Ed25519
signature checked against fal's JWKS (fetched with the session passed in, cached, and
re-fetched at most every `refresh_seconds` when no cached key verifies), and a
timestamp within ±`tolerance_seconds` of now.
"""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nxs.errors import BadRequest, InvalidApiKey, UpstreamFailed
from nxs.relay.signing import b64url_decode, signed_message

logger = logging.getLogger("nxs.relay.verify")

HEADER_NAMES = ("request-id", "user-id", "timestamp", "signature")
JWKS_TIMEOUT_SECONDS = 10.0


class MalformedWebhook(BadRequest):
    error_type = "invalid_webhook"
    detail = "Malformed webhook"


class StaleWebhook(BadRequest):
    error_type = "stale_webhook"
    detail = "Webhook timestamp is too far from the current time"


class InvalidWebhookSignature(InvalidApiKey):
    error_type = "invalid_webhook_signature"
    detail = "Webhook signature does not verify against fal's published keys"


class JwksUnavailable(UpstreamFailed):
    """fal's JWKS could not be fetched: 502, so fal retries the webhook later."""

    error_type = "jwks_unavailable"
    detail = "Cannot fetch fal's webhook signing keys"


@dataclass(frozen=True)
class VerifiedWebhook:
    request_id: str
    user_id: str
    timestamp: int


class FalWebhookVerifier:
    """Checks callbacks against fal's JWKS at `jwks_url`; one per process."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        jwks_url: str,
        *,
        tolerance_seconds: float = 300.0,
        refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._jwks_url = jwks_url
        self._tolerance = tolerance_seconds
        self._refresh = refresh_seconds
        self._clock = clock
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at: float | None = None

    async def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
        """The verified identity of a callback; raises a 400/401 error otherwise."""
        request_id, user_id, raw_timestamp, signature = _read_headers(headers)
        try:
            timestamp = int(raw_timestamp)
            signature_bytes = bytes.fromhex(signature)
        except ValueError as exc:
            raise MalformedWebhook("Malformed webhook timestamp or signature") from exc
        if abs(self._clock() - timestamp) > self._tolerance:
            raise StaleWebhook()
        message = signed_message(request_id, user_id, timestamp, body)
        if not self._any_verifies(signature_bytes, message):
            await self._refresh_or_refuse()
            if not self._any_verifies(signature_bytes, message):
                raise InvalidWebhookSignature()
        return VerifiedWebhook(request_id, user_id, timestamp)

    async def _refresh_or_refuse(self) -> None:
        """Re-fetch the JWKS if the last fetch is old enough, else refuse the callback."""
        if self._may_refresh():
            await self._fetch()
        elif not self._keys:  # the last fetch failed: nothing to verify with yet
            raise JwksUnavailable()
        else:
            raise InvalidWebhookSignature()

    def _any_verifies(self, signature: bytes, message: bytes) -> bool:
        for key in self._keys:
            try:
                key.verify(signature, message)
                return True
            except InvalidSignature:
                continue
        return False

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._refresh

    async def _fetch(self) -> None:
        """Replace the cached keys with fal's current JWKS."""
        self._fetched_at = self._clock()
        timeout = aiohttp.ClientTimeout(total=JWKS_TIMEOUT_SECONDS)
        try:
            async with self._session.get(self._jwks_url, timeout=timeout) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            logger.warning("fal's JWKS at %s unavailable: %r", self._jwks_url, exc)
            raise JwksUnavailable() from exc
        self._keys = parse_jwks(document)


def parse_jwks(document: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document (others and malformed entries skipped)."""
    keys: list[Ed25519PublicKey] = []
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if (
            not isinstance(entry, dict)
            or entry.get("kty") != "OKP"
            or entry.get("crv") != "Ed25519"
        ):
            continue
        x = entry.get("x")
        try:
            raw = b64url_decode(str(x))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            continue
    return keys


def _read_headers(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    values = []
    for name in HEADER_NAMES:
        value = lowered.get(f"x-fal-webhook-{name}", "").strip()
        if not value:
            raise MalformedWebhook(f"Missing webhook header X-Fal-Webhook-{name.title()}")
        values.append(value)
    return values[0], values[1], values[2], values[3]
