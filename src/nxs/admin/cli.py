"""The admin commands: `nxs customers …`, `nxs keys …`, `nxs upstream …`.

Each opens the store named by `NXS_DATABASE_URL` (changes reach running gateways via
the store version), does one thing and prints the outcome. Failures print one line,
`nxs: <detail>`, on stderr and exit with status 2. Fal keys are read from stdin only.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from nxs.admin import audit, billing_cli, operators_cli
from nxs.admin.commands import Subparsers, add_group, add_json_flag, add_leaf
from nxs.admin.output import customer_record, key_record, render, upstream_record
from nxs.admin.pool_view import shared_loads
from nxs.catalogue import cli as catalogue_cli
from nxs.config import Settings
from nxs.errors import BadRequest
from nxs.portal import cli as portal_cli
from nxs.store.models import CustomerStatus
from nxs.store.store import Store

CUSTOMER_COLUMNS = ("name", "id", "status", "created_at")
KEY_COLUMNS = ("id", "customer", "prefix", "status", "created_at", "revoked_at")
UPSTREAM_COLUMNS = (
    "name",
    "id",
    "state",
    "weight",
    "concurrency",
    "key",
    "reason",
    "outstanding",
    "cooldown_seconds",
    "last_error",
    "last_error_at",
)


def add_commands(subparsers: Subparsers) -> None:
    """Add `customers`, `keys` and `upstream` with their subcommands."""
    _add_customer_commands(subparsers)
    _add_key_commands(subparsers)
    _add_upstream_commands(subparsers)
    billing_cli.add_commands(subparsers)  # plans, subscriptions, credits, pricing, usage
    catalogue_cli.add_commands(subparsers)  # models sync | list
    operators_cli.add_commands(subparsers)  # who may sign in to /console


# -- customers -------------------------------------------------------------------


def _add_customer_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "customers", "manage customers (the owners of nxs_ keys)")
    create = add_leaf(group, "create", "create a customer", _create_customer)
    create.add_argument("name", metavar="NAME", help="the new customer's name (unique)")
    suspend = add_leaf(group, "suspend", "suspend a customer: its keys get 402", _suspend)
    suspend.add_argument("name", metavar="NAME", help="the customer to suspend")
    resume = add_leaf(group, "resume", "make a suspended customer active again", _resume)
    resume.add_argument("name", metavar="NAME", help="the customer to resume")
    add_json_flag(add_leaf(group, "list", "list customers", _list_customers))
    portal_cli.add_invite(group)  # a one-time /portal sign-up link


@contextmanager
def _audited(
    store: Store, action: str, target: str, detail: audit.Detail | None = None
) -> Iterator[None]:
    """One transaction for a change and its audit entry: both land or neither does."""
    with store.database.transaction():
        yield
        audit.record(store.database, audit.CLI, action, target, detail)


def _create_customer(store: Store, args: argparse.Namespace) -> int:
    with _audited(store, "customers.create", args.name):
        customer = store.create_customer(args.name)
    print(f"Created customer '{customer.name}' ({customer.id}).")
    return 0


def _suspend(store: Store, args: argparse.Namespace) -> int:
    return _set_status(store, args.name, "suspended")


def _resume(store: Store, args: argparse.Namespace) -> int:
    return _set_status(store, args.name, "active")


def _set_status(store: Store, name: str, status: CustomerStatus) -> int:
    before = store.get_customer(name)
    action = "customers.suspend" if status == "suspended" else "customers.resume"
    with _audited(store, action, name):
        store.set_customer_status(name, status)
    if before.status == status:
        print(f"Customer '{name}' is already {status}.")
    else:
        print(f"Customer '{name}' is now {status}.")
    return 0


def _list_customers(store: Store, args: argparse.Namespace) -> int:
    records = [customer_record(customer) for customer in store.list_customers()]
    print(render(records, CUSTOMER_COLUMNS, as_json=args.json))
    return 0


# -- customer keys ---------------------------------------------------------------


def _add_key_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "keys", "manage customers' nxs_ API keys")
    create = add_leaf(group, "create", "create a key; the key is printed once, last", _create_key)
    create.add_argument("customer", metavar="CUSTOMER", help="the customer the key is for")
    listing = add_leaf(group, "list", "list keys (never their secret part)", _list_keys)
    listing.add_argument(
        "customer", nargs="?", metavar="CUSTOMER", help="only this customer's keys"
    )
    add_json_flag(listing)
    revoke = add_leaf(group, "revoke", "revoke a key at once", _revoke_key)
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `nxs keys list` shows")


def _create_key(store: Store, args: argparse.Namespace) -> int:
    with _audited(store, "keys.create", args.customer):
        record, plaintext = store.create_key(args.customer)
    print(f"Created key {record.id} for customer '{record.customer_name}'.")
    if store.get_customer(args.customer).status != "active":
        print("The customer is suspended: the key answers 402 until `nxs customers resume`.")
    print("The key is shown only this once; store it now:")
    print(plaintext)
    return 0


def _list_keys(store: Store, args: argparse.Namespace) -> int:
    records = [key_record(key) for key in store.list_keys(args.customer)]
    print(render(records, KEY_COLUMNS, as_json=args.json))
    return 0


def _revoke_key(store: Store, args: argparse.Namespace) -> int:
    before = store.get_key(args.key_id)
    with _audited(store, "keys.revoke", args.key_id):
        key = store.revoke_key(args.key_id)
    if before.revoked_at is not None:
        print(f"Key {key.id} of customer '{key.customer_name}' was already revoked.")
    else:
        print(f"Revoked key {key.id} of customer '{key.customer_name}'.")
    return 0


# -- upstream keys ---------------------------------------------------------------


def _add_upstream_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "upstream", "manage the pool of upstream fal keys")
    add = add_leaf(group, "add", "add a fal key, read from stdin", _add_upstream)
    add.add_argument("name", metavar="NAME", help="a name for the key in the pool (unique)")
    add.add_argument("--weight", type=int, default=1, help="share of traffic (default 1)")
    add.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="requests fal runs at once for this account (default 2, fal's starting limit)",
    )
    change = add_leaf(group, "set", "change a key's weight or concurrency", _set_upstream)
    change.add_argument("name", metavar="NAME", help="the key's name in the pool")
    change.add_argument("--weight", type=int, help="share of traffic")
    change.add_argument("--concurrency", type=int, help="requests fal runs at once for it")
    listing = add_leaf(
        group, "list", "list keys (masked), state, weight, concurrency", _list_upstream
    )
    add_json_flag(listing)
    remove = add_leaf(group, "remove", "remove a key from the pool", _remove_upstream)
    remove.add_argument("name", metavar="NAME", help="the key's name in the pool")
    enable = add_leaf(group, "enable", "put a disabled or suspended key back", _enable_upstream)
    enable.add_argument("name", metavar="NAME", help="the key's name in the pool")


def _add_upstream(store: Store, args: argparse.Namespace) -> int:
    secret = _read_secret()
    detail = {"weight": args.weight, "concurrency": args.concurrency}
    with _audited(store, "upstream.add", args.name, detail):
        key = store.add_upstream(args.name, secret, args.weight, args.concurrency)
    print(
        f"Added upstream key '{key.name}' ({key.id}, {key.masked}, weight {key.weight},"
        f" concurrency {key.concurrency})."
    )
    return 0


def _set_upstream(store: Store, args: argparse.Namespace) -> int:
    if args.weight is None and args.concurrency is None:
        raise BadRequest("Nothing to change: give --weight and/or --concurrency")
    detail = {"weight": args.weight, "concurrency": args.concurrency}
    with _audited(store, "upstream.set", args.name, detail):
        key = store.set_upstream(args.name, weight=args.weight, concurrency=args.concurrency)
    print(f"Upstream key '{key.name}': weight {key.weight}, concurrency {key.concurrency}.")
    return 0


def _read_secret() -> str:
    """The fal key from stdin (prompted without echo on a terminal), stripped."""
    if sys.stdin is None:
        raise BadRequest("No fal key given: pipe it on stdin")
    secret = getpass.getpass("fal key: ") if sys.stdin.isatty() else sys.stdin.read()
    if not secret.strip():
        raise BadRequest(
            "No fal key given: pipe it on stdin, e.g. `echo $FAL_KEY | nxs upstream add NAME`"
        )
    return secret.strip()


def _list_upstream(store: Store, args: argparse.Namespace) -> int:
    keys = store.list_upstream()
    records = [upstream_record(key) for key in keys]
    loads = shared_loads(Settings.from_env(), [key.id for key in keys])
    for record in records:
        load = None if loads is None else loads.get(str(record["id"]))
        record["outstanding"] = None if load is None else load.in_flight
        record["cooldown_seconds"] = None if load is None else round(load.cooldown, 1)
    print(render(records, UPSTREAM_COLUMNS, as_json=args.json))
    return 0


def _remove_upstream(store: Store, args: argparse.Namespace) -> int:
    with _audited(store, "upstream.remove", args.name):
        key = store.remove_upstream(args.name)
    print(f"Removed upstream key '{key.name}' ({key.id}, {key.masked}).")
    return 0


def _enable_upstream(store: Store, args: argparse.Namespace) -> int:
    before = store.get_upstream(args.name)
    with _audited(store, "upstream.enable", args.name):
        key = store.enable_upstream(args.name)
    if before.state != "active":
        print(f"Enabled upstream key '{key.name}' (was {before.state}).")
    else:
        print(f"Upstream key '{key.name}' is already active.")
    return 0
