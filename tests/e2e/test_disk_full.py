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
from typing import Any

import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway, eventually, launch

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


def admin(gateway: Gateway, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    answer = gateway.request(method, f"/admin/v1{path}", ADMIN_TOKEN, scheme="Bearer", json=body)
    assert answer.is_success, answer.text
    return answer.json()


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


def prepaid_customer(gateway: Gateway) -> Customer:
    """SDXL at 0.01 per image; a prepaid customer with 1 USD."""
    admin(gateway, "POST", "/upstream-keys", {"name": "main", "secret": UPSTREAM, "weight": 1})
    admin(gateway, "PUT", "/prices", {"pattern": SDXL, "unit": "image", "unit_price": "0.01"})
    admin(gateway, "POST", "/plans", {"name": "prepaid", "prepaid": True})
    admin(gateway, "POST", "/customers", {"name": "full"})
    admin(gateway, "PUT", "/customers/full/subscription", {"plan": "prepaid"})
    admin(gateway, "POST", "/customers/full/credits", {"amount": "1"})
    created = admin(gateway, "POST", "/customers/full/keys")
    customer = Customer("full", created["key"], created["id"])
    assert eventually(lambda: gateway.knows(customer.key))
    return customer


def test_a_full_disk_refuses_billable_calls_with_503_then_service_resumes(
    on_small_disk: Gateway, small_disk: Path
) -> None:
    gateway = on_small_disk
    customer = prepaid_customer(gateway)
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
