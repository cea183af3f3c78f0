"""The console's plans-and-prices view: every plan, every price rule with its source, and the
endpoints customers called that no rule prices (metered by the unknown-endpoint policy,
$0 per request until the operator acts), with how often and since when.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from nxs.billing import catalog
from nxs.billing.plans import Plan
from nxs.billing.pricing import PriceRule, UnknownEndpoints
from nxs.store.database import Database


@dataclass(frozen=True)
class Unpriced:
    """An endpoint used but matched by no price rule."""

    endpoint: str
    requests: int
    first_at: float
    last_at: float


@dataclass(frozen=True)
class Catalogue:
    plans: list[Plan]
    prices: list[tuple[PriceRule, str]]  # rule, source ('operator' | 'sync')
    unknown: UnknownEndpoints
    unpriced: list[Unpriced]


def catalogue(database: Database, *, since: float) -> Catalogue:
    """Plans, prices, the unknown-endpoint policy and the unpriced endpoints used since."""
    prices = catalog.list_prices(database)
    return Catalogue(
        plans=catalog.list_plans(database),
        prices=prices,
        unknown=catalog.unknown_policy(database),
        unpriced=unpriced(database, [rule for rule, _ in prices], since=since),
    )


def unpriced(database: Database, rules: list[PriceRule], *, since: float) -> list[Unpriced]:
    """Endpoints in the ledger since `since` that no rule (exact or glob) matches."""
    rows = database.fetch_all(
        "SELECT endpoint, COUNT(*) AS requests, MIN(created_at) AS first_at,"
        " MAX(created_at) AS last_at FROM ledger WHERE created_at >= ?"
        " GROUP BY endpoint ORDER BY endpoint",
        (since,),
    )
    return [
        Unpriced(
            str(row["endpoint"]),
            int(row["requests"]),
            float(row["first_at"]),
            float(row["last_at"]),
        )
        for row in rows
        if not _priced(str(row["endpoint"]), rules)
    ]


def _priced(endpoint: str, rules: list[PriceRule]) -> bool:
    return any(
        fnmatchcase(endpoint, rule.pattern) if rule.is_glob else endpoint == rule.pattern
        for rule in rules
    )
