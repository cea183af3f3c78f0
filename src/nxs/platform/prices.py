"""What a customer pays: its own unit prices (the operator's price × its plan's
multiplier, in fal's units) and fal's two cost estimates, `unit_price` (units × price)
and `historical_api_price` (calls × what a call of that endpoint has cost it, else one
call's default units at its price). Plain functions over a `Database`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from nxs.billing import catalog
from nxs.billing.errors import NoPrice
from nxs.billing.estimate import defaults_for, estimate_units
from nxs.billing.money import Money
from nxs.billing.plans import DEFAULT_PLAN, Plan, Subscription
from nxs.billing.pricing import PriceBook, PriceRule
from nxs.errors import NotFound
from nxs.store.database import Database
from nxs.store.ids import now

EstimateType = Literal["historical_api_price", "unit_price"]
HISTORY_SECONDS: Final = 90 * 86400  # how far back a call's historical cost is read
CURRENCY: Final = "USD"


@dataclass(frozen=True)
class CustomerPrice:
    endpoint: str  # an endpoint id (or, in `price_list`, the rule's glob)
    unit: str
    unit_price: Decimal  # USD per unit for this customer
    currency: str = CURRENCY


def plan_for(db: Database, customer_id: str) -> tuple[Plan, Subscription]:
    """The customer's plan (`default` when none is set or its plan is gone) and
    subscription."""
    subscription = catalog.get_subscription(db, customer_id)
    try:
        return catalog.get_plan(db, subscription.plan), subscription
    except NotFound:
        return DEFAULT_PLAN, subscription


def _priced(book: PriceBook, plan: Plan, endpoint: str) -> CustomerPrice | None:
    if not plan.endpoint_allowed(endpoint):
        return None
    try:
        rule = book.price(endpoint)
    except NoPrice:
        return None
    return _customer_price(endpoint, rule, plan)


def _customer_price(endpoint: str, rule: PriceRule, plan: Plan) -> CustomerPrice:
    price = (rule.unit_price * plan.multiplier).normalize()
    return CustomerPrice(endpoint, rule.unit.value, price)


def customer_prices(
    db: Database, customer_id: str, endpoints: Iterable[str]
) -> list[CustomerPrice]:
    """The customer's price of each endpoint it may call that has one, in the given order."""
    book, (plan, _) = catalog.price_book(db), plan_for(db, customer_id)
    found = (_priced(book, plan, endpoint) for endpoint in dict.fromkeys(endpoints))
    return [price for price in found if price is not None]


def price_list(db: Database, customer_id: str) -> list[CustomerPrice]:
    """Every price rule the customer's plan allows, at its price, by pattern (the portal)."""
    plan, _ = plan_for(db, customer_id)
    return [
        _customer_price(rule.pattern, rule, plan)
        for rule, _source in catalog.list_prices(db)
        if plan.endpoint_allowed(rule.pattern)
    ]


def estimate(
    db: Database, customer_id: str, kind: EstimateType, quantities: Mapping[str, Decimal]
) -> Money:
    """The total cost of `quantities` (units, or calls for `historical_api_price`) per
    endpoint; `NotFound` names an endpoint the customer has no price for."""
    book, (plan, _) = catalog.price_book(db), plan_for(db, customer_id)
    total = Decimal(0)
    for endpoint, quantity in quantities.items():
        price = _priced(book, plan, endpoint)
        if price is None:
            raise NotFound(f"No price for endpoint '{endpoint}'")
        if kind == "unit_price":
            total += quantity * price.unit_price
        else:
            total += quantity * _cost_per_call(db, customer_id, endpoint, book, plan)
    return Money.from_decimal(total)


def _cost_per_call(
    db: Database, customer_id: str, endpoint: str, book: PriceBook, plan: Plan
) -> Decimal:
    """What a call of `endpoint` cost the customer on average lately (USD), else what one
    call with default input costs at today's price."""
    row = db.fetch_one(
        "SELECT COUNT(*) AS calls, SUM(cost_micros) AS micros FROM ledger"
        " WHERE customer_id = ? AND endpoint = ? AND status = 'settled' AND created_at >= ?",
        (customer_id, endpoint, now() - HISTORY_SECONDS),
    )
    if row is not None and int(row["calls"] or 0) > 0:
        return Money(int(row["micros"] or 0)).to_decimal() / int(row["calls"])
    rule = book.price(endpoint)
    units = estimate_units(rule.unit, {}, defaults_for(endpoint))
    return units * rule.unit_price * plan.multiplier
