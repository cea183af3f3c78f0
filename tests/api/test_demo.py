"""`scripts/demo --once`: the README's first command starts the emulator and the gateway
and makes one real call through them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.servers import ROOT, free_port


def run_demo(state: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NXS_DEMO_DIR": str(state),
        "NXS_DEMO_PORT": str(free_port()),
        "NXS_DEMO_EMULATOR_PORT": str(free_port()),
    }
    return subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_demo_prints_a_key_and_answers_a_real_call(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    assert done.returncode == 0, done.stderr
    key_line = next(line for line in done.stdout.splitlines() if "customer key" in line)
    key = key_line.split()[-1]
    assert key.startswith("nxs_")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["images"][0]["width"] == 512
    assert result["seed"] == 7


def test_demo_reuses_its_customer_key_on_a_second_run(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stderr

    def key_of(out: str) -> str:
        return next(line for line in out.splitlines() if "customer key" in line).split()[-1]

    assert key_of(first.stdout) == key_of(second.stdout)
