"""`/admin/v1/customers` and `/admin/v1/keys`: customers and their `nxs_` keys.

Every change is written together with its audit entry in one transaction. A new key's
plaintext is in the creation answer only; listings show its prefix.
"""

from __future__ import annotations

from fastapi import APIRouter

from nxs.admin import audit
from nxs.admin.api.context import StoreDep
from nxs.admin.api.schemas import CustomerCreate, CustomerOut, KeyCreated, KeyOut
from nxs.admin.output import customer_record, key_record
from nxs.store.models import Customer, CustomerStatus
from nxs.store.store import Store


def list_customers(store: StoreDep) -> list[CustomerOut]:
    """Every customer, by name."""
    return [_customer(customer) for customer in store.list_customers()]


def create_customer(body: CustomerCreate, store: StoreDep) -> CustomerOut:
    """Create a customer (it starts active, on the `default` plan)."""
    with store.database.transaction():
        customer = store.create_customer(body.name)
        audit.record(store.database, audit.API, "customers.create", customer.name)
    return _customer(customer)


def get_customer(name: str, store: StoreDep) -> CustomerOut:
    return _customer(store.get_customer(name))


def suspend_customer(name: str, store: StoreDep) -> CustomerOut:
    """Suspend a customer: its keys are refused with 402 until it is resumed."""
    return _set_status(store, name, "suspended")


def resume_customer(name: str, store: StoreDep) -> CustomerOut:
    """Make a suspended customer active again (a no-op if it is active)."""
    return _set_status(store, name, "active")


def list_customer_keys(name: str, store: StoreDep) -> list[KeyOut]:
    """The customer's keys, oldest first, revoked ones included."""
    return [KeyOut(**key_record(key)) for key in store.list_keys(name)]


def create_key(name: str, store: StoreDep) -> KeyCreated:
    """A new key for the customer; the full key is in this answer and never again."""
    with store.database.transaction():
        record, plaintext = store.create_key(name)
        detail = {"key_id": record.id, "prefix": record.prefix}
        audit.record(store.database, audit.API, "keys.create", name, detail)
    return KeyCreated(**key_record(record), key=plaintext)


def list_keys(store: StoreDep, customer: str | None = None) -> list[KeyOut]:
    """Every key (or one customer's, with `?customer=NAME`)."""
    return [KeyOut(**key_record(key)) for key in store.list_keys(customer)]


def get_key(key_id: str, store: StoreDep) -> KeyOut:
    return KeyOut(**key_record(store.get_key(key_id)))


def revoke_key(key_id: str, store: StoreDep) -> KeyOut:
    """Revoke a key at once (revoking it again changes nothing)."""
    with store.database.transaction():
        before = store.get_key(key_id)
        key = store.revoke_key(key_id)
        if before.revoked_at is None:
            detail = {"customer": key.customer_name}
            audit.record(store.database, audit.API, "keys.revoke", key_id, detail)
    return KeyOut(**key_record(key))


def routes() -> APIRouter:
    router = APIRouter()
    add = router.add_api_route
    add("/customers", list_customers, methods=["GET"], tags=["customers"])
    add("/customers", create_customer, methods=["POST"], status_code=201, tags=["customers"])
    add("/customers/{name}", get_customer, methods=["GET"], tags=["customers"])
    add("/customers/{name}/suspend", suspend_customer, methods=["POST"], tags=["customers"])
    add("/customers/{name}/resume", resume_customer, methods=["POST"], tags=["customers"])
    add("/customers/{name}/keys", list_customer_keys, methods=["GET"], tags=["keys"])
    add("/customers/{name}/keys", create_key, methods=["POST"], status_code=201, tags=["keys"])
    add("/keys", list_keys, methods=["GET"], tags=["keys"])
    add("/keys/{key_id}", get_key, methods=["GET"], tags=["keys"])
    add("/keys/{key_id}/revoke", revoke_key, methods=["POST"], tags=["keys"])
    return router


def _set_status(store: Store, name: str, status: CustomerStatus) -> CustomerOut:
    with store.database.transaction():
        before = store.get_customer(name)
        customer = store.set_customer_status(name, status)
        if before.status != status:
            action = "customers.suspend" if status == "suspended" else "customers.resume"
            audit.record(store.database, audit.API, action, name)
    return _customer(customer)


def _customer(customer: Customer) -> CustomerOut:
    return CustomerOut(**customer_record(customer))
