"""The console's ASGI app, mounted by the gateway at `/console`: sign-in (an operator
account, or the admin token), the session check in front of every page, and the routes.

Sessions are the web base's, of kind `console` under their own cookie and path, so a
portal session never opens a console page nor the other way round. Every POST checks the
CSRF token and then the role (a viewer changes nothing) before any action runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router

from nxs.admin.api.context import token_matches
from nxs.billing.money import Money
from nxs.config import Settings
from nxs.console import forms, pages
from nxs.console.actions import Actor
from nxs.console.operators import authenticate, find_by_id
from nxs.errors import NxsError
from nxs.gateway.pool import KeyPool
from nxs.store.store import Store
from nxs.web.sessions import Session
from nxs.web.site import STATIC_PATH, Site

LOG = logging.getLogger("nxs.console")
PREFIX: Final = "/console"
TOKEN_SUBJECT: Final = "admin-token"  # the session subject of a sign-in with NXS_ADMIN_TOKEN
TEMPLATES: Final = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Console:
    """What every console handler needs: the site, the store, settings and the live pool."""

    site: Site
    store: Store
    settings: Settings
    pool: KeyPool | None

    async def actor(self, request: Request) -> tuple[Session, Actor] | None:
        """The signed-in operator behind this request's console cookie, if any."""
        session = await self.site.session(request)
        if session is None:
            return None
        if session.subject_id == TOKEN_SUBJECT:
            return session, Actor("admin token", "admin")
        operator = await self.site.call(find_by_id, self.store.database, session.subject_id)
        return (session, Actor.of(operator)) if operator is not None else None


Handler = Callable[[Console, Request, Session, Actor], Awaitable[Response]]


def money(amount: Money | None) -> str:
    """Exact USD as the ledger holds it (2 to 6 decimals): "$12.50", "$0.025", "-$0.01"."""
    if amount is None:
        return "–"
    text = str(amount)
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def console_app(settings: Settings, store: Store, pool: KeyPool | None = None) -> Router:
    site = Site("console", PREFIX, TEMPLATES, store.database, title="Console")
    site.env.filters["money"] = money
    console = Console(site, store, settings, pool)
    routes = [
        Route(PREFIX, _signed_in(console, pages.overview)),
        Route(f"{PREFIX}/sign-in", _sign_in_page(console), methods=["GET"]),
        Route(f"{PREFIX}/sign-in", _sign_in(console), methods=["POST"]),
        Route(f"{PREFIX}/sign-out", _sign_out(console), methods=["POST"]),
        Mount(f"{PREFIX}{STATIC_PATH}", app=site.static_app()),
    ]
    for path, page in pages.PAGES.items():
        routes.append(Route(f"{PREFIX}{path}", _signed_in(console, page), methods=["GET"]))
    for path, form in forms.FORMS.items():
        routes.append(Route(f"{PREFIX}{path}", _signed_in(console, form), methods=["POST"]))
    return Router(routes)


def _signed_in(console: Console, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Pages need a console session: without one, GETs go to sign-in and POSTs too."""

    async def endpoint(request: Request) -> Response:
        found = await console.actor(request)
        if found is None:
            return console.site.redirect(f"{PREFIX}/sign-in")
        session, actor = found
        try:
            return await handler(console, request, session, actor)
        except NxsError as error:
            status, detail = error.status, error.detail
        except Exception:  # a page, never a traceback; the log has the details
            LOG.exception("console %s %s failed", request.method, request.url.path)
            status, detail = 500, "Internal error: the gateway's log has the details"
        return console.site.render(
            request,
            "problem.html",
            session,
            status=status,
            error=detail,
            actor=actor,
            nav=pages.NAV,
        )

    return endpoint


def _sign_in_page(console: Console) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if await console.actor(request) is not None:
            return console.site.redirect(PREFIX)
        return console.site.render(request, "console_sign_in.html", None)

    return endpoint


def _sign_in(console: Console) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        site = console.site
        address = request.client.host if request.client else "-"
        try:
            fields = await site.form(request, None)
            name, password = fields.get("account", "").strip(), fields.get("password", "")
            site.throttle.check(name or TOKEN_SUBJECT, address)
        except NxsError as error:
            return site.render(
                request, "console_sign_in.html", None, status=error.status, error=error.detail
            )
        subject = await _subject(console, name, password)
        if subject is None:
            site.throttle.failed(name or TOKEN_SUBJECT, address)
            return site.render(
                request,
                "console_sign_in.html",
                None,
                status=401,
                account=name,
                error="Wrong name or password (or admin token)",
            )
        site.throttle.succeeded(name or TOKEN_SUBJECT)
        return await site.sign_in(request, subject, PREFIX)

    return endpoint


async def _subject(console: Console, name: str, password: str) -> str | None:
    """The session subject for these credentials: an operator's id, or the token's."""
    if not name:
        expected = console.settings.admin_token
        if expected and password and token_matches(password, expected):
            return TOKEN_SUBJECT
        return None
    site = console.site
    operator = await site.call(authenticate, console.store.database, site.passwords, name, password)
    return operator.id if operator is not None else None


def _sign_out(console: Console) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        found = await console.actor(request)
        if found is not None:
            try:
                await console.site.form(request, found[0])
            except NxsError as error:
                return console.site.render(
                    request, "problem.html", found[0], status=error.status, error=error.detail
                )
        return await console.site.sign_out(request, f"{PREFIX}/sign-in")

    return endpoint
