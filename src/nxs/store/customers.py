"""Customers: the accounts `nxs_` keys belong to, active or suspended.

Plain functions over a `Database`; `Store` wraps them in transactions and bumps the
store version. Lookups by name raise NotFound with the name in the message.
"""

from __future__ import annotations

from typing import get_args

from nxs.errors import BadRequest, Conflict, NotFound
from nxs.store.database import Database, IntegrityViolation, Row
from nxs.store.ids import new_id, now, validate_name
from nxs.store.models import Customer, CustomerStatus

COLUMNS = "id, name, status, created_at"
STATUSES: tuple[str, ...] = get_args(CustomerStatus)


def create(database: Database, name: str) -> Customer:
    validate_name("customer", name)
    if find(database, name) is not None:
        raise Conflict(f"Customer '{name}' already exists")
    created = now()
    customer = Customer(id=new_id("cus"), name=name, status="active", created_at=created)
    try:
        database.execute(
            "INSERT INTO customers (id, name, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (customer.id, name, customer.status, created, created),
        )
    except IntegrityViolation as exc:
        raise Conflict(f"Customer '{name}' already exists") from exc
    return customer


def find(database: Database, name: str) -> Customer | None:
    row = database.fetch_one(f"SELECT {COLUMNS} FROM customers WHERE name = ?", (name,))
    return _customer(row) if row else None


def get(database: Database, name: str) -> Customer:
    customer = find(database, name)
    if customer is None:
        raise NotFound(f"Customer '{name}' not found")
    return customer


def set_status(database: Database, name: str, status: CustomerStatus) -> tuple[Customer, bool]:
    """The customer with `status`, and whether that changed anything."""
    if status not in STATUSES:
        raise BadRequest(f"Invalid customer status {status!r}: use one of {', '.join(STATUSES)}")
    customer = get(database, name)
    if customer.status == status:
        return customer, False
    database.execute(
        "UPDATE customers SET status = ?, updated_at = ? WHERE id = ?",
        (status, now(), customer.id),
    )
    return get(database, name), True


def list_all(database: Database) -> list[Customer]:
    rows = database.fetch_all(f"SELECT {COLUMNS} FROM customers ORDER BY name")
    return [_customer(row) for row in rows]


def _customer(row: Row) -> Customer:
    return Customer(
        id=row["id"], name=row["name"], status=row["status"], created_at=row["created_at"]
    )
