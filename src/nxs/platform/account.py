"""A customer's account as it sees it: name, spendable balance, what running requests
hold, and its plan and subscription. Plain functions over a `Database`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nxs.billing import catalog
from nxs.billing.ledger import period_of
from nxs.billing.money import Money
from nxs.billing.plans import CreditMode, Plan, Subscription
from nxs.platform.prices import plan_for
from nxs.store.database import Database
from nxs.store.ids import now


@dataclass(frozen=True)
class Account:
    username: str
    balance: Money  # spendable now (this month's allowance included)
    reserved: Money  # held by requests still running
    plan: Plan
    subscription: Subscription

    @property
    def subscription_active(self) -> bool:
        return self.subscription.subscription_active(datetime.now(UTC))


def account_of(db: Database, customer_id: str, username: str) -> Account:
    plan, subscription = plan_for(db, customer_id)
    balance = catalog.get_balance(db, customer_id)
    available = balance.available
    if plan.mode is CreditMode.MONTHLY and balance.period != period_of(now()):
        # the allowance is renewed at the month's first request: show it renewed already
        available = available - balance.allowance_left + plan.monthly_credit
    return Account(username, available, balance.reserved, plan, subscription)
