"""A queued request's result, fetched from fal for the portal while fal still keeps it.

The request's binding (`queued_requests`) names the upstream key that submitted it; only
that key may read the result at fal, so the portal asks with it, once, when the customer
opens the request's page. Nothing is stored; a result fal no longer has shows as gone.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from nxs.config import Settings
from nxs.portal.data import RequestView
from nxs.store.store import Store

LOG = logging.getLogger("nxs.portal")
QUEUE_HOST = "queue.fal.run"


def _app_id(endpoint: str) -> str:
    """fal's queue paths name the app (owner/alias), not the full endpoint."""
    return "/".join(endpoint.split("/")[:2])


def result_target(store: Store, settings: Settings, row: RequestView) -> tuple[str, str] | None:
    """(URL, upstream secret) to read the result at fal with; None if it cannot be read."""
    if not row.request_id:
        return None
    bound = store.find_queued(row.request_id)
    if bound is None:
        return None
    key = next((k for k in store.upstream_keys() if k.id == bound.upstream_key_id), None)
    if key is None:
        return None
    base = settings.upstream_base(QUEUE_HOST)
    return f"{base}/{_app_id(row.endpoint)}/requests/{row.request_id}", key.secret


async def fetch_result(target: tuple[str, str]) -> Any | None:
    """The result JSON, or None when fal has it no more (or cannot be asked now)."""
    url, secret = target
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
            http.get(url, headers={"Authorization": f"Key {secret}"}) as response,
        ):
            if response.status != 200:
                return None
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        LOG.warning("a result could not be fetched from fal")
        return None
