"""`nxs operators create|list|remove`: who may sign in to the console at `/console`.

The password is read from a prompt (asked twice) or, with `--password-stdin`, from stdin;
it is never an argument, never printed and never audited. Each change is written with its
audit entry in one transaction, like every other admin command.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from nxs.admin import audit
from nxs.admin.commands import Subparsers, add_group, add_json_flag, add_leaf
from nxs.admin.output import render, timestamp
from nxs.console import operators
from nxs.errors import BadRequest
from nxs.store.store import Store
from nxs.web.passwords import Passwords, check_strength
from nxs.web.sessions import Sessions

COLUMNS = ("name", "role", "created_at", "signed_in_at")
CONSOLE_SESSIONS = "console"  # the session kind of /console (nxs.console.app)


def add_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "operators", "manage who may sign in to the console")
    create = add_leaf(group, "create", "create an operator (password prompted)", _create)
    create.add_argument("name", metavar="NAME", help="the operator's sign-in name (unique)")
    create.add_argument(
        "--role", choices=operators.ROLES, default="admin", help="admin (default) or viewer"
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    add_json_flag(add_leaf(group, "list", "list operators and their roles", _list))
    remove = add_leaf(group, "remove", "remove an operator", _remove)
    remove.add_argument("name", metavar="NAME", help="the operator to remove")


def _create(store: Store, args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)
    with store.database.transaction():
        operator = operators.create(store.database, Passwords(), args.name, password, args.role)
        audit.record(
            store.database, audit.CLI, "operators.create", operator.name, {"role": operator.role}
        )
    print(f"Created operator '{operator.name}' ({operator.role}).")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin or sys.stdin is None or not sys.stdin.isatty():
        text = sys.stdin.read() if sys.stdin is not None else ""
        return check_strength(text.splitlines()[0] if text else "")
    first = check_strength(getpass.getpass("Password: "))
    if getpass.getpass("Again: ") != first:
        raise BadRequest("The passwords differ")
    return first


def _list(store: Store, args: argparse.Namespace) -> int:
    records = [
        {
            "name": operator.name,
            "role": operator.role,
            "created_at": timestamp(operator.created_at),
            "signed_in_at": timestamp(operator.signed_in_at),
        }
        for operator in operators.list_all(store.database)
    ]
    print(render(records, COLUMNS, as_json=args.json))
    return 0


def _remove(store: Store, args: argparse.Namespace) -> int:
    with store.database.transaction():
        operator = operators.remove(store.database, args.name)
        Sessions(store.database, CONSOLE_SESSIONS).close_all(operator.id)  # signed out now
        audit.record(store.database, audit.CLI, "operators.remove", operator.name)
    print(f"Removed operator '{operator.name}'.")
    return 0
