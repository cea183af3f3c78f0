"""The official clients, driven as their users run them: `node` scripts under tests/js
(`@fal-ai/client`) and Python snippets (`fal_client`), each printing one JSON summary as
its last line of output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def run_node(
    script: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 90
) -> Any:
    """Run `node SCRIPT ARGS…` (with `env` on top of ours) and return its JSON summary."""
    return _summary(["node", str(script), *args], script.parent, env, timeout)


def run_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 90
) -> Any:
    """Run `python -c CODE ARGS…` (with `env` on top of ours) and return its JSON summary."""
    return _summary([sys.executable, "-c", code, *args], None, env, timeout)


def _summary(
    command: list[str], cwd: Path | None, env: Mapping[str, str] | None, timeout: float
) -> Any:
    """The JSON of the last line the command printed; a non-zero exit fails the test."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
