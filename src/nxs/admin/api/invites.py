"""`/admin/v1/customers/{name}/invites`: a one-time portal sign-up link for a customer.

The link's token is in this answer only (the store keeps its SHA-256); it is written with
its audit entry in one transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from nxs.admin import audit
from nxs.admin.api.context import StoreDep, context
from nxs.portal import accounts
from nxs.portal.cli import DEFAULT_BASE_URL


class InviteCreate(BaseModel):
    email: str = Field(max_length=254, description="the address the customer signs in with")


class InviteOut(BaseModel):
    customer: str
    email: str
    link: str = Field(description="the sign-up link: works once, shown only in this answer")
    expires_at: float


def create_invite(name: str, body: InviteCreate, store: StoreDep, request: Request) -> InviteOut:
    """Invite the customer to the portal; the answer carries the link, once."""
    with store.database.transaction():
        invite = accounts.invite(store.database, name, body.email)
        audit.record(store.database, audit.API, "customers.invite", name, {"email": invite.email})
    base = context(request).settings.public_url or str(request.base_url) or DEFAULT_BASE_URL
    return InviteOut(
        customer=invite.customer_name,
        email=invite.email,
        link=invite.link(base),
        expires_at=invite.expires_at,
    )


def routes() -> APIRouter:
    router = APIRouter()
    router.add_api_route(
        "/customers/{name}/invites",
        create_invite,
        methods=["POST"],
        status_code=201,
        tags=["customers"],
    )
    return router
