"""`scripts/demo` as a newcomer meets it: a fresh `git clone`, no `NXS_*` variable, no venv.

The clone is of ROOT's committed HEAD (commit to test a change). One clone serves the
module: its first run creates the venv (~15 s from pip's cache), later runs reuse it.
Default ports 8000/9100 that are taken are replaced by free ones (the demo prints them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.servers import ROOT


@dataclass(frozen=True)
class Clone:
    folder: Path
    env: dict[str, str]  # the newcomer's: no NXS_* variable, no venv on PATH
    first_run: subprocess.CompletedProcess[str]


def newcomer_env() -> dict[str, str]:
    venvs = (str(ROOT / ".venv" / "bin"), os.environ.get("VIRTUAL_ENV", "\0") + "/bin")
    path = [part for part in os.environ.get("PATH", "").split(os.pathsep) if part not in venvs]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NXS_")}
    env.pop("VIRTUAL_ENV", None)
    return {**env, "PATH": os.pathsep.join(path)}


def run_once(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["scripts/demo", "--once"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    folder = tmp_path_factory.mktemp("newcomer") / "nxs"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True, timeout=60)
    env = newcomer_env()
    return Clone(folder, env, run_once(folder, env))


def key_of(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if "customer key" in line).split()[-1]


def first_curl(stdout: str) -> str:
    """The first `curl …` command printed, with its `\\` continuation lines."""
    match = re.search(r"^ *(curl .*?[^\\])$", stdout, re.MULTILINE | re.DOTALL)
    assert match is not None, stdout
    return match.group(1)


def readme_block(clone: Path, heading: str) -> str:
    """The first ```bash block of the README after `heading`."""
    readme = (clone / "README.md").read_text()
    match = re.search(rf"^{re.escape(heading)}$.*?^```bash\n(.*?)^```", readme, re.M | re.S)
    assert match is not None, heading
    return match.group(1)


def gateway_port(stdout: str) -> int:
    match = re.search(r"^NXS gateway: http://127\.0\.0\.1:(\d+)", stdout, re.MULTILINE)
    assert match is not None, stdout
    return int(match.group(1))


def assert_closed(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_first_run_in_a_fresh_clone_answers_a_real_call(clone: Clone) -> None:
    assert clone.first_run.returncode == 0, clone.first_run.stderr
    assert key_of(clone.first_run.stdout).startswith("nxs_")
    result = json.loads(clone.first_run.stdout.strip().splitlines()[-1])
    assert (result["images"][0]["width"], result["seed"]) == (512, 7)
    assert (clone.folder / ".demo" / "nxs.secret").stat().st_mode & 0o777 == 0o600
    assert_closed(gateway_port(clone.first_run.stdout))  # --once stopped its servers


def test_second_run_reuses_the_demo_key(clone: Clone) -> None:
    second = run_once(clone.folder, clone.env)
    assert second.returncode == 0, second.stderr
    assert key_of(second.stdout) == key_of(clone.first_run.stdout)


@pytest.fixture
def serving(clone: Clone) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`scripts/demo` serving in its own process group, and what it printed up to Ctrl-C."""
    demo = subprocess.Popen(
        ["scripts/demo"],
        cwd=clone.folder,
        env=clone.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    printed = ""
    for line in demo.stdout:
        printed += line
        if "Ctrl-C" in line:
            break
    try:
        yield demo, printed
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
        demo.stdout.close()


def test_the_printed_curl_works_and_ctrl_c_stops_both_servers(
    serving: tuple[subprocess.Popen[str], str],
) -> None:
    demo, printed = serving
    curl = first_curl(printed)
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    image = json.loads(answer.stdout)["images"][0]
    assert (image["width"], image["height"], image["content_type"]) == (512, 512, "image/jpeg")
    with urllib.request.urlopen(image["url"], timeout=10) as response:
        assert response.read(3) == b"\xff\xd8\xff"  # a real JPEG

    demo.send_signal(signal.SIGINT)
    assert demo.wait(timeout=20) == 130
    with pytest.raises(ProcessLookupError):  # nothing of the demo's group is left
        os.killpg(demo.pid, 0)
    assert_closed(gateway_port(printed))


def test_the_readme_billing_commands_run_as_written_against_the_demo(
    clone: Clone, serving: tuple[subprocess.Popen[str], str]
) -> None:
    block = readme_block(clone.folder, "## Billing in one screen")
    done = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=clone.folder,
        env=clone.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Granted 12.50 USD to 'acme'" in done.stdout
