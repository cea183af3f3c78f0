"""`Site`: one family of server-rendered pages (the portal, the console) on the web base.

It owns the family's Jinja2 environment (its own templates first, then the shared layout;
autoescape on for everything), its session kind and cookie, form parsing with the CSRF
check, and the headers every page carries (no caching, no framing, a strict CSP).
Store calls are made through `call`, on a worker thread, so no event loop waits on them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from nxs.errors import BadRequest, PayloadTooLarge
from nxs.store.database import Database
from nxs.web import filters
from nxs.web.guard import SignInThrottle, check_csrf, new_token
from nxs.web.passwords import Passwords
from nxs.web.sessions import Session, Sessions

HERE = Path(__file__).parent
STATIC_PATH = "/static/web"  # the shared assets, served by every site under its prefix
MAX_FORM_BYTES = 64 * 1024
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src * data:;"
    " style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
}
P = ParamSpec("P")
T = TypeVar("T")


class Site:
    """A page family under `prefix` whose sessions are of `kind` (e.g. portal, /portal)."""

    def __init__(
        self,
        kind: str,
        prefix: str,
        templates: Path,
        database: Database,
        *,
        title: str,
        secure: bool = False,
    ) -> None:
        """`secure`: cookies are always Secure (the public URL is https, e.g. behind a TLS
        proxy); otherwise only pages that came over TLS set Secure cookies."""
        self.kind, self.prefix, self.title = kind, prefix.rstrip("/"), title
        self.secure = secure
        self.cookie = f"nxs_{kind}"
        self.csrf_cookie = f"nxs_{kind}_csrf"
        self.sessions = Sessions(database, kind)
        self.passwords = Passwords()
        self.throttle = SignInThrottle()
        self.env = Environment(
            loader=ChoiceLoader(
                [FileSystemLoader(templates), FileSystemLoader(HERE / "templates")]
            ),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        filters.install(self.env)
        self.env.globals.update(site_title=title, prefix=self.prefix, static=self.static_url)

    def static_url(self, name: str) -> str:
        return f"{self.prefix}{STATIC_PATH}/{name}"

    def static_app(self) -> StaticFiles:
        return StaticFiles(directory=HERE / "static")

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A store call on a worker thread (the event loop keeps serving the proxy)."""
        return await run_in_threadpool(function, *args, **kwargs)

    # -- sessions -----------------------------------------------------------------

    async def session(self, request: Request) -> Session | None:
        return await self.call(self.sessions.find, request.cookies.get(self.cookie))

    async def sign_in(self, request: Request, subject_id: str, to: str) -> Response:
        """Open a session for `subject_id` and redirect to `to` with its cookie."""
        await self.call(self.sessions.close, request.cookies.get(self.cookie))
        token, _ = await self.call(self.sessions.open, subject_id)
        response = self.redirect(to)
        self._set_cookie(request, response, self.cookie, token, int(self.sessions.ttl))
        return response

    async def sign_out(self, request: Request, to: str) -> Response:
        await self.call(self.sessions.close, request.cookies.get(self.cookie))
        response = self.redirect(to)
        response.delete_cookie(self.cookie, path=self.prefix)
        return response

    def redirect(self, to: str) -> RedirectResponse:
        return RedirectResponse(to, status_code=303, headers=HEADERS)

    # -- forms --------------------------------------------------------------------

    async def form(self, request: Request, session: Session | None) -> dict[str, str]:
        """The posted urlencoded form, after its CSRF token is checked (403 if wrong)."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise PayloadTooLarge("Form too large")
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("Malformed form") from exc
        expected = session.csrf if session else request.cookies.get(self.csrf_cookie)
        check_csrf(expected, fields.get("csrf"))
        return fields

    # -- pages --------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page; before sign-in it also sets the double-submit CSRF cookie its form uses."""
        anonymous = session is None
        csrf = session.csrf if session else request.cookies.get(self.csrf_cookie) or new_token()
        html = self.env.get_template(template).render(
            request=request, session=session, csrf=csrf, path=request.url.path, **context
        )
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if anonymous:
            self._set_cookie(request, response, self.csrf_cookie, csrf, 3600)
        return response

    def _set_cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.prefix,
            secure=self.secure or request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
