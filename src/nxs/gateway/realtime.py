"""NXS's realtime WebSocket: `/{endpoint}/realtime`, authenticated by an `nxs_` key
(Authorization header) or an NXS realtime token (`?fal_jwt_token=`), bridged to fal's
`/{endpoint}/realtime` with a token minted by a pool key for that app. Text and binary
frames pass both ways as they come; oversized frames close with 1009, idle ones 1001.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, urlencode

import aiohttp

from nxs.config import Settings
from nxs.errors import InvalidApiKey, NotFound, NxsError, UpstreamFailed
from nxs.gateway.auth import Authenticator
from nxs.gateway.exchange import Exchange, Scope
from nxs.gateway.forward import UPSTREAM_ERRORS
from nxs.gateway.pool import OK, KeyPool, PoolKey
from nxs.gateway.proxy import RUN_HOST
from nxs.gateway.realtime_meter import ResultCounter
from nxs.gateway.realtime_pump import Pump
from nxs.gateway.realtime_tokens import RealtimeTokens, parse_token_request
from nxs.gateway.routes import RUN, Router, app_id
from nxs.relay.signing import SigningKey
from nxs.store.models import KeyGrant

LOG = logging.getLogger("nxs.gateway.realtime")
SUFFIX: Final = "/realtime"
TOKEN_PARAM: Final = "fal_jwt_token"
UPSTREAM_TOKEN_SECONDS: Final = 120
POLICY_VIOLATION: Final = 1008
INTERNAL_ERROR: Final = 1011
UNAUTHORIZED: Final = json.dumps({"status": "error", "error": "Unauthorized"})


class RealtimeMeter(Protocol):
    """Realtime sessions, for billing (`nxs.gateway.realtime_meter` when billing is on).

    `opened` runs before fal's socket is opened and refuses by raising an NxsError; what
    it returns goes to `connected` with the pool key whose token opened fal's socket, and
    to `closed` with the session's length and the results fal sent.
    """

    async def opened(self, customer_id: str, key_id: str, endpoint: str) -> object: ...
    async def connected(self, session: object, upstream_key_id: str) -> None: ...
    async def closed(self, session: object, seconds: float, results: int) -> None: ...


class NoRealtimeMetering:
    async def opened(self, customer_id: str, key_id: str, endpoint: str) -> object:
        return None

    async def connected(self, session: object, upstream_key_id: str) -> None:
        return None

    async def closed(self, session: object, seconds: float, results: int) -> None:
        return None


class ShuttingDown(NxsError):
    """A session asked for while this worker stops."""

    status, error_type, detail = 503, "shutting_down", "Server shutting down"


class RealtimeBridge:
    """The WebSocket side of the gateway; `active` counts open sessions in this worker."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        pool: KeyPool,
        auth: Authenticator,
        router: Router,
        tokens: RealtimeTokens,
        meter: RealtimeMeter,
    ) -> None:
        self._settings, self._session, self._pool = settings, session, pool
        self._auth, self._router, self.tokens, self.meter = auth, router, tokens, meter
        self._run_base = settings.upstream_base(RUN_HOST)
        self._token_url = settings.upstream_base("rest.fal.ai") + "/tokens/"
        self.active = 0
        self.stopping = asyncio.Event()  # set at SIGTERM: every session closes with 1001

    async def stop_sessions(self, seconds: float) -> None:
        """Close every session (fal's socket first, then the client's with 1001) and wait
        up to `seconds` for them to be gone; sessions arriving meanwhile are refused."""
        self.stopping.set()
        deadline = time.monotonic() + seconds
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    @classmethod
    def open(
        cls,
        settings: Settings,
        session: aiohttp.ClientSession,
        pool: KeyPool,
        auth: Authenticator,
        router: Router,
        key: SigningKey,
    ) -> RealtimeBridge:
        """The bridge with NXS's tokens signed by `key` and no metering yet."""
        return cls(settings, session, pool, auth, router, RealtimeTokens(key), NoRealtimeMetering())

    async def issue_token(self, ex: Exchange, grant: KeyGrant, limit: int) -> None:
        """`POST /tokens/` (or the proxied rest.fal.ai/tokens/): an NXS realtime token."""
        apps, seconds = parse_token_request(await ex.read_body(limit))
        token = self.tokens.issue(grant.customer_id, grant.key_id, apps, seconds)
        await ex.respond_json(200, token)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            if self.stopping.is_set():
                raise ShuttingDown()
            customer_id, key_id, endpoint = await self._authorize(scope)
            session = await self.meter.opened(customer_id, key_id, endpoint)
        except NxsError as error:
            await _refuse(send, error)
            return
        try:
            entry, upstream = await self._connect(endpoint, scope)
        except NxsError as error:
            await self.meter.closed(session, 0.0, 0)
            await _refuse(send, error)
            return
        await send({"type": "websocket.accept"})
        self.active += 1
        counter = ResultCounter(send)
        pump = Pump(receive, counter, upstream, self._settings, self.stopping)
        try:
            await self.meter.connected(session, entry.key.id)
            await pump.run()
        finally:
            await upstream.close()  # closed by the pump already, unless `connected` failed
            self.active -= 1
            entry.in_flight -= 1
            await self.meter.closed(session, pump.seconds, counter.results)

    async def _authorize(self, scope: Scope) -> tuple[str, str, str]:
        """Customer id, key id (the header's, or the key a token was issued to) and
        endpoint; 401 (also for a token whose key was revoked since), 402, 404 otherwise."""
        endpoint = self._endpoint(scope["path"])
        authorization = _header(scope, b"authorization")
        if authorization:
            grant = await self._auth.authenticate(authorization)
            return grant.customer_id, grant.key_id, endpoint
        token = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get(TOKEN_PARAM)
        if not token:
            raise InvalidApiKey()
        claims = self.tokens.verify(token)
        if _alias(endpoint) not in claims.apps:
            raise InvalidApiKey("This realtime token is not for this app")
        grant = self._auth.key_grant(claims.key_id)
        if grant.customer_id != claims.customer_id:
            raise InvalidApiKey()
        return grant.customer_id, grant.key_id, endpoint

    def _endpoint(self, path: str) -> str:
        trimmed = path.rstrip("/")
        if not trimmed.endswith(SUFFIX):
            raise NotFound(f"Path {path} not found")
        segments = trimmed[: -len(SUFFIX)].strip("/").split("/")
        route = self._router.endpoint_route("GET", segments, queued=False, shown=path)
        if route.kind != RUN:
            raise NotFound(f"Path {path} not found")
        return route.endpoint

    async def _connect(
        self, endpoint: str, scope: Scope
    ) -> tuple[PoolKey, aiohttp.ClientWebSocketResponse]:
        """A pool key's token for the app, and fal's WebSocket opened with it."""
        entry, token = await self._upstream_token(_alias(endpoint))
        query = [(k, v) for k, v in parse_qsl(scope["query_string"].decode()) if k != TOKEN_PARAM]
        query.append((TOKEN_PARAM, token))
        url = f"{self._run_base}/{endpoint}{SUFFIX}?{urlencode(query)}"
        try:
            upstream = await self._session.ws_connect(
                url, max_msg_size=self._settings.realtime_max_frame_bytes, autoping=True
            )
        except UPSTREAM_ERRORS as exc:
            entry.in_flight -= 1
            raise UpstreamFailed("The upstream realtime connection failed") from exc
        return entry, upstream

    async def _upstream_token(self, alias: str) -> tuple[PoolKey, str]:
        """Mint fal's token with the first pool key that gives one (key left in flight)."""
        tried: set[str] = set()
        while (entry := self._choose(tried)) is not None:
            tried.add(entry.key.id)
            token = await self._mint(entry, alias)
            if token is not None:
                entry.in_flight += 1
                return entry, token
        raise UpstreamFailed()

    def _choose(self, tried: set[str]) -> PoolKey | None:
        try:
            return self._pool.choose(tried)
        except NxsError:
            if tried:
                return None
            raise

    async def _mint(self, entry: PoolKey, alias: str) -> str | None:
        payload = {"allowed_apps": [alias], "token_expiration": UPSTREAM_TOKEN_SECONDS}
        headers = {"authorization": entry.authorization}
        try:
            async with self._session.post(self._token_url, json=payload, headers=headers) as r:
                body, status, retry = await r.read(), r.status, r.headers.get("Retry-After")
        except UPSTREAM_ERRORS:
            self._pool.failed(entry)
            return None
        if status < 300:
            try:
                return str(json.loads(body))
            except (ValueError, RecursionError) as exc:
                raise UpstreamFailed("fal answered a realtime token that is not JSON") from exc
        if self._pool.judge(entry, status, body, retry) == OK:
            raise UpstreamFailed(f"fal refused a realtime token ({status})")
        return None


def _alias(endpoint: str) -> str:
    return app_id(endpoint).split("/")[-1]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _refuse(send: Any, error: NxsError) -> None:
    """fal's way: accept, say why in a text frame, close (1008 for auth, else 1011)."""
    await send({"type": "websocket.accept"})
    if error.status in (401, 402, 403):
        await send({"type": "websocket.send", "text": UNAUTHORIZED})
        code = POLICY_VIOLATION
    else:
        detail = {"type": "x-fal-error", "error": error.error_type, "reason": str(error.detail)}
        await send({"type": "websocket.send", "text": json.dumps(detail)})
        code = POLICY_VIOLATION if error.status < 500 else INTERNAL_ERROR
    await send({"type": "websocket.close", "code": code, "reason": str(error.detail)[:120]})
