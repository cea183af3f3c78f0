"""The billing commands: `nxs plans create|update|list`, `nxs subscriptions set|show`,
`nxs credits grant|show`, `nxs pricing sync|set|list|unknown` and `nxs usage`.

Amounts are USD decimals ("12.50"); dates are `YYYY-MM-DD` (UTC) or ISO 8601 times. Each
change is written with its audit-log entry in one transaction and reaches running
gateways through the store version. Failures print `nxs: <detail>` and exit 2.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from nxs.admin import audit
from nxs.admin.commands import Subparsers, add_group, add_leaf, command
from nxs.admin.output import render, timestamp
from nxs.billing import catalog
from nxs.billing.errors import InvalidBillingInput
from nxs.billing.money import Money
from nxs.billing.plans import (
    CreditMode,
    Plan,
    SubscriptionStatus,
    is_date,
    parse_until,
    plan_from_options,
)
from nxs.billing.pricing import Unit, UnknownEndpoints, parse_unit, parse_unit_price
from nxs.billing.sync import sync_prices
from nxs.billing.usage import UsageRow, usage_rows
from nxs.config import Settings
from nxs.portal import cli as portal_cli
from nxs.store.store import Store

PLAN_COLUMNS = (
    "name",
    "mode",
    "monthly_credit",
    "rpm",
    "max_in_flight",
    "endpoints",
    "multiplier",
    "priority",
)
USAGE_COLUMNS: tuple[str, ...] = ("created_at", "customer", "endpoint", "request_id", "status")
USAGE_COLUMNS += ("units", "unit", "unit_price", "cost", "latency_ms")


def add_commands(subparsers: Subparsers) -> None:
    """Add `plans`, `subscriptions`, `credits`, `pricing` and `usage`."""
    _plan_commands(subparsers)
    _subscription_commands(subparsers)
    _credit_commands(subparsers)
    _pricing_commands(subparsers)
    usage = subparsers.add_parser("usage", help="billable requests from the ledger")
    usage.add_argument("--customer", help="only this customer")
    usage.add_argument("--since", help="from this date (YYYY-MM-DD, UTC) or ISO time on")
    form = usage.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON")
    form.add_argument("--csv", action="store_true", help="print CSV (for spreadsheets)")
    usage.set_defaults(run=command(_usage))


# -- plans -----------------------------------------------------------------------


def _plan_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "plans", "billing plans: credit mode, limits, endpoints, prices")
    create = add_leaf(group, "create", "create a plan (metered unless told so)", _create_plan)
    _plan_options(create, updating=False)
    update = add_leaf(
        group, "update", "change a plan, e.g. `default`; options not given are kept", _update_plan
    )
    _plan_options(update, updating=True)
    portal_cli.add_stripe_price(update)
    listing = add_leaf(group, "list", "list plans", _list_plans)
    listing.add_argument("--json", action="store_true", help="print JSON")


def _plan_options(parser: argparse.ArgumentParser, *, updating: bool) -> None:
    what = "the plan to change, e.g. default" if updating else "the new plan's name (unique)"
    parser.add_argument("name", metavar="NAME", help=what)
    mode = parser.add_mutually_exclusive_group()
    if updating:
        mode.add_argument("--metered", action="store_true", help="no credit needed (usage metered)")
    mode.add_argument("--prepaid", action="store_true", help="only granted credit is spent")
    mode.add_argument("--monthly-credit", metavar="AMOUNT", help="USD allowance each month")
    unset = " ('none': no limit)" if updating else ""
    parser.add_argument(
        "--rpm", metavar="N", help=f"requests per minute, per customer and per key{unset}"
    )
    parser.add_argument(
        "--max-in-flight", metavar="N", help=f"requests in flight, per customer and per key{unset}"
    )
    parser.add_argument(
        "--endpoints", metavar="GLOB,…", help="allowed endpoints ('*' or omitted: all)"
    )
    default = None if updating else "1"
    parser.add_argument(
        "--multiplier", metavar="X", default=default, help="price multiplier (default 1)"
    )
    parser.add_argument(
        "--priority",
        metavar="N",
        default=default,
        help="weight of its customers' turns while runs wait for an upstream slot (default 1)",
    )


def _create_plan(store: Store, args: argparse.Namespace) -> int:
    plan = plan_from_options(
        args.name,
        prepaid=args.prepaid,
        monthly_credit=args.monthly_credit,
        rpm=args.rpm,
        max_in_flight=args.max_in_flight,
        endpoints=args.endpoints,
        multiplier=args.multiplier,
        priority=args.priority,
    )
    with store.database.transaction():
        catalog.save_plan(store.database, plan)
        audit.record(store.database, audit.CLI, "plans.create", plan.name, _plan_record(plan))
    print(f"Created plan '{plan.name}' ({plan.mode.value}).")
    return 0


def _update_plan(store: Store, args: argparse.Namespace) -> int:
    current = catalog.get_plan(store.database, args.name)
    prepaid = args.prepaid or (current.mode is CreditMode.PREPAID and _keeps_mode(args))
    monthly = args.monthly_credit
    if monthly is None and current.mode is CreditMode.MONTHLY and _keeps_mode(args):
        monthly = str(current.monthly_credit)
    plan = plan_from_options(
        current.name,
        prepaid=prepaid,
        monthly_credit=monthly,
        rpm=_limit(args.rpm, current.rpm),
        max_in_flight=_limit(args.max_in_flight, current.max_in_flight),
        endpoints=list(current.endpoints) if args.endpoints is None else args.endpoints,
        multiplier=str(current.multiplier) if args.multiplier is None else args.multiplier,
        priority=current.priority if args.priority is None else args.priority,
    )
    with store.database.transaction():
        catalog.save_plan(store.database, plan, replace=True)
        portal_cli.apply_stripe_price(store, args)
        audit.record(store.database, audit.CLI, "plans.update", plan.name, _plan_record(plan))
    print(f"Updated plan '{plan.name}':")
    print(render([_plan_record(plan)], PLAN_COLUMNS, as_json=False))
    return 0


def _keeps_mode(args: argparse.Namespace) -> bool:
    return not (args.metered or args.prepaid or args.monthly_credit is not None)


def _limit(given: str | None, current: int | None) -> object:
    """An update's --rpm / --max-in-flight: kept when not given, removed with 'none'."""
    if given is None:
        return current
    return None if given.strip().lower() == "none" else given


def _list_plans(store: Store, args: argparse.Namespace) -> int:
    records = [_plan_record(plan) for plan in catalog.list_plans(store.database)]
    print(render(records, PLAN_COLUMNS, as_json=args.json))
    return 0


def _plan_record(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "mode": plan.mode.value,
        "monthly_credit": str(plan.monthly_credit),
        "rpm": plan.rpm,
        "max_in_flight": plan.max_in_flight,
        "endpoints": ",".join(plan.endpoints) or "*",
        "multiplier": str(plan.multiplier),
        "priority": plan.priority,
    }


# -- subscriptions and credit ------------------------------------------------------


def _subscription_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "subscriptions", "which plan each customer is on")
    put = add_leaf(group, "set", "put a customer on a plan", _set_subscription)
    put.add_argument("customer", metavar="CUSTOMER", help="the customer's name")
    put.add_argument("plan", metavar="PLAN", help="the plan's name, as `nxs plans list` shows")
    put.add_argument("--until", metavar="DATE", help="active through this day (UTC)")
    states = [status.value for status in SubscriptionStatus]
    put.add_argument("--status", choices=states, default="active", help="(default active)")
    show = add_leaf(group, "show", "a customer's plan and subscription", _show_subscription)
    show.add_argument("customer", metavar="CUSTOMER", help="the customer's name")
    show.add_argument("--json", action="store_true", help="print JSON")


def _set_subscription(store: Store, args: argparse.Namespace) -> int:
    customer = store.get_customer(args.customer)
    until = parse_until(args.until) if args.until is not None else None
    status = SubscriptionStatus(args.status)
    with store.database.transaction():
        catalog.set_subscription(store.database, customer.id, args.plan, until, status)
        detail = {"plan": args.plan, "status": status.value, "until": args.until}
        audit.record(store.database, audit.CLI, "subscriptions.set", customer.name, detail)
    ends = f" through {(until - timedelta(days=1)).date()}" if until else ""
    if until and not is_date(args.until):
        ends = f" until {timestamp(until.timestamp())}"
    print(f"Customer '{customer.name}' is on plan '{args.plan}' ({status.value}{ends}).")
    if until is not None and until <= datetime.now(UTC):
        print("That end is already past: the customer's requests get 402 until it is extended.")
    return 0


def _show_subscription(store: Store, args: argparse.Namespace) -> int:
    customer = store.get_customer(args.customer)
    subscription = catalog.get_subscription(store.database, customer.id)
    until = subscription.until
    record = {
        "customer": customer.name,
        "plan": subscription.plan,
        "status": subscription.status.value,
        "until": timestamp(until.timestamp()) if until else None,
        "active": subscription.subscription_active(datetime.now(UTC)),
    }
    print(render([record], tuple(record), as_json=args.json))
    return 0


def _credit_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "credits", "customers' prepaid credit")
    grant = add_leaf(group, "grant", "add credit to a customer's balance", _grant)
    grant.add_argument("customer", metavar="CUSTOMER", help="the customer's name")
    grant.add_argument("amount", metavar="AMOUNT", help="USD, e.g. 25 or 12.50")
    grant.add_argument("--note", help="why (kept with the grant)")
    show = add_leaf(group, "show", "a customer's balance", _show_balance)
    show.add_argument("customer", metavar="CUSTOMER", help="the customer's name")
    show.add_argument("--json", action="store_true", help="print JSON")


def _grant(store: Store, args: argparse.Namespace) -> int:
    customer = store.get_customer(args.customer)
    amount = Money.parse(args.amount, "amount")
    with store.database.transaction():
        balance = catalog.grant_credit(store.database, customer.id, amount, args.note)
        detail = {"amount": str(amount), "note": args.note}
        audit.record(store.database, audit.CLI, "credits.grant", customer.name, detail)
    print(f"Granted {amount} USD to '{customer.name}'; available {balance.available} USD.")
    return 0


def _show_balance(store: Store, args: argparse.Namespace) -> int:
    customer = store.get_customer(args.customer)
    balance = catalog.get_balance(store.database, customer.id)
    record = {
        "customer": customer.name,
        "available": str(balance.available),
        "reserved": str(balance.reserved),
        "allowance_left": str(balance.allowance_left),
    }
    print(render([record], tuple(record), as_json=args.json))
    return 0


# -- pricing -----------------------------------------------------------------------


def _pricing_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "pricing", "per-endpoint prices in fal's units")
    sync = add_leaf(group, "sync", "import fal's prices (GET api.fal.ai/v1/models/pricing)", _sync)
    sync.add_argument(
        "endpoints",
        nargs="*",
        metavar="ENDPOINT",
        help="endpoint ids (default: those already known)",
    )
    put = add_leaf(group, "set", "set an endpoint's (or a glob's) price", _set_price)
    put.add_argument(
        "endpoint", metavar="ENDPOINT", help="an endpoint id (fal-ai/flux/dev) or a glob (fal-ai/*)"
    )
    units = [unit.value for unit in Unit]
    put.add_argument(
        "unit",
        metavar="UNIT",
        type=_unit_name,
        choices=units,
        help=f"what the price is per: {', '.join(units)}",
    )
    put.add_argument("price", metavar="PRICE", help="USD per unit, e.g. 0.025")
    listing = add_leaf(group, "list", "list price rules", _list_prices)
    listing.add_argument("--json", action="store_true", help="print JSON")
    unknown = add_leaf(group, "unknown", "what endpoints without a price do", _set_unknown)
    unknown.add_argument("policy", metavar="POLICY", help="'refuse', or a USD price per request")


def _sync(store: Store, args: argparse.Namespace) -> int:
    report = sync_prices(Settings.from_env(), store, args.endpoints)
    audit.record(store.database, audit.CLI, "pricing.sync", None, {"imported": report.imported})
    print(f"Imported {report.imported} prices from fal.")
    for endpoint, why in report.skipped:
        print(f"Skipped {endpoint}: {why}")
    return 0


def _unit_name(raw: str) -> str:
    """A unit as given, fal's spelling ("megapixels", "second"…) read as its own name."""
    try:
        return parse_unit(raw).value
    except InvalidBillingInput:
        return raw  # argparse then lists the choices


def _set_price(store: Store, args: argparse.Namespace) -> int:
    price = parse_unit_price(args.price, "price")
    with store.database.transaction():
        rule = catalog.set_price(store.database, args.endpoint, args.unit, price)
        detail = {"unit": rule.unit.value, "unit_price": str(rule.unit_price)}
        audit.record(store.database, audit.CLI, "pricing.set", rule.pattern, detail)
    print(f"Price of {rule.pattern}: {rule.unit_price} USD per {rule.unit.value}.")
    return 0


def _list_prices(store: Store, args: argparse.Namespace) -> int:
    records = [
        {"endpoint": r.pattern, "unit": r.unit.value, "unit_price": str(r.unit_price), "source": s}
        for r, s in catalog.list_prices(store.database)
    ]
    print(render(records, ("endpoint", "unit", "unit_price", "source"), as_json=args.json))
    return 0


def _set_unknown(store: Store, args: argparse.Namespace) -> int:
    text = str(args.policy).strip().lower()
    try:
        refuse = text == "refuse"
        policy = UnknownEndpoints() if refuse else UnknownEndpoints.charge_per_request(text)
    except InvalidBillingInput as error:
        message = "policy must be 'refuse' or a USD price per request, like 0.01"
        raise InvalidBillingInput("policy", message) from error
    with store.database.transaction():
        catalog.set_unknown_policy(store.database, policy)
        audit.record(store.database, audit.CLI, "pricing.unknown", None, {"policy": text})
    print(
        "Endpoints without a price are now "
        + ("refused." if policy.refuse else f"{text} USD per request.")
    )
    return 0


# -- usage -------------------------------------------------------------------------


def _usage(store: Store, args: argparse.Namespace) -> int:
    customer_id = store.get_customer(args.customer).id if args.customer is not None else None
    since = _since(args.since) if args.since is not None else None
    records = [_usage_record(row) for row in usage_rows(store.database, customer_id, since)]
    if args.csv:
        print(_csv(records), end="")
    else:
        print(render(records, USAGE_COLUMNS, as_json=args.json))
    return 0


def _since(text: str) -> float:
    """`2026-11-01` → that day's start (UTC); a full ISO time as given."""
    moment = parse_until(text, "since")
    return (moment - timedelta(days=1) if is_date(text) else moment).timestamp()


def _usage_record(row: UsageRow) -> dict[str, Any]:
    record = asdict(row)
    record["reserved"] = str(row.reserved)
    record["cost"] = str(row.cost) if row.cost is not None else None
    record["created_at"] = timestamp(row.created_at)
    record["settled_at"] = timestamp(row.settled_at)
    return record


def _csv(records: list[dict[str, Any]]) -> str:
    if not records:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
