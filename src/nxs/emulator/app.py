"""`create_app`: the emulator's aiohttp application, every fal host under its prefix.

E2's hosts (storage, realtime, tokens, webhooks) register first; then the queue,
run, CDN and pricing routes, whose `/fal.run/…` and `/queue.fal.run/…` catch-alls
must come last. `/healthz`, `/_emulator/received` and `/_emulator/accounts` are its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from nxs.emulator import (
    catalogue,
    cdn,
    pricing,
    queue_host,
    realtime,
    run_host,
    storage,
    tokens,
    webhooks,
)
from nxs.emulator.jobs import SCHEDULER_KEY, Scheduler
from nxs.emulator.models import REGISTRY_KEY, ModelRegistry
from nxs.emulator.state import STATE_KEY, EmulatorConfig, EmulatorState
from nxs.emulator.wire import error_middleware, json_response
from nxs.errors import BadRequest


async def healthz(request: web.Request) -> web.Response:
    return json_response({"ok": True})


async def received(request: web.Request) -> web.Response:
    """What reached the fal hosts: method, path, account id and time of each request.

    `?since=<unix time>` keeps only the entries from that time on.
    """
    state = request.app[STATE_KEY]
    try:
        since = float(request.query.get("since") or 0)
    except ValueError as exc:
        raise BadRequest("since must be a Unix time in seconds") from exc
    entries = [entry.as_json() for entry in state.received if entry.time >= since]
    return json_response({"received": entries})


async def accounts(request: web.Request) -> web.Response:
    """Each account's requests in progress and in queue now, and its peak in progress."""
    return json_response({"accounts": request.app[SCHEDULER_KEY].accounts()})


async def _scheduler_lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SCHEDULER_KEY].close()


def create_app(config: EmulatorConfig) -> web.Application:
    """The emulator for `config`; one state object shared by every host's routes."""
    app = web.Application(middlewares=[error_middleware], client_max_size=config.max_body_bytes)
    state = EmulatorState(config)
    if config.seed is not None:
        state.rng.seed(config.seed)
    app[STATE_KEY] = state
    app[REGISTRY_KEY] = ModelRegistry()
    app[SCHEDULER_KEY] = Scheduler(state)
    storage.add_routes(app)
    realtime.add_routes(app)
    tokens.add_routes(app)
    webhooks.add_routes(app)
    # cleanups run in reverse: jobs are cancelled before the webhook sender closes
    app.cleanup_ctx.append(_scheduler_lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/_emulator/received", received)
    app.router.add_get("/_emulator/accounts", accounts)
    cdn.add_routes(app)
    pricing.add_routes(app)
    catalogue.add_routes(app)
    queue_host.add_routes(app)
    run_host.add_routes(app)
    return app
