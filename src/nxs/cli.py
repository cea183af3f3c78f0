"""The `nxs` command: one parser, each subsystem adding its own subcommands.

`nxs emulator` (the local fal), `nxs serve` (the gateway) and the admin commands
(`customers`, `keys`, `upstream`) all live in their own packages; this module only
assembles them (the top-level help is `nxs.cli_help`'s) and runs the chosen one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nxs import __version__, cli_help, config_cli
from nxs.admin import cli as admin_cli
from nxs.admin import db_cli
from nxs.emulator import cli as emulator_cli
from nxs.gateway import cli as gateway_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nxs", formatter_class=cli_help.GroupedHelpFormatter, epilog=cli_help.EXAMPLES
    )
    parser.add_argument("--version", action="version", version=f"nxs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    emulator_cli.add_commands(commands)
    gateway_cli.add_commands(commands)
    config_cli.add_commands(commands)  # nxs config: the effective settings
    admin_cli.add_commands(commands)
    db_cli.add_commands(commands)  # nxs db upgrade | status
    parser.description = cli_help.describe(commands)  # the commands, grouped by job
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except CommandError as error:
        print(f"nxs: {error}", file=sys.stderr)
        return 2


class CommandError(Exception):
    """A command's user-facing failure: printed as one line, exit status 2."""
