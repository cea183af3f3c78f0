"""Claims and job leases between processes sharing one database: two connections to one
database (SQLite and PostgreSQL) stand for two workers (or replicas); what one claims the
other does not get, a job lease has one holder until it lapses."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from nxs.store.claims import claim_due, hold_lease
from nxs.store.database import Database

SELECT = "SELECT id FROM jobs WHERE due_at <= ? ORDER BY due_at LIMIT ?"


@pytest.fixture
def pair(open_db: Callable[[], Database]) -> tuple[Database, Database]:
    first = open_db()
    first.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, due_at DOUBLE PRECISION)")
    return first, open_db()


def claim(db: Database, limit: int, lease: float = 60.0) -> list[str]:
    moment = time.time()
    rows = claim_due(
        db, SELECT, (moment, limit), table="jobs", due_column="due_at", lease_until=moment + lease
    )
    return [row["id"] for row in rows]


def test_two_claimers_split_the_due_rows_between_them(pair: tuple[Database, Database]) -> None:
    first = pair[0]
    first.execute_many("INSERT INTO jobs VALUES (?, ?)", [(f"j{n:02}", n) for n in range(40)])
    with ThreadPoolExecutor(2) as threads:
        claimed = list(threads.map(lambda db: [claim(db, 5) for _ in range(8)], pair))
    ids = [job for rounds in claimed for batch in rounds for job in batch]
    assert sorted(ids) == [f"j{n:02}" for n in range(40)]


def test_a_claimed_row_comes_back_when_its_lease_ends(pair: tuple[Database, Database]) -> None:
    first, second = pair
    first.execute("INSERT INTO jobs VALUES ('j1', 0)")
    assert claim(first, 10, lease=0.2) == ["j1"]
    assert claim(second, 10) == []
    time.sleep(0.25)
    assert claim(second, 10) == ["j1"]


def test_a_job_lease_has_one_holder_until_it_lapses(pair: tuple[Database, Database]) -> None:
    first, second = pair
    assert hold_lease(first, "probe", "worker-a", 0.3)
    assert not hold_lease(second, "probe", "worker-b", 0.3)
    assert hold_lease(first, "probe", "worker-a", 0.3)  # the holder keeps it
    time.sleep(0.35)
    assert hold_lease(second, "probe", "worker-b", 0.3)
    assert not hold_lease(first, "probe", "worker-a", 0.3)


def test_leases_on_different_jobs_are_independent(pair: tuple[Database, Database]) -> None:
    first, second = pair
    assert hold_lease(first, "probe", "worker-a", 10)
    assert hold_lease(second, "stranded-holds", "worker-b", 10)
