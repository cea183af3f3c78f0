"""SQLite locked by another process (`BEGIN IMMEDIATE` held) for longer than the busy
timeout: billable calls are refused with fal's 503 shape, nothing is half written, the
gateway keeps answering, and service resumes once the lock goes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
ADMIN_TOKEN = "database-locked-admin-token-0123456"
SDXL = "fal-ai/fast-sdxl"
UPSTREAM = "acct-locked:secret-locked-0001"  # its own account at the shared emulator


@pytest.fixture(scope="module")
def locked(
    make_deployment: Callable[[], Deployment], tls_files: dict[str, Path]
) -> Iterator[Gateway]:
    deployment = make_deployment()
    deployment.env.update(NXS_ADMIN_TOKEN=ADMIN_TOKEN, NXS_DATABASE_BUSY_SECONDS="0.5")
    gateway = launch(deployment, tls_files)
    yield gateway
    gateway.client.close()
    gateway.server.stop()


@contextmanager
def write_lock(gateway: Gateway) -> Iterator[None]:
    """Another process holds SQLite's write lock (`BEGIN IMMEDIATE`) meanwhile."""
    path = gateway.deployment.env["NXS_DATABASE_URL"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_billable_calls_get_503_while_the_database_is_locked_then_resume(
    locked: Gateway,
) -> None:
    customer = prepaid_customer(locked, "locked", UPSTREAM)
    with write_lock(locked):
        refused = locked.request("POST", f"/{SDXL}", customer.key, json={"prompt": "a"})
        assert locked.request("GET", "/healthz").status_code == 200
    assert refused.status_code == 503
    assert refused.json() == {
        "detail": "Database unavailable",
        "error_type": "database_unavailable",
    }
    assert locked.deployment.received("acct-locked") == []  # nothing reached fal
    assert locked.deployment.rows("SELECT status FROM ledger") == []  # nothing half written

    def answered() -> bool:  # the writer's next try (each second) ends the outage
        return locked.request("POST", f"/{SDXL}", customer.key, json={"prompt": "b"}).is_success

    assert eventually(answered, 5)
    assert len(locked.deployment.received("acct-locked")) == 1  # the answered run alone
    rows = locked.deployment.rows("SELECT status, cost_micros FROM ledger")
    assert [(row["status"], row["cost_micros"]) for row in rows] == [("settled", 10_000)]
    assert admin(locked, "GET", "/customers/locked/balance")["available"] == "0.99"
    assert "Traceback" not in locked.server.log()
