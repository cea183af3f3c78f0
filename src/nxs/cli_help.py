"""What `nxs --help` says: what NXS is, its commands grouped by the job they do, and two
first-run examples. The groups replace argparse's flat listing of every subcommand; each
command's help line is still the one its own module gave it.
"""

from __future__ import annotations

import argparse
import textwrap

SUMMARY = "NXS: a self-hosted gateway for fal.ai-compatible APIs, with a fal emulator."
WIDTH = 78  # argparse wraps its own sections at 78 columns too

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("run", ("serve", "emulator", "config")),
    ("customers and keys", ("customers", "keys")),
    ("the upstream pool", ("upstream", "models")),
    ("plans, prices and credit", ("plans", "subscriptions", "credits", "pricing")),
    ("usage and costs", ("usage",)),
    ("the operator console", ("operators",)),
    ("the database", ("db",)),
)

EXAMPLES = """\
examples:
  # first run: a customer and its key, a fal key for the pool, the gateway
  nxs customers create acme
  nxs keys create acme                      # prints acme's nxs_ key, once
  echo "$FAL_KEY" | nxs upstream add main   # the fal key is read from stdin
  nxs serve --port 8000

  # offline: the gateway in front of the local fal (which takes any key)
  nxs emulator --port 9100 &
  echo emulator-id:secret | nxs upstream add emulator
  NXS_UPSTREAM_URL=http://127.0.0.1:9100 nxs serve

`nxs COMMAND --help` shows a command's arguments; `nxs serve --help` lists the
NXS_* environment variables too, with their defaults."""


class GroupedHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description and epilog as written and leaves out the flat listing of
    the subcommands (the description lists them by group); the usage line is untouched."""

    def add_argument(self, action: argparse.Action) -> None:
        if isinstance(action, argparse._SubParsersAction):
            return
        super().add_argument(action)


def describe(commands: argparse._SubParsersAction) -> str:
    """The summary line, then every command under its group with its help line; a command
    no group names is listed under "other" rather than left out."""
    helps = {action.dest: action.help or "" for action in commands._choices_actions}
    grouped = [(title, [name for name in names if name in helps]) for title, names in GROUPS]
    named = {name for _, names in GROUPS for name in names}
    grouped.append(("other", [name for name in helps if name not in named]))
    column = max(len(name) for name in helps) + 4
    sections = [SUMMARY]
    for title, names in grouped:
        if names:
            lines = [f"{title}:"] + [_entry(name, helps[name], column) for name in names]
            sections.append("\n".join(lines))
    return "\n\n".join(sections)


def _entry(name: str, help_text: str, column: int) -> str:
    """`  name      help…`, the help wrapped at WIDTH under its own column."""
    return textwrap.fill(
        help_text,
        WIDTH,
        initial_indent=f"  {name:<{column - 2}}",
        subsequent_indent=" " * column,
    )
