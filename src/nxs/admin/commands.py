"""The plumbing every admin command shares: argparse groups and leaves, and `command`,
which opens the store for a handler and turns NXS errors into one `nxs: …` line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nxs.config import Settings
from nxs.errors import NxsError
from nxs.store.store import Store

Subparsers = argparse._SubParsersAction
Handler = Callable[[Store, argparse.Namespace], int]


def command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Run `handler` on a freshly opened store; NXS errors become `nxs: …`, exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            settings = Settings.from_env()
        except ValueError as error:
            print(f"nxs: Invalid NXS_ setting: {error}", file=sys.stderr)
            return 2
        try:
            with Store.open(settings) as store:
                return handler(store, args)
        except NxsError as error:
            print(f"nxs: {error}", file=sys.stderr)
            return 2

    return run


def add_group(subparsers: Subparsers, name: str, help_text: str) -> Subparsers:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_leaf(
    group: Subparsers, name: str, help_text: str, handler: Handler
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(run=command(handler))
    return parser


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
