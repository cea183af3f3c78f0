"""`/admin/v1/plans` and `/admin/v1/prices`: what customers may call and what it costs.

Plans are built by the billing core's `plan_from_options` (the same checks as
`nxs plans create`); every change is audited in the transaction that makes it, and
running gateways pick it up with the next store-version poll.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from nxs.admin import audit
from nxs.admin.api.billing_schemas import (
    PlanCreate,
    PlanOut,
    PlanUpdate,
    PriceOut,
    PriceSet,
    UnknownPolicy,
)
from nxs.admin.api.context import StoreDep
from nxs.billing import catalog
from nxs.billing.plans import Plan, plan_from_options
from nxs.billing.pricing import PriceRule, UnknownEndpoints, parse_unit_price
from nxs.store.store import Store


def list_plans(store: StoreDep) -> list[PlanOut]:
    """Every plan, `default` included."""
    return [plan_out(plan) for plan in catalog.list_plans(store.database)]


def create_plan(body: PlanCreate, store: StoreDep) -> PlanOut:
    """Create a plan: metered (default), `prepaid`, or with a `monthly_credit`."""
    plan = _plan(body.name, body)
    return _save(store, plan, replace=False)


def get_plan(name: str, store: StoreDep) -> PlanOut:
    return plan_out(catalog.get_plan(store.database, name))


def replace_plan(name: str, body: PlanUpdate, store: StoreDep) -> PlanOut:
    """Redefine an existing plan (e.g. `default`, which every new customer starts on)."""
    catalog.get_plan(store.database, name)
    return _save(store, _plan(name, body), replace=True)


def list_prices(store: StoreDep) -> list[PriceOut]:
    """Price rules (operator's own, and imported by `nxs pricing sync`)."""
    return [price_out(rule, source) for rule, source in catalog.list_prices(store.database)]


def set_price(body: PriceSet, store: StoreDep) -> PriceOut:
    """Create or replace the operator's rule for an endpoint id or glob."""
    price = parse_unit_price(body.unit_price, "unit_price")
    with store.database.transaction():
        rule = catalog.set_price(store.database, body.pattern, body.unit, price)
        detail: audit.Detail = {"unit": rule.unit.value, "unit_price": str(rule.unit_price)}
        audit.record(store.database, audit.API, "pricing.set", rule.pattern, detail)
    return price_out(rule, "operator")


def get_unknown_policy(store: StoreDep) -> UnknownPolicy:
    """What endpoints without a price rule do: refused (403), or charged per request."""
    return policy_out(catalog.unknown_policy(store.database))


def set_unknown_policy(body: UnknownPolicy, store: StoreDep) -> UnknownPolicy:
    """Refuse endpoints without a rule, or charge them `request_price` per request."""
    if body.refuse:
        policy = UnknownEndpoints()
    else:
        price = parse_unit_price(body.request_price, "request_price")
        policy = UnknownEndpoints(refuse=False, request_price=price)
    answer = policy_out(policy)
    text = "refuse" if policy.refuse else f"request:{answer.request_price}"
    with store.database.transaction():
        catalog.set_unknown_policy(store.database, policy)
        audit.record(store.database, audit.API, "pricing.unknown", None, {"policy": text})
    return answer


def routes() -> APIRouter:
    router = APIRouter()
    add = router.add_api_route
    add("/plans", list_plans, methods=["GET"], tags=["plans"])
    add("/plans", create_plan, methods=["POST"], status_code=201, tags=["plans"])
    add("/plans/{name}", get_plan, methods=["GET"], tags=["plans"])
    add("/plans/{name}", replace_plan, methods=["PUT"], tags=["plans"])
    add("/prices", list_prices, methods=["GET"], tags=["prices"])
    add("/prices", set_price, methods=["PUT"], tags=["prices"])
    add("/prices/unknown-endpoints", get_unknown_policy, methods=["GET"], tags=["prices"])
    add("/prices/unknown-endpoints", set_unknown_policy, methods=["PUT"], tags=["prices"])
    return router


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        name=plan.name,
        mode=plan.mode.value,
        monthly_credit=str(plan.monthly_credit),
        rpm=plan.rpm,
        max_in_flight=plan.max_in_flight,
        endpoints=list(plan.endpoints),
        multiplier=_decimal(plan.multiplier),
        priority=plan.priority,
    )


def price_out(rule: PriceRule, source: str) -> PriceOut:
    return PriceOut(
        pattern=rule.pattern,
        unit=rule.unit.value,
        unit_price=_decimal(rule.unit_price),
        source="sync" if source == "sync" else "operator",
    )


def policy_out(policy: UnknownEndpoints) -> UnknownPolicy:
    price = "0" if policy.refuse else _decimal(policy.request_price)
    return UnknownPolicy(refuse=policy.refuse, request_price=price)


def _plan(name: str, body: PlanCreate | PlanUpdate) -> Plan:
    return plan_from_options(
        name,
        prepaid=body.prepaid,
        monthly_credit=body.monthly_credit,
        rpm=body.rpm,
        max_in_flight=body.max_in_flight,
        endpoints=body.endpoints,
        multiplier=body.multiplier,
        priority=body.priority,
    )


def _save(store: Store, plan: Plan, *, replace: bool) -> PlanOut:
    with store.database.transaction():
        saved = catalog.save_plan(store.database, plan, replace=replace)
        action = "plans.update" if replace else "plans.create"
        audit.record(store.database, audit.API, action, saved.name, _plan_detail(saved))
    return plan_out(saved)


def _plan_detail(plan: Plan) -> audit.Detail:
    return {
        "mode": plan.mode.value,
        "monthly_credit": str(plan.monthly_credit),
        "rpm": plan.rpm,
        "max_in_flight": plan.max_in_flight,
        "endpoints": ",".join(plan.endpoints),
        "multiplier": _decimal(plan.multiplier),
        "priority": plan.priority,
    }


def _decimal(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros ("1.25", "0.003", "1")."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
