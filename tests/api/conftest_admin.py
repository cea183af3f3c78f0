"""Fixtures of the admin API tests: a real `nxs serve` (fresh SQLite database, in front of
the real emulator) with `NXS_ADMIN_TOKEN` set, driven over HTTP with httpx.

Imported by the `test_admin_api*.py` modules (`from tests.api.conftest_admin import …`).
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.servers import RunningServer, free_port, run_nxs, start_nxs
from tests.support.servers import eventually as eventually

TOKEN = "admin-token-for-tests-7f3a9c"
FAL_KEY = "acct-main:secret-main-0001"


@dataclass
class AdminGateway:
    """A running gateway, its environment, and helpers for the admin API and the data plane."""

    server: RunningServer
    env: dict[str, str]
    client: httpx.Client
    token: str | None

    def admin(
        self, method: str, path: str, token: str | None = "", **kwargs: Any
    ) -> httpx.Response:
        """Call `/admin/v1{path}` with the configured token (or `token` if given; None: none)."""
        token = self.token if token == "" else token
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(
            method, f"{self.server.url}/admin/v1{path}", headers=headers, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.server.url + path, **kwargs)

    def key_works(self, key: str) -> int:
        """The status a data-plane call with this customer key gets (401 = unknown key)."""
        path = "/queue/fal-ai/x/requests/unknown/status"
        return self.get(path, headers={"Authorization": f"Key {key}"}).status_code

    def nxs(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run an `nxs` admin command against the same database."""
        return run_nxs(*args, env=self.env, stdin=stdin)


def launch(folder: Path, emulator_url: str, token: str | None) -> AdminGateway:
    env = {
        "NXS_DATABASE_URL": f"sqlite:///{folder / 'nxs.db'}",
        "NXS_SECRET_KEY_FILE": str(folder / "nxs.secret"),
        "NXS_UPSTREAM_URL": emulator_url,
        "NXS_REFRESH_SECONDS": "0.2",
        "NXS_ADMIN_TOKEN": token or "",
    }
    port = free_port()
    with warnings.catch_warnings():  # the log file handle is left to the child
        warnings.simplefilter("ignore", ResourceWarning)
        server = start_nxs(
            ["serve", "--port", str(port)], port=port, log_path=folder / "gateway.log", env=env
        )
    return AdminGateway(server, env, httpx.Client(timeout=30), token)


def _running(folder: Path, emulator_url: str, token: str | None) -> Iterator[AdminGateway]:
    gateway = launch(folder, emulator_url, token)
    yield gateway
    gateway.client.close()
    gateway.server.stop()


@pytest.fixture(scope="module")
def admin_gateway(
    tmp_path_factory: pytest.TempPathFactory, emulator: RunningServer
) -> Iterator[AdminGateway]:
    """`nxs serve` with an admin token, shared by the tests of one module."""
    yield from _running(tmp_path_factory.mktemp("admin"), emulator.url, TOKEN)


@pytest.fixture(scope="module")
def disabled_gateway(
    tmp_path_factory: pytest.TempPathFactory, emulator: RunningServer
) -> Iterator[AdminGateway]:
    """`nxs serve` without NXS_ADMIN_TOKEN: the admin API is off."""
    yield from _running(tmp_path_factory.mktemp("admin-off"), emulator.url, None)
