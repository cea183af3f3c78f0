"""Ledger test helpers: a customer with prepaid credit, and a run's open ledger entry for
SDXL images at 0.01 each."""

from __future__ import annotations

from decimal import Decimal

from nxs.billing import catalog
from nxs.billing.ledger import Entry
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit
from nxs.store import customers
from nxs.store.database import Database

SDXL_IMAGES = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.01"))


def funded_customer(db: Database, name: str, credit: str) -> str:
    """A new customer's id, with `credit` USD granted."""
    with db.transaction():
        cid = customers.create(db, name).id
    catalog.grant_credit(db, cid, Money.parse(credit))
    return cid


def run_entry(
    customer_id: str,
    entry_id: str,
    *,
    rule: PriceRule = SDXL_IMAGES,
    units: int = 1,
    reserved: str = "0.01",
) -> Entry:
    """A run's entry as admission makes it: `units` estimated, `reserved` held."""
    return Entry(
        id=entry_id,
        customer_id=customer_id,
        api_key_id="key_1",
        endpoint=rule.pattern,
        kind="run",
        rule=rule,
        multiplier=Decimal(1),
        estimated_units=Decimal(units),
        reserved=Money.parse(reserved),
        created_at=1.8e9,
    )
