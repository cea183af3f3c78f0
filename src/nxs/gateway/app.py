"""The gateway as a raw ASGI app: `create_app(settings)` for tests and embedding,
`app_from_env()` as uvicorn's factory (one per worker). Each request is routed,
authenticated, forwarded, counted and logged; every error is answered in fal's shape.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

from nxs.admin.api import AdminApi, admin_app, is_admin_path
from nxs.config import Settings
from nxs.console.app import console_app, is_console_path
from nxs.errors import MethodNotAllowed, NotFound, NxsError
from nxs.gateway import routes, shutdown
from nxs.gateway.accesslog import AccessLog
from nxs.gateway.edge import Edge
from nxs.gateway.exchange import ClientGone, Exchange, Scope
from nxs.gateway.handlers import Handlers
from nxs.gateway.proxy import parse_target
from nxs.gateway.services import Services
from nxs.ops import logs
from nxs.ops.cors import CorsPolicy
from nxs.ops.proxies import TrustedProxies
from nxs.platform.app import PlatformApi, is_platform_path, platform_app
from nxs.portal.app import is_portal_path, portal_app

LOG = logging.getLogger("nxs.gateway")
REALTIME_STOP_SECONDS = 2.0  # at SIGTERM: longest wait for realtime sessions to close
PUBLIC = frozenset({routes.HEALTH, routes.READY, routes.METRICS, routes.FAL_WEBHOOK, routes.JWKS})


class Gateway:
    """The ASGI callable; its services live between lifespan startup and shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.access_log = AccessLog(settings.access_log)
        proxies = TrustedProxies.parse(",".join(settings.trusted_proxies))
        cors = CorsPolicy.parse(",".join(settings.cors_origins))
        self.edge = Edge(proxies, cors, settings.metrics_port, settings.metrics_token)
        self.services: Services | None = None
        self.handlers: Handlers | None = None
        self.admin: AdminApi | None = None  # /admin: built with the services
        self.portal: Any = None  # /portal and /webhooks/stripe: built with the services
        self.platform: PlatformApi | None = None  # /v1: fal's Platform API, per customer
        self.console: Any = None  # /console: the operator console, built with the services
        # Request ids: a random prefix per process and a counter (no syscall per request).
        self._id_prefix = os.urandom(4).hex()
        self._sequence = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            if self.admin is not None and is_admin_path(scope["path"]):
                await self.admin(scope, receive, send)
                return
            if self.portal is not None and is_portal_path(scope["path"]):
                await self.portal(self.edge.web_scope(scope), receive, send)
                return
            if self.platform is not None and is_platform_path(scope["path"]):
                await self.platform(scope, receive, send)
                return
            if self.console is not None and is_console_path(scope["path"]):
                await self.console(self.edge.web_scope(scope), receive, send)
                return
            request_id = f"{self._id_prefix}{next(self._sequence):08x}"
            await self.handle(Exchange(scope, receive, send, request_id))
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "websocket" and self.services is not None:
            await self.services.realtime(scope, receive, send)  # /{endpoint}/realtime

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.services = Services.start(self.settings)
                    await self.services.webhooks.start()
                except Exception as exc:
                    LOG.exception("gateway startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.handlers = Handlers(self.services)
                self.services.metrics.readings.append(self._figures)
                shutdown.before_stopping(self.before_stopping)
                self.admin = admin_app(self.settings, self.services.store, self.services.live)
                self.portal = portal_app(self.settings, self.services.store)
                self.platform = platform_app(self.services)
                self.console = console_app(self.settings, self.services.store, self.services.pool)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.services is not None:
                    await self.services.stop()
                self.access_log.close()
                logs.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def before_stopping(self) -> None:
        """At SIGTERM, before uvicorn stops accepting: realtime sessions end with 1001."""
        if self.services is not None:
            await self.services.realtime.stop_sessions(REALTIME_STOP_SECONDS)

    def _figures(self) -> dict[str, int]:
        """This worker's figures for /metrics (`metrics.FIGURES`)."""
        services = self.services
        if services is None:
            return {}
        return {
            "nxs_realtime_sessions": services.realtime.active,
            "nxs_ledger_writer_outage": int(services.meter.writer.outage),
            "nxs_log_lines_dropped_total": self.access_log.dropped,
            **{
                f"nxs_webhook_deliveries_{outcome}_total": count
                for outcome, count in services.webhooks.relay.deliveries.items()
            },
        }

    async def handle(self, ex: Exchange) -> None:
        started = time.perf_counter()
        logs.REQUEST_ID.set(ex.request_id)
        try:
            self.edge.admit(ex)
            if self.edge.is_preflight(ex):
                await self.edge.preflight(ex)
            else:
                await self.dispatch(ex)
        except ClientGone as gone:
            ex.status = gone.status
        except NxsError as error:
            if not ex.started:
                await ex.respond_error(error)
        except Exception:
            LOG.exception("request %s failed", ex.request_id)
            if not ex.started:
                await ex.respond_error(NxsError())
        finally:
            seconds = time.perf_counter() - started
            if self.services is not None:
                self.services.metrics.observe_request(ex.route, ex.status, seconds)
            self.access_log.write(ex, seconds)

    async def dispatch(self, ex: Exchange) -> None:
        """Route, authenticate and forward one request."""
        handlers, services = self.handlers, self.services
        if handlers is None or services is None:
            raise NxsError("Gateway not started")
        route = services.router.match(ex.method, ex.path)
        ex.route = route.kind
        if route.kind == routes.METRICS:
            self.edge.check_metrics(ex)
        elif route.kind not in (routes.HEALTH, routes.READY) and self.edge.on_metrics_port(ex):
            raise NotFound()
        if route.kind in PUBLIC:
            await getattr(handlers, route.kind)(ex)
            return
        grant = await services.auth.authenticate(ex.authorization)
        ex.customer = grant.customer_name
        query = ex.query
        if route.kind == routes.PROXY:
            if ex.method not in ("GET", "POST", "PUT"):
                raise MethodNotAllowed()
            route, query = parse_target(ex.target, ex.method, services.router)
            ex.route = f"proxy_{route.kind}"
        await handlers.forward(ex, route, grant, query)


def create_app(settings: Settings) -> Gateway:
    """The gateway ASGI app for these settings (services start with the lifespan)."""
    return Gateway(settings)


def app_from_env() -> Gateway:
    """uvicorn's factory: settings from the `NXS_` environment, in each worker."""
    return Gateway(Settings.from_env())
