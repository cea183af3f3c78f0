"""The web base's cookies and forms on a small page family of its own: the session
cookie is HttpOnly, SameSite=Lax and scoped to the family's path, Secure only over TLS,
and a form whose CSRF token does not match is refused before its handler runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nxs.errors import NxsError
from nxs.store.database import Database
from nxs.web.site import HERE, Site


def family(db: Database, secure: bool = False) -> Starlette:
    site = Site("demo", "/demo", Path(HERE / "templates"), db, title="Demo", secure=secure)

    async def form(request: Request) -> Response:
        return site.render(request, "sign_in.html", None, action="/demo/sign-in")

    async def sign_in(request: Request) -> Response:
        await site.form(request, None)
        return await site.sign_in(request, "subject-1", "/demo/home")

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NxsError)
        return Response(str(exc.detail), status_code=exc.status)

    routes = [Route("/demo/sign-in", form), Route("/demo/sign-in", sign_in, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={NxsError: refused})


def visit(
    db: Database, base: str, csrf: str | None = None, secure: bool = False
) -> tuple[httpx.Response, httpx.Response]:
    """GET the sign-in form, then POST it with its token (or with `csrf` instead)."""

    async def both() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=family(db, secure))
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            page = await client.get("/demo/sign-in")
            token = csrf or page.text.split('name="csrf" value="')[1].split('"')[0]
            return page, await client.post("/demo/sign-in", data={"csrf": token})

    return asyncio.run(both())


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_session_cookie_is_secure_only_over_tls(db: Database, scheme: str) -> None:
    _, signed = visit(db, f"{scheme}://portal.test")
    cookie = signed.headers["set-cookie"]
    assert signed.status_code == 303 and cookie.startswith("nxs_demo=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/demo" in cookie
    assert ("Secure" in cookie) is (scheme == "https")


def test_a_site_whose_public_url_is_https_always_sets_secure_cookies(db: Database) -> None:
    page, _ = visit(db, "http://behind-a-tls-proxy.test", secure=True)
    assert "Secure" in page.headers["set-cookie"]  # the form's CSRF cookie, too


def test_a_form_with_another_token_is_refused(db: Database) -> None:
    _, refused = visit(db, "http://portal.test", csrf="not-the-token")
    assert refused.status_code == 403
    assert db.fetch_all("SELECT token_hash FROM web_sessions") == []


def test_pages_forbid_framing_and_caching(db: Database) -> None:
    page, _ = visit(db, "http://portal.test")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
