"""The Platform API's model search, `GET /api.fal.ai/v1/models`, over the model table.

fal's shape: `{"models": [{"endpoint_id", "metadata": {display_name, category, …}}],
"next_cursor", "has_more"}`, paged by `limit` (1–100, default 50) and an opaque
`cursor` (base64 of the page number, as fal's); `endpoint_id` (repeated or comma list)
finds ids, `q`, `category` and `status` filter. A key is optional, as on fal; a bad
one gets the platform API's 401.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from aiohttp import web

from nxs.emulator import accounts
from nxs.emulator.models import REGISTRY_KEY, Model
from nxs.emulator.pricing import PLATFORM_TYPES, platform_error
from nxs.emulator.state import STATE_KEY
from nxs.emulator.wire import json_response
from nxs.errors import NxsError

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 100
UPDATED_AT: Final = "2026-11-01T00:00:00Z"


class BadQuery(Exception):
    """A query parameter fal's API would refuse (400 validation_error)."""


def metadata(model: Model) -> dict[str, Any]:
    """fal's metadata object (its required fields) for one endpoint."""
    return {
        "display_name": model.display_name,
        "category": model.category,
        "description": f"Emulated {model.category} endpoint {model.endpoint_id}",
        "status": "active",
        "tags": [],
        "updated_at": UPDATED_AT,
        "is_favorited": None,
        "thumbnail_url": "https://v3.fal.media/files/emulator/thumbnail.jpg",
        "model_url": f"https://fal.run/{model.endpoint_id}",
        "date": UPDATED_AT,
        "highlighted": False,
        "pinned": False,
    }


def _values(request: web.Request, name: str) -> list[str]:
    return [
        part.strip()
        for raw in request.query.getall(name, [])
        for part in raw.split(",")
        if part.strip()
    ]


def _matches(request: web.Request, model: Model) -> bool:
    ids, text = _values(request, "endpoint_id"), request.query.get("q", "").lower()
    category, status = request.query.get("category"), request.query.get("status")
    if ids and model.endpoint_id not in ids:
        return False
    if text and text not in f"{model.endpoint_id} {model.display_name} {model.category}".lower():
        return False
    return (category is None or category == model.category) and status in (None, "active")


def _page_bounds(request: web.Request) -> tuple[int, int]:
    """(page number, limit) from `cursor` and `limit`; raises `BadQuery`."""
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
        cursor = request.query.get("cursor")
        page = int(base64.b64decode(cursor, validate=True)) if cursor else 0
    except (ValueError, binascii.Error) as exc:
        raise BadQuery("limit must be an integer and cursor one this API handed out") from exc
    if not 1 <= limit <= MAX_LIMIT or page < 0:
        raise BadQuery(f"limit must be 1 to {MAX_LIMIT}; cursor one this API handed out")
    return page, limit


async def models(request: web.Request) -> web.Response:
    """One page of the endpoints matching the query."""
    state = request.app[STATE_KEY]
    account_id = None
    if "Authorization" in request.headers:
        try:
            account_id = accounts.authenticate(
                request.headers["Authorization"], state.rng
            ).account_id
        except NxsError as error:
            state.record(request.method, request.path, None)
            kind = PLATFORM_TYPES.get(error.status, "server_error")
            return platform_error(error.status, kind, str(error.detail))
    state.record(request.method, request.path, account_id)
    try:
        page, limit = _page_bounds(request)
    except BadQuery as problem:
        return platform_error(400, "validation_error", str(problem))
    chosen = [model for model in request.app[REGISTRY_KEY].all() if _matches(request, model)]
    window = chosen[page * limit : (page + 1) * limit]
    more = len(chosen) > (page + 1) * limit
    cursor = base64.b64encode(str(page + 1).encode()).decode() if more else None
    entries = [{"endpoint_id": model.endpoint_id, "metadata": metadata(model)} for model in window]
    return json_response({"models": entries, "next_cursor": cursor, "has_more": more})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api.fal.ai/v1/models", models)
