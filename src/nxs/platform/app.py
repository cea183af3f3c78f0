"""The `/v1/…` ASGI app the gateway mounts: fal's Platform API answered per customer.

Each route authenticates the caller's `nxs_` key with the gateway's own `Authenticator`
(a snapshot lookup), reads its parameters (`params`), runs its store work through the
gateway's `Offload` (threads on PostgreSQL, inline on SQLite) and answers fal's JSON
(`wire`). Off the hot path; every error, the router's 404/405 included, is fal's
`{"error": {…}}`. Another customer's key or request id is answered as an unknown one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from nxs.errors import MethodNotAllowed, NotFound, NxsError, PaymentRequired
from nxs.gateway.auth import Authenticator
from nxs.platform import wire
from nxs.platform.call import Call
from nxs.platform.params import Query
from nxs.platform.routes_keys import KeyRoutes
from nxs.platform.routes_models import ModelRoutes
from nxs.store.database import Database
from nxs.store.models import KeyGrant
from nxs.store.offload import Offload

if TYPE_CHECKING:
    from nxs.gateway.services import Services

LOG = logging.getLogger("nxs.platform")
PREFIX: Final = "/v1/"


def is_platform_path(path: str) -> bool:
    """Whether the gateway hands this request path to the Platform API."""
    return path.startswith(PREFIX)


class AccountSuspended(PaymentRequired):
    detail = "Account suspended: contact your provider"


Handler = Callable[[Call], Awaitable[Response]]


class PlatformApi:
    """Starlette over the gateway's authenticator, store and offload."""

    def __init__(self, auth: Authenticator, database: Database, offload: Offload) -> None:
        self.auth = auth
        self.database = database
        self.offload = offload
        models, keys = ModelRoutes(), KeyRoutes()
        routes = [
            self.route("/v1/models/pricing", models.pricing, "GET"),
            self.route("/v1/models/pricing/estimate", models.estimate, "POST"),
            self.route("/v1/models/usage", models.usage, "GET"),
            self.route("/v1/models/billing-events", models.billing_events, "GET"),
            self.route("/v1/models/requests/by-endpoint", models.requests, "GET"),
            self.route("/v1/account/billing", models.account, "GET"),
            self.route("/v1/keys", keys.list, "GET"),
            self.route("/v1/keys", keys.create, "POST"),
            self.route("/v1/keys/{key_id}", keys.delete, "DELETE"),
        ]
        self.app = Starlette(routes=routes, exception_handlers={HTTPException: _router_error})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def route(self, path: str, handler: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            request_id = uuid.uuid4().hex
            try:
                call = Call(
                    request,
                    await self.authenticate(request),
                    Query(request.url.query),
                    self.database,
                    self.offload,
                    datetime.now(UTC),
                )
                response = await handler(call)
            except NxsError as failure:
                return failed(failure, request_id)
            except Exception:
                LOG.exception("platform request %s %s failed", method, path)
                return failed(NxsError(), request_id)
            response.headers["x-fal-request-id"] = request_id
            return response

        return Route(path, endpoint, methods=[method])

    async def authenticate(self, request: Request) -> KeyGrant:
        try:
            return await self.auth.authenticate(request.headers.get("authorization"))
        except PaymentRequired as exc:
            raise AccountSuspended() from exc


def failed(failure: NxsError, request_id: str) -> JSONResponse:
    status, body = wire.error(failure, request_id)
    headers = {"x-fal-request-id": request_id, **failure.headers}
    return JSONResponse(body, status_code=status, headers=headers)


async def _router_error(request: Request, exc: Exception) -> Response:
    """The router's own 404 (no such path) and 405 (no such method), in fal's shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    failure: NxsError = NotFound(f"Path {request.url.path} not found")
    if status == 405:
        failure = MethodNotAllowed(f"Method {request.method} is not supported here")
    return failed(failure, uuid.uuid4().hex)


def platform_app(services: Services) -> PlatformApi:
    """The Platform API over a started gateway's services."""
    return PlatformApi(services.auth, services.store.database, services.offload)
