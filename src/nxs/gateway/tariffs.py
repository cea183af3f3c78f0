"""What a (customer, key, endpoint) pays, worked out once per store version.

The metered hot path repeats the same few decisions for every request: the customer's plan
and subscription, the endpoint's price rule, the ledger columns those fix, and — for each
answer fal gives (outcome, `x-fal-billable-units`) — the settlement and its columns. A
`Tariff` holds them so a request costs a dictionary lookup and one tuple concatenation.
`Tariffs.clear()` drops them all when plans, subscriptions or prices change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from nxs.billing import ledger
from nxs.billing.catalog import BillingSnapshot
from nxs.billing.estimate import defaults_for, estimate_units
from nxs.billing.ledger import Columns, Entry
from nxs.billing.money import Money
from nxs.billing.plans import Plan, Subscription
from nxs.billing.pricing import BODY_SHOWN_UNITS, PriceRule, Unit
from nxs.billing.settle import Settlement, UnitsSource

MEMORY_LIMIT: Final = 20_000
BODY_UNITS: Final = BODY_SHOWN_UNITS  # units a result body shows (and an input estimates)
LATER: Final = Decimal(-1)  # an estimate left for the answer (metered runs)
NEVER: Final = datetime.min.replace(tzinfo=UTC)  # "now" for an open-ended subscription


@dataclass(slots=True)
class Tariff:
    """One customer's plan and subscription, and one endpoint's price under them."""

    endpoint: str
    kind: str  # the ledger's: "run" or "queue"
    plan: Plan
    subscription: Subscription
    rule: PriceRule
    static: Columns  # the ledger columns fixed by customer, key, endpoint and price
    credit: bool  # the plan holds credit before a request goes upstream
    open_access: bool  # open-ended active subscription, endpoint allowed: nothing to check
    estimate: Decimal | None  # units every request is estimated at; None: read the input
    closings: dict[tuple[int, str], Columns] = field(default_factory=dict)

    def closing(
        self, status: int, billed: str, settle: Callable[[], tuple[Decimal, Settlement]]
    ) -> Columns:
        """The ledger columns settling a run answered `status` with `billed` in fal's
        header ("" for none); `settle()` (→ estimated units, settlement) works them out.
        Kept per answer unless they came from this request's own input (an estimate of
        images, megapixels or seconds): the same answer then settles the same way."""
        key = (status, billed)
        found = self.closings.get(key)
        if found is None:
            estimate, settlement = settle()
            closed = ledger.closed_status(settlement)
            found = ledger.closing_columns(closed, settlement, estimate, settlement.reserved)
            own = settlement.source is UnitsSource.ESTIMATE and self.rule.unit in BODY_UNITS
            if not own:
                if len(self.closings) >= MEMORY_LIMIT:
                    self.closings.clear()
                self.closings[key] = found
        return found


class Tariffs:
    """Tariffs by (customer, key, endpoint, kind), valid for one billing snapshot."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, str, str], Tariff] = {}

    def clear(self) -> None:
        self._known.clear()

    def get(
        self, snapshot: BillingSnapshot, customer_id: str, key_id: str, endpoint: str, kind: str
    ) -> Tariff:
        key = (customer_id, key_id, endpoint, kind)
        tariff = self._known.get(key)
        if tariff is None:
            if len(self._known) >= MEMORY_LIMIT:
                self._known.clear()
            tariff = self._known[key] = _tariff(snapshot, *key)
        return tariff


def _tariff(
    snapshot: BillingSnapshot, customer_id: str, key_id: str, endpoint: str, kind: str
) -> Tariff:
    plan, subscription = snapshot.plan_of(customer_id)
    rule = snapshot.prices.price(endpoint)
    sample = Entry(
        id="",
        customer_id=customer_id,
        api_key_id=key_id,
        endpoint=endpoint,
        kind=kind,
        rule=rule,
        multiplier=plan.multiplier,
        estimated_units=Decimal(0),
        reserved=Money.zero(),
        created_at=0.0,
    )
    open_ended = subscription.until is None and subscription.subscription_active(NEVER)
    return Tariff(
        endpoint=endpoint,
        kind=kind,
        plan=plan,
        subscription=subscription,
        rule=rule,
        static=ledger.static_columns(sample),
        credit=plan.requires_credit,
        open_access=open_ended and plan.endpoint_allowed(endpoint),
        estimate=_estimate(rule.unit, kind, plan.requires_credit, endpoint),
    )


def _estimate(unit: Unit, kind: str, credit: bool, endpoint: str) -> Decimal | None:
    if unit not in BODY_UNITS:  # request, GPU second: the input does not tell
        return estimate_units(unit, None, defaults_for(endpoint))
    if kind == "run" and not credit:
        return LATER  # nothing to reserve: the answer (or fal's header) tells
    return None
