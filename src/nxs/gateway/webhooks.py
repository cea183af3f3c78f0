"""The webhook relay wired into the gateway: a customer's `fal_webhook` swapped for NXS's
callback URL at submit (when `NXS_PUBLIC_URL` is set), fal's callbacks at
`POST /webhooks/fal/{callback_id}` (no API key: fal's signature is the proof), and
NXS's public keys at `GET /.well-known/jwks.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl, urlencode

import aiohttp

from nxs.config import Settings
from nxs.errors import MethodNotAllowed, UpstreamFailed
from nxs.gateway.exchange import Exchange
from nxs.gateway.routes import WEBHOOK_PREFIX
from nxs.relay import Completion, CompletionHook, Relay, RelayConfig
from nxs.relay.signing import SigningKey
from nxs.store.offload import Offload
from nxs.store.store import Store

WEBHOOK_PARAM: Final = "fal_webhook"
WEBHOOK_BODY_LIMIT: Final = 16 * 1024 * 1024
CALLBACK_HEADERS: Final = frozenset(
    {
        b"x-fal-webhook-request-id",
        b"x-fal-webhook-user-id",
        b"x-fal-webhook-timestamp",
        b"x-fal-webhook-signature",
    }
)


class NoSettlement:
    """The completion hook until billing settles webhook completions: billing assigns
    its own to `services.webhooks.completions` (called once per verified request id)."""

    async def __call__(self, completion: Completion) -> None:
        return None


class Webhooks:
    """The relay of one gateway worker, and its three call sites."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        session: aiohttp.ClientSession,
        offload: Offload,
    ) -> None:
        self._offload = offload
        self._enabled = settings.public_url is not None
        self.completions: CompletionHook = NoSettlement()  # billing sets its settlement here
        self.on_finished: Callable[[str], None] | None = None  # the pool's outstanding count
        config = RelayConfig.from_settings(settings)
        self.relay = Relay(
            store.database,
            store.box,
            config,
            on_completion=self._complete,
            fal_session=session,
            offload=offload,
        )

    async def _complete(self, completion: Completion) -> None:
        if self.on_finished is not None:
            self.on_finished(completion.request_id)
        await self.completions(completion)

    @property
    def signing_key(self) -> SigningKey:
        return self.relay.signing_key

    async def start(self) -> None:
        await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()

    async def register(self, customer_id: str, query: str) -> tuple[str, str | None]:
        """At submit: the query with `fal_webhook` replaced by NXS's callback URL, and the
        callback id (None, query unchanged, when the relay is off or no webhook is asked)."""
        if not self._enabled:
            return query, None
        pairs = parse_qsl(query, keep_blank_values=True)
        targets = [value for name, value in pairs if name == WEBHOOK_PARAM]
        if not targets:
            return query, None
        registration = await self._offload.call(self.relay.register, customer_id, targets[-1])
        kept = [(name, value) for name, value in pairs if name != WEBHOOK_PARAM]
        kept.append((WEBHOOK_PARAM, registration.fal_webhook_url))
        return urlencode(kept), registration.callback_id

    async def attach(self, callback_id: str, answer: bytes) -> None:
        """After submit: bind the request id of fal's answer to the callback."""
        try:
            request_id = json.loads(answer)["request_id"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise UpstreamFailed("fal answered a submit without a request id") from exc
        await self._offload.call(self.relay.attach, callback_id, str(request_id))

    async def callback(self, ex: Exchange) -> None:
        """fal's POST to the callback URL: verified, recorded, queued for the customer."""
        callback_id = ex.path.strip("/")[len(WEBHOOK_PREFIX) :]
        if ex.method != "POST":
            raise MethodNotAllowed("Use POST to deliver a webhook")
        body = await ex.read_body(WEBHOOK_BODY_LIMIT)
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in ex.scope["headers"]
            if name in CALLBACK_HEADERS
        }
        status, answer = await self.relay.handle_callback(callback_id, headers, body)
        await ex.respond(status, answer)

    async def jwks(self, ex: Exchange) -> None:
        """NXS's webhook public keys: customers verify deliveries against these."""
        if ex.method not in ("GET", "HEAD"):
            raise MethodNotAllowed("Use GET for the JWKS")
        await ex.respond_json(200, self.relay.jwks())
