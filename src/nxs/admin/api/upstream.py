"""`/admin/v1/upstream-keys`: the pool of fal keys, always shown masked.

A key's secret arrives in the JSON body of the add call, is sealed by the store, and is
never answered back, logged or audited; answers carry `key` masked (`abcd…wxyz`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from nxs.admin import audit
from nxs.admin.api.context import LiveUpstream, StoreDep, live_upstream
from nxs.admin.api.schemas import UpstreamCreate, UpstreamOut, UpstreamSet
from nxs.admin.output import upstream_record
from nxs.errors import BadRequest
from nxs.store.models import UpstreamKey

LiveDep = Annotated[LiveUpstream | None, Depends(live_upstream)]


def list_upstream(store: StoreDep, live: LiveDep) -> list[UpstreamOut]:
    """Every upstream key with its state, weight, concurrency, last error and live counters
    (learned limit, runs in flight, requests outstanding at fal, cooldown left); masked."""
    return [_masked(key, live) for key in store.list_upstream()]


def add_upstream(body: UpstreamCreate, store: StoreDep) -> UpstreamOut:
    """Add a fal key to the pool (the answer shows it masked, once and forever)."""
    with store.database.transaction():
        key = store.add_upstream(body.name, body.secret, body.weight, body.concurrency)
        detail: audit.Detail = {"id": key.id, "weight": key.weight, "concurrency": key.concurrency}
        audit.record(store.database, audit.API, "upstream.add", key.name, detail)
    return _masked(key)


def set_upstream(name: str, body: UpstreamSet, store: StoreDep) -> UpstreamOut:
    """Change a key's weight and/or concurrency; running gateways pick it up at once."""
    if body.weight is None and body.concurrency is None:
        raise BadRequest("Nothing to change: give weight and/or concurrency")
    with store.database.transaction():
        key = store.set_upstream(name, weight=body.weight, concurrency=body.concurrency)
        detail: audit.Detail = {"id": key.id, "weight": key.weight, "concurrency": key.concurrency}
        audit.record(store.database, audit.API, "upstream.set", key.name, detail)
    return _masked(key)


def get_upstream(name: str, store: StoreDep, live: LiveDep) -> UpstreamOut:
    return _masked(store.get_upstream(name), live)


def remove_upstream(name: str, store: StoreDep) -> UpstreamOut:
    """Remove a key from the pool; its past requests keep their records."""
    with store.database.transaction():
        key = store.remove_upstream(name)
        audit.record(store.database, audit.API, "upstream.remove", key.name, {"id": key.id})
    return _masked(key)


def enable_upstream(name: str, store: StoreDep) -> UpstreamOut:
    """Put a key marked invalid or suspended back in the pool."""
    with store.database.transaction():
        before = store.get_upstream(name)
        key = store.enable_upstream(name)
        if before.state != "active":
            detail = {"id": key.id, "was": before.state}
            audit.record(store.database, audit.API, "upstream.enable", name, detail)
    return _masked(key)


def routes() -> APIRouter:
    router = APIRouter(tags=["upstream keys"])
    add = router.add_api_route
    add("/upstream-keys", list_upstream, methods=["GET"])
    add("/upstream-keys", add_upstream, methods=["POST"], status_code=201)
    add("/upstream-keys/{name}", get_upstream, methods=["GET"])
    add("/upstream-keys/{name}", set_upstream, methods=["PATCH"])
    add("/upstream-keys/{name}", remove_upstream, methods=["DELETE"])
    add("/upstream-keys/{name}/enable", enable_upstream, methods=["POST"])
    return router


def _masked(key: UpstreamKey, live: LiveUpstream | None = None) -> UpstreamOut:
    return UpstreamOut(**upstream_record(key), live=live(key.id) if live else None)
