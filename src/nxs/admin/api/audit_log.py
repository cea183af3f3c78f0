"""`/admin/v1/audit`: the audit log of admin actions, newest first, filterable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from nxs.admin import audit
from nxs.admin.api.context import StoreDep
from nxs.admin.api.schemas import AuditEntryOut
from nxs.admin.api.timeparse import parse_instant
from nxs.admin.output import timestamp


def list_audit(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = audit.DEFAULT_LIMIT,
    action: str | None = None,
    target: str | None = None,
    since: Annotated[str | None, Query(description="ISO date or date-time (UTC)")] = None,
) -> list[AuditEntryOut]:
    """Who did what to which target, when; never a secret."""
    start = parse_instant(since, "since") if since is not None else None
    found = audit.entries(store.database, limit=limit, action=action, target=target, since=start)
    return [
        AuditEntryOut(
            id=entry.id,
            at=timestamp(entry.at) or "",
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            detail=entry.detail,
        )
        for entry in found
    ]


def routes() -> APIRouter:
    router = APIRouter(tags=["audit"])
    router.add_api_route("/audit", list_audit, methods=["GET"])
    return router
