"""Billing's admin-side repository: plans, subscriptions, credit, prices (all take a `Database`).

API (every write runs in its own transaction — nested inside a caller's, it joins it — and
bumps the store version so running gateways reload their billing snapshot):
  plans:          save_plan(db, plan, replace=False) → Plan · get_plan(db, name) · list_plans(db)
  subscriptions:  set_subscription(db, customer_id, plan_name, until=None, status=ACTIVE)
                  get_subscription(db, customer_id) → Subscription (plan `default` when unset)
  credit:         grant_credit(db, customer_id, Money, note=None) → Balance · get_balance(db, id)
  prices:         set_price(db, pattern, unit, unit_price, source="operator") → PriceRule
                  import_prices(db, rules) → count · list_prices(db) · price_book(db)
                  set_unknown_policy(db, UnknownEndpoints) · unknown_policy(db)
  fal's units:    remember_fal_units(db, {endpoint: unit}) → count · fal_units(db)
  snapshot:       load_snapshot(db) → BillingSnapshot (what the gateway keeps in memory)
Usage queries and the ledger itself live in `nxs.billing.ledger`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from nxs.billing.errors import InvalidBillingInput
from nxs.billing.money import Money
from nxs.billing.plans import (
    DEFAULT_PLAN,
    CreditMode,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from nxs.billing.pricing import (
    PriceBook,
    PriceRule,
    UnknownEndpoints,
    parse_endpoint_pattern,
    parse_unit,
)
from nxs.errors import Conflict, NotFound
from nxs.store.database import Database, Row
from nxs.store.ids import new_id, now
from nxs.store.notices import bump_version

POLICY_KEY = "unknown_endpoints"
PLAN_COLUMNS = (
    "name, mode, monthly_credit_micros, rpm, max_in_flight, endpoints, multiplier, priority"
)


@dataclass(frozen=True)
class Balance:
    """A customer's credit: spendable now, held by open reservations, month's allowance."""

    customer_id: str
    available: Money
    reserved: Money
    allowance_left: Money
    period: str


@dataclass
class BillingSnapshot:
    """Plans, subscriptions and prices as the gateway holds them between store versions."""

    plans: dict[str, Plan] = field(default_factory=lambda: {"default": DEFAULT_PLAN})
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    prices: PriceBook = field(default_factory=PriceBook)

    def plan_of(self, customer_id: str) -> tuple[Plan, Subscription]:
        """The customer's plan and subscription (`default`, active, when none is set)."""
        subscription = self.subscriptions.get(customer_id)
        if subscription is None:
            return self.plans.get("default", DEFAULT_PLAN), Subscription(customer_id)
        return self.plans.get(subscription.plan, DEFAULT_PLAN), subscription


def _bump(db: Database) -> None:
    bump_version(db)


# -- plans ------------------------------------------------------------------------


def save_plan(db: Database, plan: Plan, *, replace: bool = False) -> Plan:
    """Create `plan` (Conflict if the name exists, unless `replace`); returns it as stored."""
    with db.transaction():
        exists = db.fetch_one("SELECT name FROM plans WHERE name = ?", (plan.name,))
        if exists and not replace:
            raise Conflict(f"Plan '{plan.name}' already exists")
        stamp = now()
        values = (
            plan.mode.value,
            plan.monthly_credit.micros,
            plan.rpm,
            plan.max_in_flight,
            ",".join(plan.endpoints),
            str(plan.multiplier),
            plan.priority,
            stamp,
        )
        if exists:
            db.execute(
                "UPDATE plans SET mode = ?, monthly_credit_micros = ?, rpm = ?, max_in_flight = ?,"
                " endpoints = ?, multiplier = ?, priority = ?, updated_at = ? WHERE name = ?",
                (*values, plan.name),
            )
        else:
            db.execute(
                f"INSERT INTO plans ({PLAN_COLUMNS}, updated_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (plan.name, *values, stamp),
            )
        _bump(db)
    return get_plan(db, plan.name)


def get_plan(db: Database, name: str) -> Plan:
    row = db.fetch_one(f"SELECT {PLAN_COLUMNS} FROM plans WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"Plan '{name}' not found")
    return _plan(row)


def list_plans(db: Database) -> list[Plan]:
    return [_plan(row) for row in db.fetch_all(f"SELECT {PLAN_COLUMNS} FROM plans ORDER BY name")]


def _plan(row: Row) -> Plan:
    endpoints = tuple(glob for glob in str(row["endpoints"]).split(",") if glob)
    return Plan(
        name=row["name"],
        mode=CreditMode(row["mode"]),
        monthly_credit=Money(int(row["monthly_credit_micros"])),
        rpm=row["rpm"],
        max_in_flight=row["max_in_flight"],
        endpoints=endpoints,
        multiplier=Decimal(row["multiplier"]),
        priority=row["priority"],
    )


# -- subscriptions ----------------------------------------------------------------


def set_subscription(
    db: Database,
    customer_id: str,
    plan_name: str,
    until: datetime | None = None,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
) -> Subscription:
    """Put the customer on `plan_name` (NotFound for an unknown plan); replaces any earlier."""
    with db.transaction():
        get_plan(db, plan_name)
        stamp = until.timestamp() if until is not None else None
        db.execute(
            "INSERT INTO subscriptions (customer_id, plan, status, until, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET plan = excluded.plan,"
            " status = excluded.status, until = excluded.until, updated_at = excluded.updated_at",
            (customer_id, plan_name, status.value, stamp, now()),
        )
        _bump(db)
    return get_subscription(db, customer_id)


def get_subscription(db: Database, customer_id: str) -> Subscription:
    row = db.fetch_one(
        "SELECT customer_id, plan, status, until FROM subscriptions WHERE customer_id = ?",
        (customer_id,),
    )
    return _subscription(row) if row else Subscription(customer_id)


def _subscription(row: Row) -> Subscription:
    until = row["until"]
    return Subscription(
        customer_id=row["customer_id"],
        plan=row["plan"],
        status=SubscriptionStatus(row["status"]),
        until=datetime.fromtimestamp(until, tz=UTC) if until is not None else None,
    )


# -- credit -----------------------------------------------------------------------


def grant_credit(db: Database, customer_id: str, amount: Money, note: str | None = None) -> Balance:
    """Add `amount` (> 0) to the customer's spendable balance, recorded as a grant."""
    if amount.micros <= 0:
        raise InvalidBillingInput("amount", "amount must be greater than 0")
    with db.transaction():
        ensure_balance(db, customer_id)
        db.execute(
            "INSERT INTO credit_grants (id, customer_id, amount_micros, note, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (new_id("grant"), customer_id, amount.micros, note, now()),
        )
        db.execute(
            "UPDATE balances SET available_micros = available_micros + ? WHERE customer_id = ?",
            (amount.micros, customer_id),
        )
    return get_balance(db, customer_id)


def ensure_balance(db: Database, customer_id: str) -> None:
    """Create the customer's (empty) balance row if missing."""
    db.execute(
        "INSERT INTO balances (customer_id) VALUES (?) ON CONFLICT DO NOTHING", (customer_id,)
    )


def get_balance(db: Database, customer_id: str) -> Balance:
    row = db.fetch_one(
        "SELECT available_micros, reserved_micros, allowance_left_micros, period"
        " FROM balances WHERE customer_id = ?",
        (customer_id,),
    )
    if row is None:
        return Balance(customer_id, Money.zero(), Money.zero(), Money.zero(), "")
    return Balance(
        customer_id,
        Money(int(row["available_micros"])),
        Money(int(row["reserved_micros"])),
        Money(int(row["allowance_left_micros"])),
        str(row["period"]),
    )


# -- prices -----------------------------------------------------------------------


def set_price(
    db: Database, pattern: str, unit: object, unit_price: Decimal, source: str = "operator"
) -> PriceRule:
    """Create or replace the rule for `pattern` (an endpoint id or a glob)."""
    rule = PriceRule(parse_endpoint_pattern(pattern), parse_unit(unit), unit_price)
    import_prices(db, [rule], source)
    return rule


def import_prices(db: Database, rules: Iterable[PriceRule], source: str = "sync") -> int:
    """Upsert `rules`; an operator's own rule is never overwritten by a sync."""
    count = 0
    with db.transaction():
        for rule in rules:
            count += db.execute(
                "INSERT INTO price_rules (pattern, unit, unit_price, source, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (pattern) DO UPDATE SET unit = excluded.unit,"
                " unit_price = excluded.unit_price, source = excluded.source,"
                " updated_at = excluded.updated_at"
                " WHERE price_rules.source = 'sync' OR excluded.source = 'operator'",
                (rule.pattern, rule.unit.value, str(rule.unit_price), source, now()),
            )
        _bump(db)
    return count


def list_prices(db: Database) -> list[tuple[PriceRule, str]]:
    """Every rule with its source ('operator' or 'sync'), by pattern."""
    rows = db.fetch_all(
        "SELECT pattern, unit, unit_price, source FROM price_rules ORDER BY pattern"
    )
    return [(_rule(row), str(row["source"])) for row in rows]


def _rule(row: Row) -> PriceRule:
    return PriceRule(row["pattern"], parse_unit(row["unit"]), Decimal(row["unit_price"]))


def set_unknown_policy(db: Database, policy: UnknownEndpoints) -> None:
    """Refuse endpoints without a rule, or charge them a flat price per request."""
    value = "refuse" if policy.refuse else f"request:{policy.request_price}"
    with db.transaction():
        db.execute(
            "INSERT INTO store_meta (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (POLICY_KEY, value),
        )
        _bump(db)


def unknown_policy(db: Database) -> UnknownEndpoints:
    """The stored policy; with none set, unknown endpoints are metered at $0 per request."""
    row = db.fetch_one("SELECT value FROM store_meta WHERE name = ?", (POLICY_KEY,))
    value = str(row["value"]) if row else "request:0"
    if value == "refuse":
        return UnknownEndpoints()
    return UnknownEndpoints.charge_per_request(value.partition(":")[2] or "0")


def remember_fal_units(db: Database, units: Mapping[str, str]) -> int:
    """Record the unit fal bills each endpoint in (`pricing.fal_unit_name`s), replacing what
    an earlier sync recorded; kept whatever the endpoint's price rule is."""
    with db.transaction():
        for endpoint, unit in units.items():
            db.execute(
                "INSERT INTO fal_units (endpoint, unit, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (endpoint) DO UPDATE SET unit = excluded.unit,"
                " updated_at = excluded.updated_at",
                (endpoint, unit, now()),
            )
        _bump(db)
    return len(units)


def fal_units(db: Database) -> dict[str, str]:
    """Endpoint → the unit fal bills it in, as far as `nxs pricing sync` has seen."""
    return {
        str(row["endpoint"]): str(row["unit"])
        for row in db.fetch_all("SELECT endpoint, unit FROM fal_units")
    }


def price_book(db: Database) -> PriceBook:
    rules = [rule for rule, _ in list_prices(db)]
    return PriceBook(rules, unknown_policy(db), fal_units(db))


def load_snapshot(db: Database) -> BillingSnapshot:
    """Everything the hot path reads from memory: plans, subscriptions, the price book."""
    plans = {plan.name: plan for plan in list_plans(db)}
    rows = db.fetch_all("SELECT customer_id, plan, status, until FROM subscriptions")
    subscriptions = {row["customer_id"]: _subscription(row) for row in rows}
    return BillingSnapshot(plans, subscriptions, price_book(db))
