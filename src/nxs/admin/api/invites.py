"""The portal's admin routes: `POST /admin/v1/customers/{name}/invites` (a one-time
sign-up link, in this answer only: the store keeps its SHA-256) and `PUT
/admin/v1/plans/{name}/stripe-price` (sell a plan through Stripe). Each change is written
with its audit entry in one transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from nxs.admin import audit
from nxs.admin.api.context import StoreDep, context
from nxs.portal import accounts, stripe
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


class StripePriceIn(BaseModel):
    price: str | None = Field(
        default=None, max_length=100, description="a Stripe price id (price_…); null: not sold"
    )


class StripePriceOut(BaseModel):
    plan: str
    price: str | None


def set_stripe_price(name: str, body: StripePriceIn, store: StoreDep) -> StripePriceOut:
    """Sell the plan in the portal at this Stripe price (null stops selling it)."""
    with store.database.transaction():
        stripe.set_plan_price(store.database, name, body.price)
        price = stripe.plan_price(store.database, name)
        audit.record(store.database, audit.API, "plans.stripe_price", name, {"price": price or ""})
    return StripePriceOut(plan=name, price=price)


def routes() -> APIRouter:
    router = APIRouter()
    router.add_api_route(
        "/customers/{name}/invites",
        create_invite,
        methods=["POST"],
        status_code=201,
        tags=["customers"],
    )
    router.add_api_route(
        "/plans/{name}/stripe-price", set_stripe_price, methods=["PUT"], tags=["plans"]
    )
    return router
