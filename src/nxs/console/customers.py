"""The console's customers list: search by name, with plan, balance and recent spend.

One query over customers, their subscription and balance, and one over the ledger for the
spend of the window (settled cost, requests); both portable SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from nxs.billing.money import Money
from nxs.store.database import Database, Row

DEFAULT_LIMIT: Final = 200
SPEND_WINDOW_SECONDS: Final = 30 * 86400


@dataclass(frozen=True)
class CustomerLine:
    """One customer as the console lists it."""

    id: str
    name: str
    status: str
    plan: str
    available: Money
    reserved: Money
    spend: Money  # settled cost over the window
    requests: int  # ledger rows over the window
    keys: int  # keys not revoked
    created_at: float


def search(
    database: Database, query: str = "", *, since: float, limit: int = DEFAULT_LIMIT
) -> list[CustomerLine]:
    """Customers whose name contains `query` (case-insensitive), by name."""
    pattern = f"%{_escape_like(query.strip().lower())}%"
    rows = database.fetch_all(
        "SELECT c.id, c.name, c.status, c.created_at, s.plan,"
        " b.available_micros, b.reserved_micros,"
        " (SELECT COUNT(*) FROM api_keys k WHERE k.customer_id = c.id"
        "  AND k.revoked_at IS NULL) AS keys"
        " FROM customers c LEFT JOIN subscriptions s ON s.customer_id = c.id"
        " LEFT JOIN balances b ON b.customer_id = c.id"
        " WHERE LOWER(c.name) LIKE ? ESCAPE '!' ORDER BY c.name LIMIT ?",
        (pattern, limit),
    )
    spend = _spend(database, [str(row["id"]) for row in rows], since)
    return [_line(row, *spend.get(str(row["id"]), (Money.zero(), 0))) for row in rows]


def _spend(database: Database, ids: list[str], since: float) -> dict[str, tuple[Money, int]]:
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    rows = database.fetch_all(
        "SELECT customer_id, COUNT(*) AS requests,"
        " SUM(CASE WHEN status = 'settled' THEN cost_micros ELSE 0 END) AS cost"
        f" FROM ledger WHERE created_at >= ? AND customer_id IN ({marks})"
        " GROUP BY customer_id",
        (since, *ids),
    )
    return {
        str(row["customer_id"]): (Money(int(row["cost"] or 0)), int(row["requests"]))
        for row in rows
    }


def _line(row: Row, spend: Money, requests: int) -> CustomerLine:
    return CustomerLine(
        id=str(row["id"]),
        name=str(row["name"]),
        status=str(row["status"]),
        plan=str(row["plan"] or "default"),
        available=Money(int(row["available_micros"] or 0)),
        reserved=Money(int(row["reserved_micros"] or 0)),
        spend=spend,
        requests=requests,
        keys=int(row["keys"] or 0),
        created_at=float(row["created_at"]),
    )


def _escape_like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
