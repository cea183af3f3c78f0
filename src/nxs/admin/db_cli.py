"""`nxs db upgrade`, `nxs db status` and `nxs db copy`: the database `NXS_DATABASE_URL` names.

`upgrade` applies the migrations this NXS knows and the database lacks (under the
migration lock, so it is safe while gateways run); `status` shows the version the
database is at and the one this NXS expects; `copy --to URL` moves every row into another,
empty database (SQLite → PostgreSQL), migrating it first. None needs the secret key: the
upstream keys travel sealed, and open with the same `NXS_SECRET_KEY` on the other side.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nxs.admin.commands import Subparsers, add_group
from nxs.config import Settings
from nxs.errors import NxsError
from nxs.store.copy import copy_database
from nxs.store.database import Database, parse_url
from nxs.store.migrations import MIGRATIONS, check_version, migrate, schema_version
from nxs.store.store import connect

DatabaseHandler = Callable[[Database], int]


def add_commands(subparsers: Subparsers) -> None:
    group = add_group(
        subparsers, "db", "the database: schema version, upgrades, a move to another database"
    )
    upgrade = group.add_parser(
        "upgrade", help="apply the schema migrations the database lacks", description=__doc__
    )
    upgrade.set_defaults(run=_on_database(_upgrade))
    status = group.add_parser(
        "status", help="show the database's schema version and this NXS's", description=__doc__
    )
    status.set_defaults(run=_on_database(_status))
    copy = group.add_parser(
        "copy",
        help="copy every row into another, empty database (e.g. SQLite → PostgreSQL)",
        description=__doc__,
    )
    copy.add_argument(
        "--to", required=True, metavar="URL", help="the target database (postgresql://…)"
    )
    copy.set_defaults(run=_copy)


def _on_database(handler: DatabaseHandler) -> Callable[[argparse.Namespace], int]:
    """Run `handler` on the configured database; NXS errors become `nxs: …`, exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            settings = Settings.from_env()
            database = connect(parse_url(settings.database_url), 1)
        except ValueError as error:
            print(f"nxs: Invalid NXS_ setting: {error}", file=sys.stderr)
            return 2
        except NxsError as error:
            print(f"nxs: {error}", file=sys.stderr)
            return 2
        try:
            return handler(database)
        except NxsError as error:
            print(f"nxs: {error}", file=sys.stderr)
            return 2
        finally:
            database.close()

    return run


def _copy(args: argparse.Namespace) -> int:
    """Migrate the target, then copy the configured database into it in one transaction."""

    def into_target(source: Database) -> int:
        target = connect(parse_url(args.to), 1)
        try:
            migrate(target)
            total = copy_database(source, target, _report)
        finally:
            target.close()
        print(f"Copied {total} rows. Point NXS_DATABASE_URL at the new database.")
        return 0

    return _on_database(into_target)(args)


def _report(table: str, rows: int) -> None:
    print(f"  {table}: {rows}")


def _upgrade(database: Database) -> int:
    applied = migrate(database)
    latest = len(MIGRATIONS)
    if applied:
        listed = ", ".join(str(version) for version in applied)
        print(f"Upgraded the database schema to version {latest} (applied {listed}).")
    else:
        print(f"The database schema is at version {latest}: nothing to do.")
    return 0


def _status(database: Database) -> int:
    current, latest = schema_version(database), len(MIGRATIONS)
    print(f"schema version: {current}")
    print(f"this NXS knows: {latest}")
    check_version(database)  # newer: refused; older: "run `nxs db upgrade`" (exit 2)
    print("up to date")
    return 0
