"""The disk under SQLite fills up: billable calls are refused with fal's 503 at once,
nothing reaches fal and nothing is half written, the gateway keeps answering, and service
resumes once space is freed. The database lives on an 8 MiB tmpfs of its own (the tests
run as root), filled to the last byte by a file the test then removes.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from tests.e2e.conftest import (
    Deployment,
    Gateway,
    admin,
    eventually,
    launch,
    prepaid_customer,
)

pytestmark = pytest.mark.sqlite_only
ADMIN_TOKEN = "disk-full-admin-token-0123456789abc"
SDXL = "fal-ai/fast-sdxl"
UPSTREAM = "acct-full:secret-full-0001"  # its own account at the shared emulator


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Empty the WAL (else writes reuse its space), then take every byte left."""
    with closing(sqlite3.connect(folder / "nxs.db")) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


@pytest.fixture
def on_small_disk(
    make_deployment: Callable[[], Deployment], tls_files: dict[str, Path], small_disk: Path
) -> Iterator[Gateway]:
    deployment = make_deployment()
    deployment.env.update(
        NXS_ADMIN_TOKEN=ADMIN_TOKEN, NXS_DATABASE_URL=f"sqlite:///{small_disk}/nxs.db"
    )
    gateway = launch(deployment, tls_files)
    yield gateway
    gateway.client.close()
    gateway.server.stop()  # before the tmpfs goes


def test_a_full_disk_refuses_billable_calls_with_503_then_service_resumes(
    on_small_disk: Gateway, small_disk: Path
) -> None:
    gateway = on_small_disk
    customer = prepaid_customer(gateway, "full", UPSTREAM)
    filler = fill(small_disk)
    refused = gateway.request("POST", f"/{SDXL}", customer.key, json={"prompt": "a"})
    assert refused.status_code == 503
    assert refused.json() == {
        "detail": "Database unavailable",
        "error_type": "database_unavailable",
    }
    assert gateway.request("GET", "/healthz").status_code == 200
    assert gateway.deployment.received("acct-full") == []  # nothing reached fal
    assert gateway.deployment.rows("SELECT status FROM ledger") == []  # nothing half written
    filler.unlink()

    def answered() -> bool:  # the writer's next try (each second) ends the outage
        return gateway.request("POST", f"/{SDXL}", customer.key, json={"prompt": "b"}).is_success

    assert eventually(answered, 5)
    assert len(gateway.deployment.received("acct-full")) == 1  # the answered run alone
    rows = gateway.deployment.rows("SELECT status, cost_micros FROM ledger")
    assert [(row["status"], row["cost_micros"]) for row in rows] == [("settled", 10_000)]
    assert admin(gateway, "GET", "/customers/full/balance")["available"] == "0.99"
    assert "Traceback" not in gateway.server.log()
