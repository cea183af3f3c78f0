"""The portal's ASGI app (Starlette), mounted by the gateway at `/portal` and
`/webhooks/stripe`, off the hot path: routes, the signed-in guard and error pages.

Pages are HTML; an NXS error becomes a page with its status (404 for anything not the
customer's own), the Stripe webhook answers JSON in fal's error shape.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from nxs.config import Settings
from nxs.errors import NotFound, NxsError
from nxs.portal.pages import Pages, SignInNeeded
from nxs.portal.stripe import StripeClient, StripeConfig
from nxs.store.store import Store
from nxs.web.site import STATIC_PATH, Site

LOG = logging.getLogger("nxs.portal")
PREFIX = "/portal"
STRIPE_WEBHOOK = "/webhooks/stripe"
_PREFIXES = (PREFIX, STRIPE_WEBHOOK)


def is_portal_path(path: str) -> bool:
    """Whether the gateway hands this path to the portal app."""
    if not path.startswith(_PREFIXES):  # the proxy's paths: one C-level test
        return False
    return path in (PREFIX, STRIPE_WEBHOOK) or path.startswith(PREFIX + "/")


def stripe_config(settings: Settings) -> StripeConfig | None:
    """Stripe's settings when both secrets are set; None: no Stripe buttons, no webhook."""
    if not (settings.stripe_secret_key and settings.stripe_webhook_secret):
        return None
    return StripeConfig(
        settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_url
    )


def portal_app(settings: Settings, store: Store) -> Starlette:
    site = Site(
        "portal",
        PREFIX,
        Path(__file__).parent / "templates",
        store.database,
        title="Portal",
        secure=(settings.public_url or "").startswith("https://"),
    )
    config = stripe_config(settings)
    pages = Pages(site, store, settings, StripeClient(config) if config else None)
    routes = [
        Route(PREFIX, pages.home),
        Route(PREFIX + "/", pages.home),
        Route(PREFIX + "/sign-in", pages.sign_in_form),
        Route(PREFIX + "/sign-in", pages.sign_in, methods=["POST"]),
        Route(PREFIX + "/sign-out", pages.sign_out, methods=["POST"]),
        Route(PREFIX + "/sign-up/{token}", pages.sign_up_form),
        Route(PREFIX + "/sign-up/{token}", pages.sign_up, methods=["POST"]),
        Route(PREFIX + "/overview", pages.overview),
        Route(PREFIX + "/keys", pages.keys),
        Route(PREFIX + "/keys", pages.create_key, methods=["POST"]),
        Route(PREFIX + "/keys/{key_id}/revoke", pages.revoke_key, methods=["POST"]),
        Route(PREFIX + "/usage", pages.usage),
        Route(PREFIX + "/usage.csv", pages.usage_csv),
        Route(PREFIX + "/requests/{ledger_id}", pages.request_detail),
        Route(PREFIX + "/prices", pages.prices),
        Route(PREFIX + "/quickstart", pages.quickstart),
        Route(PREFIX + "/billing", pages.billing),
        Route(PREFIX + "/billing/top-up", pages.top_up, methods=["POST"]),
        Route(PREFIX + "/billing/subscribe", pages.subscribe, methods=["POST"]),
        Route(STRIPE_WEBHOOK, pages.stripe_webhook, methods=["POST"]),
        Mount(PREFIX + STATIC_PATH, app=site.static_app()),
    ]

    async def signed_out(request: Request, exc: Exception) -> Response:
        return site.redirect(f"{PREFIX}/sign-in")

    async def failed(request: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, NxsError) else NxsError()
        if not isinstance(exc, NxsError):
            LOG.error("portal %s failed", request.url.path, exc_info=exc)
        if request.url.path == STRIPE_WEBHOOK:
            return JSONResponse(error.body(), status_code=error.status)
        session = await site.session(request)
        page = site.render(
            request,
            "message.html",
            session,
            status=error.status,
            heading="Sorry",
            message=str(error.detail),
            link=f"{PREFIX}/overview",
            link_label="Back to the portal",
            nav=pages.nav,
        )
        for name, value in getattr(error, "headers", {}).items():
            page.headers[name] = value
        return page

    async def not_found(request: Request, exc: Exception) -> Response:
        return await failed(request, NotFound("Page not found"))

    return Starlette(
        routes=routes,
        exception_handlers={
            SignInNeeded: signed_out,
            NxsError: failed,
            404: not_found,
            405: not_found,
            Exception: failed,
        },
    )
