"""A customer's billing account: its subscription, credit grants and balance.

Under `/admin/v1/customers/{name}/…`. Each change, its audit entry and (for a grant) the
balance move happen in one transaction: an unknown customer or plan, a bad date or a bad
amount leaves nothing behind.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from nxs.admin import audit
from nxs.admin.api.billing_schemas import (
    BalanceOut,
    CreditGrant,
    GrantOut,
    SubscriptionOut,
    SubscriptionSet,
)
from nxs.admin.api.context import StoreDep
from nxs.admin.output import timestamp
from nxs.billing import catalog
from nxs.billing.money import Money
from nxs.billing.plans import Subscription, parse_until


def get_subscription(name: str, store: StoreDep) -> SubscriptionOut:
    """The customer's plan and subscription (plan `default`, active, until one is set)."""
    customer = store.get_customer(name)
    return subscription_out(name, catalog.get_subscription(store.database, customer.id))


def set_subscription(name: str, body: SubscriptionSet, store: StoreDep) -> SubscriptionOut:
    """Put the customer on a plan, until a date or open-ended, active or not."""
    until = parse_until(body.until) if body.until is not None else None
    with store.database.transaction():
        customer = store.get_customer(name)
        subscription = catalog.set_subscription(
            store.database, customer.id, body.plan, until, body.status
        )
        detail: audit.Detail = {
            "plan": subscription.plan,
            "status": subscription.status.value,
            "until": timestamp(until.timestamp()) if until else None,
        }
        audit.record(store.database, audit.API, "subscriptions.set", name, detail)
    return subscription_out(name, subscription)


def grant_credit(name: str, body: CreditGrant, store: StoreDep) -> BalanceOut:
    """Add credit to the customer's balance; answers the new balance."""
    amount = Money.parse(body.amount, "amount")
    with store.database.transaction():
        customer = store.get_customer(name)
        balance = catalog.grant_credit(store.database, customer.id, amount, body.note)
        detail: audit.Detail = {"amount": str(amount), "note": body.note}
        audit.record(store.database, audit.API, "credits.grant", name, detail)
    return balance_out(name, balance)


def list_grants(name: str, store: StoreDep) -> list[GrantOut]:
    """The customer's credit grants, newest first."""
    customer = store.get_customer(name)
    rows = store.database.fetch_all(
        "SELECT id, amount_micros, note, created_at FROM credit_grants"
        " WHERE customer_id = ? ORDER BY created_at DESC, id",
        (customer.id,),
    )
    return [
        GrantOut(
            id=row["id"],
            amount=str(Money(int(row["amount_micros"]))),
            note=row["note"],
            created_at=timestamp(row["created_at"]) or "",
        )
        for row in rows
    ]


def get_balance(name: str, store: StoreDep) -> BalanceOut:
    customer = store.get_customer(name)
    return balance_out(name, catalog.get_balance(store.database, customer.id))


def routes() -> APIRouter:
    router = APIRouter()
    add = router.add_api_route
    path = "/customers/{name}"
    add(f"{path}/subscription", get_subscription, methods=["GET"], tags=["subscriptions"])
    add(f"{path}/subscription", set_subscription, methods=["PUT"], tags=["subscriptions"])
    add(f"{path}/credits", grant_credit, methods=["POST"], status_code=201, tags=["credit"])
    add(f"{path}/credits", list_grants, methods=["GET"], tags=["credit"])
    add(f"{path}/balance", get_balance, methods=["GET"], tags=["credit"])
    return router


def subscription_out(name: str, subscription: Subscription) -> SubscriptionOut:
    until = subscription.until
    return SubscriptionOut(
        customer=name,
        plan=subscription.plan,
        status=subscription.status.value,
        until=timestamp(until.timestamp()) if until else None,
        active=subscription.subscription_active(datetime.now(UTC)),
    )


def balance_out(name: str, balance: catalog.Balance) -> BalanceOut:
    return BalanceOut(
        customer=name,
        available=str(balance.available),
        reserved=str(balance.reserved),
        allowance_left=str(balance.allowance_left),
        period=balance.period,
    )
