"""Bodies of the billing part of the admin API: plans, subscriptions, credit, prices, usage.

Amounts are USD decimals, accepted as JSON strings ("12.50") or numbers and answered as
strings. Their values are checked by the billing core itself (`plan_from_options`,
`Money.parse`), so a bad amount is a 422 naming the field, as everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, StrictInt

from nxs.admin.api.schemas import Strict
from nxs.billing.plans import SubscriptionStatus


def _not_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a decimal number")
    return value


Amount = Annotated[str | int | float, BeforeValidator(_not_boolean)]
USD = 'USD decimal, e.g. "12.50"'


class PlanCreate(Strict):
    name: str = Field(description="1-64 of a-z, 0-9, '_', '-', '.'")
    prepaid: StrictBool = Field(default=False, description="credit only from grants")
    monthly_credit: Amount | None = Field(
        default=None, description=f"a monthly allowance ({USD}); omit for metered or prepaid"
    )
    rpm: StrictInt | None = Field(
        default=None, description="requests per minute, per key and customer"
    )
    max_in_flight: StrictInt | None = Field(default=None, description="requests in flight at once")
    endpoints: list[str] | str | None = Field(
        default=None, description='allowed endpoint globs, e.g. ["fal-ai/flux/*"]; none = all'
    )
    multiplier: Amount = Field(default="1", description='price multiplier, e.g. "1.25"')
    priority: StrictInt = Field(
        default=1, description="weight of its customers' turns while runs wait for a slot"
    )


class PlanUpdate(Strict):
    """A plan's full new definition (the name comes from the path)."""

    prepaid: StrictBool = False
    monthly_credit: Amount | None = None
    rpm: StrictInt | None = None
    max_in_flight: StrictInt | None = None
    endpoints: list[str] | str | None = None
    multiplier: Amount = "1"
    priority: StrictInt = 1


class PlanOut(BaseModel):
    name: str
    mode: Literal["metered", "monthly", "prepaid"]
    monthly_credit: str
    rpm: int | None
    max_in_flight: int | None
    endpoints: list[str]
    multiplier: str
    priority: int


class SubscriptionSet(Strict):
    plan: str
    until: str | None = Field(
        default=None, description="last active day (2026-12-31) or an ISO date-time; none = open"
    )
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE


class SubscriptionOut(BaseModel):
    customer: str
    plan: str
    status: Literal["active", "past_due", "canceled"]
    until: str | None = Field(description="exclusive end, ISO 8601 UTC")
    active: bool = Field(description="whether requests are admitted now")


class CreditGrant(Strict):
    amount: Amount = Field(description=f"credit to add, {USD}; must be > 0")
    note: str | None = Field(default=None, max_length=500)


class GrantOut(BaseModel):
    id: str
    amount: str = Field(description="USD")
    note: str | None
    created_at: str


class BalanceOut(BaseModel):
    customer: str
    available: str = Field(description="spendable now (USD)")
    reserved: str = Field(description="held by requests still running (USD)")
    allowance_left: str = Field(description="unspent part of this month's allowance (USD)")
    period: str


class PriceSet(Strict):
    pattern: str = Field(min_length=1, max_length=200, description="endpoint id or glob")
    unit: str = Field(description="image, megapixel, video_second, request or gpu_second")
    unit_price: Amount = Field(description="USD per unit")


class PriceOut(BaseModel):
    pattern: str
    unit: str
    unit_price: str
    source: Literal["operator", "sync"]


class UnknownPolicy(Strict):
    """What an endpoint without a price rule costs."""

    refuse: StrictBool = Field(description="true: such endpoints answer 403 'No price configured'")
    request_price: Amount = Field(default="0", description="else, USD charged per request")


class UsageTotalOut(BaseModel):
    """Totals of one group of ledger rows."""

    group_by: Literal["customer", "key", "endpoint", "day"]
    group: str = Field(description="the customer name, key id, endpoint id or UTC date")
    requests: int
    settled: int = Field(description="requests charged")
    refunded: int
    cost: str = Field(description="charged by settled requests, USD")
    pending: str = Field(description="held by requests not settled yet, USD")


class LedgerRowOut(BaseModel):
    """One billable request as the ledger holds it."""

    id: str
    request_id: str | None
    customer: str
    key_id: str
    upstream_key_id: str | None
    endpoint: str
    kind: str = Field(description="run or queue")
    status: str = Field(description="reserved, pending, settled or refunded")
    unit: str
    unit_price: str
    multiplier: str
    units: str | None
    units_source: str | None
    reserved: str = Field(description="held at admission, USD")
    cost: str | None = Field(description="charged, USD (none while open)")
    latency_ms: int | None
    created_at: str
    settled_at: str | None
