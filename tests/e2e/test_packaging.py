"""The image's recipe without a Docker engine: the wheel built from this checkout,
installed with the runtime lock only in a fresh venv, serves; it has no emulator
dependencies. The Dockerfile passes hadolint, docker-compose.yml the Compose
specification's JSON schema, the systemd unit `systemd-analyze verify`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.servers import ROOT, eventually, free_port

BIN = Path(sys.executable).parent  # the test venv's tools: uv, hadolint, check-jsonschema


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [str(arg) for arg in args]
    # uv trusts the system's CA store as pip does (the package index may sit behind a
    # TLS-inspecting proxy whose CA only the system knows)
    env = {**os.environ, "UV_SYSTEM_CERTS": "1"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the built wheel and the runtime lock, nothing else (uv's cache makes
    a second run take seconds)."""
    folder = tmp_path_factory.mktemp("wheel")
    built = run(BIN / "uv", "build", "--wheel", "--quiet", "--out-dir", folder, ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = folder.glob("nxs-*.whl")
    venv = folder / "venv"
    assert run(BIN / "uv", "venv", "--quiet", "--python", sys.executable, venv).returncode == 0
    lock = ROOT / "requirements" / "runtime.lock"
    python = venv / "bin" / "python"
    done = run(BIN / "uv", "pip", "install", "--quiet", "--python", python, "-r", lock, wheel)
    assert done.returncode == 0, done.stderr
    return venv


@pytest.fixture(scope="module")
def served(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`nxs serve` from the installed wheel, on SQLite; its base URL."""
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {**os.environ, "NXS_DATABASE_URL": f"sqlite:///{folder}/nxs.db"}
    with (folder / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [installed / "bin" / "nxs", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,  # not the checkout: nothing may come from src/
        )
    url = f"http://127.0.0.1:{port}"
    try:
        assert eventually(lambda: _answers(url + "/healthz"), 30), (
            folder / "serve.log"
        ).read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_installed_wheel_serves(served: str) -> None:
    assert httpx.get(served + "/healthz").json() == {"status": "ok"}
    assert httpx.get(served + "/fal-ai/flux/dev").status_code == 401  # its own routes


def test_the_gateway_install_has_no_emulator_dependencies(installed: Path) -> None:
    python = installed / "bin" / "python"
    found = run(
        python,
        "-c",
        "import importlib.util as u; print(u.find_spec('PIL'), u.find_spec('msgpack'))",
    )
    assert found.stdout.strip() == "None None"
    emulator = run(installed / "bin" / "nxs", "emulator")
    assert emulator.returncode == 1
    assert emulator.stderr.strip() == (
        "nxs emulator: PIL is missing; install the extra: pip install 'nxs[emulator]'"
    )


def test_the_dockerfile_passes_hadolint() -> None:
    linted = run(BIN / "hadolint", ROOT / "Dockerfile")
    assert linted.returncode == 0, linted.stdout


def test_the_compose_file_follows_the_compose_specification() -> None:
    checked = run(
        BIN / "check-jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        ROOT / "docker-compose.yml",
    )
    assert checked.returncode == 0, checked.stdout


def test_the_systemd_unit_verifies(installed: Path, tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "nxs.service").read_text()
    local = tmp_path / "nxs.service"  # the unit as installed, pointing at this venv
    local.write_text(unit.replace("/opt/nxs/bin/nxs", str(installed / "bin" / "nxs")))
    verified = run("systemd-analyze", "verify", local)
    assert verified.returncode == 0, verified.stderr
