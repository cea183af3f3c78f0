"""The admin ASGI app the gateway mounts at `/admin`: FastAPI, off the hot path.

`admin_app(settings, store)` builds it around the gateway's own `Store`; the API lives
under `/admin/v1` (bearer `NXS_ADMIN_TOKEN`), its docs at `/admin/docs` and
`/admin/openapi.json`. Without a configured token every `/admin` path answers 403.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Depends, FastAPI

from nxs.admin.api import (
    accounts,
    audit_log,
    customers,
    errors,
    invites,
    plans,
    upstream,
    usage,
)
from nxs.admin.api.body import checked_receive
from nxs.admin.api.context import (
    AdminContext,
    AdminDisabled,
    InvalidAdminToken,
    LiveUpstream,
    require_admin,
    token_matches,
)
from nxs.admin.api.schemas import ErrorOut
from nxs.config import Settings
from nxs.errors import NxsError
from nxs.store.store import Store

LOG = logging.getLogger("nxs.admin")
PREFIX = "/admin/v1"
DOCS_URL = "/admin/docs"
OPENAPI_URL = "/admin/openapi.json"
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
ERRORS_DOCUMENTED = (
    (401, "Missing or invalid admin token"),
    (403, "Admin API disabled (NXS_ADMIN_TOKEN unset)"),
    (404, "No such record"),
    (409, "Already exists"),
    (422, "Invalid input: detail lists {loc, msg, type} per field"),
)
ROUTERS = (
    customers.routes,
    upstream.routes,
    plans.routes,
    accounts.routes,
    usage.routes,
    audit_log.routes,
    invites.routes,
)


def is_admin_path(path: str) -> bool:
    """Whether the gateway should hand this request path to the admin app."""
    return path == "/admin" or path.startswith("/admin/")


def build(settings: Settings, store: Store, live: LiveUpstream | None = None) -> FastAPI:
    """The FastAPI app itself (no token gate in front: see `AdminApi`)."""
    app = FastAPI(
        title="NXS admin API",
        version="1",
        description="Customers, keys, upstream keys, plans, subscriptions, credit, prices, "
        "usage and the audit log of an NXS gateway. "
        "Authenticate with `Authorization: Bearer $NXS_ADMIN_TOKEN`.",
        docs_url=DOCS_URL,
        openapi_url=OPENAPI_URL,
        redoc_url=None,
    )
    app.state.context = AdminContext(settings, store, live)
    errors.install(app)
    for routes in ROUTERS:
        app.include_router(
            routes(),
            prefix=PREFIX,
            dependencies=[Depends(require_admin)],
            responses=_error_responses(),
        )
    return app


class AdminApi:
    """The mounted app: 403 for everything while disabled, else FastAPI."""

    def __init__(self, settings: Settings, store: Store, live: LiveUpstream | None = None) -> None:
        self.enabled = bool(settings.admin_token)
        self.token = settings.admin_token or ""
        self.app = build(settings, store, live)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if not self.enabled:
            await _respond(send, AdminDisabled())
            return
        if str(scope.get("path", "")).startswith(PREFIX + "/") and not self._bearer(scope):
            await _respond(send, InvalidAdminToken())  # before reading a stranger's body
            return
        try:
            receive = await checked_receive(scope, receive)
        except NxsError as error:  # malformed or oversized JSON: refused before any route
            await _respond(send, error)
            return
        try:
            await self.app(scope, receive, send)
        except Exception:  # already answered 500 by the error handler; keep it out of uvicorn
            LOG.exception("admin request %s %s failed", scope.get("method"), scope.get("path"))

    def _bearer(self, scope: Message) -> bool:
        """Whether the request carries the admin token (`require_admin` checks it again)."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and token_matches(token.strip(), self.token)
        return False


def admin_app(settings: Settings, store: Store, live: LiveUpstream | None = None) -> AdminApi:
    return AdminApi(settings, store, live)


def _error_responses() -> dict[int | str, dict[str, Any]]:
    """The errors every operation may answer, for the OpenAPI document."""
    return {status: {"model": ErrorOut, "description": text} for status, text in ERRORS_DOCUMENTED}


async def _respond(send: Send, error: NxsError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if isinstance(error, InvalidAdminToken):
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
