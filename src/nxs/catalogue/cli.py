"""`nxs models sync|list`: fal's catalogue of endpoint ids, as the gateway resolves with it.

`sync` reads fal's Platform API (`NXS_UPSTREAM_URL` reaches the emulator's) and replaces the
stored catalogue; running gateways pick it up at their next reload. `list` prints it.
"""

from __future__ import annotations

import argparse

from nxs.admin import audit
from nxs.admin.commands import Subparsers, add_group, add_json_flag, add_leaf
from nxs.admin.output import render
from nxs.catalogue.sync import PLATFORM_HOST, list_catalogue, sync_catalogue
from nxs.config import Settings
from nxs.store.store import Store

COLUMNS = ("endpoint", "category", "status")


def add_commands(subparsers: Subparsers) -> None:
    group = add_group(subparsers, "models", "fal's model catalogue (how shorthand paths resolve)")
    add_leaf(group, "sync", "import fal's endpoint ids (GET api.fal.ai/v1/models)", _sync)
    add_json_flag(add_leaf(group, "list", "list the stored endpoint ids", _list))


def _sync(store: Store, args: argparse.Namespace) -> int:
    base = Settings.from_env().upstream_base(PLATFORM_HOST)
    report = sync_catalogue(store, base)
    detail = {"endpoints": report.endpoints, "owners": report.owners}
    audit.record(store.database, audit.CLI, "models.sync", None, detail)
    print(
        f"Stored {report.endpoints} endpoint ids of {report.owners} owners ({report.pages} pages)."
    )
    return 0


def _list(store: Store, args: argparse.Namespace) -> int:
    records = [
        {"endpoint": e.endpoint, "category": e.category, "status": e.status}
        for e in list_catalogue(store.database)
    ]
    print(render(records, COLUMNS, as_json=args.json))
    return 0
