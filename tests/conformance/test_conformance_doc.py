"""docs/conformance.md stays true: the client versions it names are the ones the tests
drive, and every test it cites as proof exists."""

from __future__ import annotations

import ast
import json
import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "conformance.md").read_text()
CITED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_the_documented_versions_are_the_tested_ones() -> None:
    package = json.loads((ROOT / "tests" / "js" / "package.json").read_text())
    js_version = package["dependencies"]["@fal-ai/client"]
    assert f"**@fal-ai/client {js_version}**" in DOC
    assert f"**fal-client {version('fal_client')}**" in DOC


def test_every_cited_test_exists() -> None:
    cited = set(CITED.findall(DOC))
    assert len(cited) >= 10
    for path, name in sorted(cited):
        tree = ast.parse((ROOT / path).read_text())
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in functions, f"{path}::{name} is cited in docs/conformance.md"
