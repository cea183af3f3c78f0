"""The `nxs` help an operator reads, from the installed `nxs` console script: the commands
grouped by job with first-run examples, the `NXS_*` variables of `nxs serve` with their
defaults, the units of `nxs pricing set`; and, walking the parser, a help line for every
subcommand and positional argument, every page within 80 columns.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path

import pytest

from nxs.billing.pricing import Unit
from nxs.cli import build_parser
from nxs.config import Settings
from nxs.settings_help import VARIABLES

NXS = Path(sys.executable).parent / "nxs"  # the console script pip installed beside python


def help_of(*command: str) -> list[str]:
    """The lines `nxs COMMAND… --help` prints on an 80-column terminal."""
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [str(NXS), *command, "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout.splitlines()


def sections(lines: list[str]) -> dict[str, list[str]]:
    """`title:` → the first word of each indented line under it, in order."""
    found: dict[str, list[str]] = {}
    title = ""
    for line in lines:
        if re.fullmatch(r"[a-z][^:]*:", line):
            title, found[line[:-1]] = line[:-1], []
        elif line.startswith("  ") and title and not line[2].isspace():
            found[title].append(line.split()[0])
    return found


def test_nxs_help_says_what_nxs_is_then_lists_the_commands_by_job() -> None:
    lines = help_of()
    assert lines[0] == "usage: nxs [-h] [--version] COMMAND ..."
    assert lines[2].startswith("NXS: a self-hosted gateway for fal.ai-compatible APIs")
    assert "{" not in "\n".join(lines)  # no flat {serve,emulator,…} listing
    groups = {title: names for title, names in sections(lines).items() if title != "examples"}
    assert groups == {
        "run": ["serve", "emulator", "config"],
        "customers and keys": ["customers", "keys"],
        "the upstream pool": ["upstream", "models"],
        "plans, prices and credit": ["plans", "subscriptions", "credits", "pricing"],
        "usage and costs": ["usage"],
        "the operator console": ["operators"],
        "the database": ["db"],
        "options": ["-h,", "--version"],
    }


def test_nxs_help_ends_with_a_first_run_and_an_offline_example() -> None:
    lines = help_of()
    indented = [line for line in lines[lines.index("examples:") :] if line.startswith("  ")]
    commands = [line.split("#")[0].strip() for line in indented if line.strip()[0] != "#"]
    assert commands == [
        "nxs customers create acme",
        "nxs keys create acme",
        'echo "$FAL_KEY" | nxs upstream add main',
        "nxs serve --port 8000",
        "nxs emulator --port 9100 &",
        "echo emulator-id:secret | nxs upstream add emulator",
        "NXS_UPSTREAM_URL=http://127.0.0.1:9100 nxs serve",
    ]


def test_serve_help_lists_every_nxs_variable_with_its_default() -> None:
    lines = help_of("serve")
    listed = dict(re.findall(r"^  (NXS_\w+) +(.+)$", "\n".join(lines), re.MULTILINE))
    assert set(listed) == {variable.name for variable in VARIABLES}
    assert listed["NXS_DATABASE_URL"] == "sqlite:///nxs.db"
    assert listed["NXS_REFRESH_SECONDS"] == "1"
    assert listed["NXS_RESERVATION_TTL_SECONDS"] == "3600"
    assert listed["NXS_ACCESS_LOG"] == "true"
    assert listed["NXS_ADMIN_TOKEN"] == "unset"
    assert listed["NXS_WEBHOOK_RETRY_DELAYS"] == "10,30,60,120,300,600,900,1800,3600"


def test_pricing_set_help_offers_the_billing_units() -> None:
    text = " ".join(line.strip() for line in help_of("pricing", "set"))
    offered = re.search(r"UNIT +what the price is per: ([a-z_, ]+?) +PRICE", text)
    assert offered is not None, text
    assert offered.group(1).split(", ") == [unit.value for unit in Unit]


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name asked of it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_the_help_table_names_exactly_the_variables_settings_reads() -> None:
    env = RecordingEnv()
    Settings.from_env(env)
    in_source = set(re.findall(r"NXS_[A-Z0-9_]+", inspect.getsource(Settings.from_env)))
    assert {variable.name for variable in VARIABLES} == env.asked | in_source
    assert {variable.field for variable in VARIABLES} <= {field.name for field in fields(Settings)}


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """`parser` and every subcommand's parser under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def missing_help(parser: argparse.ArgumentParser) -> Iterator[str]:
    """`prog: name` for each subcommand or positional argument of `parser` without help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            named = action._choices_actions
            yield from (f"{parser.prog}: {a.dest}" for a in named if not (a.help or "").strip())
        elif not action.option_strings and not (action.help or "").strip():
            yield f"{parser.prog}: {action.dest}"


def test_every_subcommand_and_positional_argument_has_help() -> None:
    assert [gap for parser in parsers(build_parser()) for gap in missing_help(parser)] == []


def test_every_help_page_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pages = {parser.prog: parser.format_help() for parser in parsers(build_parser())}
    wide = [(prog, line) for prog, page in pages.items() for line in page.splitlines()]
    assert [(prog, line) for prog, line in wide if len(line) > 80] == []
