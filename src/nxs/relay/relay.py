"""`Relay`: the framework-free entry point the gateway calls for webhooks.

At submit, `register` swaps the customer's `fal_webhook` for NXS's callback URL. When
fal calls back, `handle_callback` verifies fal's signature, records the completion once
per request id (the `CompletionHook` billing settles with), enqueues the customer's
delivery — same bytes, re-signed by NXS — and answers at once; the worker delivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ParamSpec, Protocol, TypeVar

import aiohttp

from nxs.config import Settings
from nxs.errors import MalformedJson, NxsError, render
from nxs.jsoninput import parse_json
from nxs.relay.callbacks import Callback, Callbacks, Registration
from nxs.relay.outbox import Delivery, Outbox
from nxs.relay.signing import SigningKey
from nxs.relay.targets import resolver
from nxs.relay.verify import FalWebhookVerifier, MalformedWebhook
from nxs.relay.worker import DeliveryWorker, WorkerConfig
from nxs.store.crypto import SecretBox
from nxs.store.database import Database
from nxs.store.offload import Offload

logger = logging.getLogger("nxs.relay")
P = ParamSpec("P")
T = TypeVar("T")
ACCEPTED = b'{"ok":true}'


class SettlementFailed(NxsError):
    """The completion hook raised: 500, so fal retries the webhook later."""

    status, error_type, detail = 500, "settlement_failed", "Could not record the completion"


class RelayNotStarted(NxsError):
    status, error_type, detail = 503, "relay_not_started", "Webhook relay is not running"


@dataclass(frozen=True)
class Completion:
    """What fal reported about a finished request, for billing to settle."""

    request_id: str
    customer_id: str
    callback_id: str
    upstream_user_id: str  # fal's X-Fal-Webhook-User-Id: the upstream account
    status: str  # fal's "OK" or "ERROR" ("" if absent)
    body: dict[str, Any]  # the whole webhook JSON (request_id, status, payload, error…)


class CompletionHook(Protocol):
    """Called once per request id with a verified completion; raising makes fal retry."""

    async def __call__(self, completion: Completion) -> None: ...


@dataclass(frozen=True)
class RelayConfig:
    public_url: str | None  # NXS_PUBLIC_URL: no relay without it
    fal_jwks_url: str
    allow_private: bool = False  # NXS_WEBHOOK_ALLOW_PRIVATE
    tolerance_seconds: float = 300.0
    jwks_refresh_seconds: float = 30.0
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    @classmethod
    def from_settings(cls, settings: Settings, *, allow_private: bool | None = None) -> RelayConfig:
        """From `NXS_PUBLIC_URL`, `NXS_WEBHOOK_ALLOW_PRIVATE`, `NXS_WEBHOOK_RETRY_DELAYS`."""
        if allow_private is None:
            allow_private = settings.webhook_allow_private
        jwks_url = settings.upstream_base("rest.fal.ai") + "/.well-known/jwks.json"
        worker = WorkerConfig(allow_private=allow_private)
        if settings.webhook_retry_delays is not None:
            worker = replace(worker, retry_delays=settings.webhook_retry_delays)
        return cls(settings.public_url, jwks_url, allow_private=allow_private, worker=worker)


class Relay:
    """Callbacks, verification, outbox and worker over the store's database."""

    def __init__(
        self,
        database: Database,
        box: SecretBox,
        config: RelayConfig,
        on_completion: CompletionHook | None = None,
        fal_session: aiohttp.ClientSession | None = None,
        offload: Offload | None = None,
    ) -> None:
        self._config = config
        self._offload = offload  # inbound webhooks' store calls: off the loop on PostgreSQL
        self._callbacks = Callbacks(database, config.public_url, config.allow_private)
        self.outbox = Outbox(database)
        self.signing_key = SigningKey.load_or_create(database, box)
        self._on_completion = on_completion
        self._fal_session = fal_session
        self._sessions: list[aiohttp.ClientSession] = []
        self._verifier: FalWebhookVerifier | None = None
        self._worker: DeliveryWorker | None = None

    async def start(self) -> None:
        """Open the HTTP sessions and start delivering (pending rows included)."""
        connector = aiohttp.TCPConnector(
            limit=self._config.worker.max_concurrency,
            resolver=resolver(allow_private=self._config.allow_private),
        )
        delivery_session = aiohttp.ClientSession(connector=connector)
        self._sessions.append(delivery_session)
        fal_session = self._fal_session
        if fal_session is None:
            fal_session = aiohttp.ClientSession()
            self._sessions.append(fal_session)
        self._verifier = FalWebhookVerifier(
            fal_session,
            self._config.fal_jwks_url,
            tolerance_seconds=self._config.tolerance_seconds,
            refresh_seconds=self._config.jwks_refresh_seconds,
        )
        self._worker = DeliveryWorker(
            self.outbox, self.signing_key, delivery_session, self._config.worker
        )
        self._worker.start()

    @property
    def deliveries(self) -> dict[str, int]:
        """Delivery attempts by outcome (delivered, will_retry, gave_up) in this process."""
        return dict(self._worker.outcomes) if self._worker is not None else {}

    async def stop(self) -> None:
        """Stop the worker (unsent rows stay pending) and close the sessions it opened."""
        if self._worker is not None:
            await self._worker.stop()
        for session in self._sessions:
            await session.close()
        self._sessions.clear()
        self._worker = self._verifier = None

    def register(
        self, customer_id: str, customer_webhook_url: str, request_id: str | None = None
    ) -> Registration:
        """At submit: the URL to pass fal instead of the customer's (400 if refused)."""
        return self._callbacks.register(customer_id, customer_webhook_url, request_id)

    def attach(self, callback_id: str, request_id: str) -> None:
        """After submit: bind the request id fal answered to the callback."""
        self._callbacks.attach(callback_id, request_id)

    def jwks(self) -> dict[str, Any]:
        """NXS's public keys, for `GET /.well-known/jwks.json`."""
        return self.signing_key.jwks()

    async def handle_callback(
        self, callback_id: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """fal's POST to `/webhooks/fal/{callback_id}`: (status, fal-shaped JSON body)."""
        try:
            await self._accept(callback_id, headers, body)
        except NxsError as exc:
            logger.info("fal webhook refused: %s (%d)", exc.error_type, exc.status)
            return exc.status, render(exc)
        return 200, ACCEPTED

    async def _accept(self, callback_id: str, headers: Mapping[str, str], body: bytes) -> None:
        if self._verifier is None or self._worker is None:
            raise RelayNotStarted()
        callback = await self._call(self._callbacks.find, callback_id)
        verified = await self._verifier.verify(headers, body)
        if callback.request_id not in (None, verified.request_id):
            raise MalformedWebhook("Webhook is for another request than this callback's")
        document = _parse(body)
        await self._call(self._callbacks.attach, callback.id, verified.request_id)
        delivery, _ = await self._call(self.outbox.enqueue, callback, verified.request_id, body)
        self._worker.wake()
        completion = Completion(
            verified.request_id,
            callback.customer_id,
            callback.id,
            verified.user_id,
            str(document.get("status") or ""),
            document,
        )
        await self._settle(delivery, callback, completion)

    async def _settle(self, delivery: Delivery, callback: Callback, completion: Completion) -> None:
        if self._on_completion is None:
            return
        if not await self._call(self.outbox.claim_settlement, delivery.id):
            return
        try:
            await self._on_completion(completion)
        except NxsError:  # an answer the hook chose (e.g. 503: not recorded yet): fal retries
            await self._call(self.outbox.release_settlement, delivery.id)
            logger.info("settling request %s deferred: fal will retry", completion.request_id)
            raise
        except Exception as exc:  # the hook is billing's code: fal retries, we settle again
            await self._call(self.outbox.release_settlement, delivery.id)
            logger.exception("settling request %s failed", completion.request_id)
            raise SettlementFailed() from exc

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._offload is None:
            return function(*args, **kwargs)
        return await self._offload.call(function, *args, **kwargs)


def _parse(body: bytes) -> dict[str, Any]:
    """The webhook's JSON object (UTF-8); anything else is a 400."""
    try:
        document = parse_json(body.decode("utf-8"))
    except (UnicodeDecodeError, MalformedJson) as exc:
        raise MalformedWebhook("Webhook body is not UTF-8 JSON") from exc
    if not isinstance(document, dict):
        raise MalformedWebhook("Webhook body is not a JSON object")
    return document
