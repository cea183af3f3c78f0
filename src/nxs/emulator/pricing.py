"""The platform API's pricing, `GET /api.fal.ai/v1/models/pricing?endpoint_id=a,b`:
unit prices from the model table. As fal's OpenAPI spec says: endpoint_id is required
(1–50 ids, else 400); unknown ids are left out, and 404 when none is known. Errors take
the platform API's own shape, `{"error": {"type", "message"}}`.
"""

from __future__ import annotations

from aiohttp import web

from nxs.emulator import accounts
from nxs.emulator.models import REGISTRY_KEY
from nxs.emulator.state import STATE_KEY
from nxs.emulator.wire import json_response
from nxs.errors import NxsError

MAX_PRICING_IDS = 50
PLATFORM_TYPES = {401: "authorization_error", 403: "authorization_error", 429: "rate_limited"}


def platform_error(status: int, kind: str, message: str) -> web.Response:
    return json_response({"error": {"type": kind, "message": message}}, status)


def _endpoint_ids(request: web.Request) -> list[str]:
    """`endpoint_id` values, comma-separated or repeated, in the order given."""
    ids: list[str] = []
    for value in request.query.getall("endpoint_id", []):
        ids.extend(part.strip() for part in value.split(",") if part.strip())
    return ids


async def pricing(request: web.Request) -> web.Response:
    """Unit prices of the named endpoints that exist."""
    state = request.app[STATE_KEY]
    try:
        account = accounts.authenticate(request.headers.get("Authorization"), state.rng)
    except NxsError as error:
        state.record(request.method, request.path, None)
        kind = PLATFORM_TYPES.get(error.status, "server_error")
        return platform_error(error.status, kind, str(error.detail))
    state.record(request.method, request.path, account.account_id)
    ids = _endpoint_ids(request)
    if not ids or len(ids) > MAX_PRICING_IDS:
        message = f"endpoint_id is required: 1 to {MAX_PRICING_IDS} endpoint ids"
        return platform_error(400, "validation_error", message)
    prices = request.app[REGISTRY_KEY].prices(ids)
    if not prices:
        message = f"No pricing found for endpoint_id {', '.join(ids)}"
        return platform_error(404, "not_found", message)
    return json_response({"prices": prices, "next_cursor": None, "has_more": False})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api.fal.ai/v1/models/pricing", pricing)
