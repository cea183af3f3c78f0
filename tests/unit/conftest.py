"""Fixtures shared by the unit tests that need a real store: one migrated database per
test, on each backend (`sqlite` and `postgres`), so the storage contract runs on both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nxs.store.database import Database, parse_url
from nxs.store.migrations import migrate
from nxs.store.offload import Offload
from nxs.store.sqlite import SqliteDatabase
from nxs.store.store import connect

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a migrated database as this test's own: a SQLite file, or the session's
    shared PostgreSQL database put back to the migrated template's rows."""
    if request.param == "sqlite":
        database = SqliteDatabase.open(tmp_path / "nxs.db")
        migrate(database)
        database.close()
        yield f"sqlite:///{tmp_path / 'nxs.db'}"
        return
    server, template = (
        request.getfixturevalue("postgres"),
        request.getfixturevalue("postgres_template"),
    )
    name = request.getfixturevalue("postgres_shared")
    server.reset(name, template)
    yield server.url(name)


@pytest.fixture
def open_db(database_url: str) -> Iterator[Callable[[], Database]]:
    """Opens connections to this test's database (another worker's, another process's);
    all are closed after the test."""
    opened: list[Database] = []

    def open_one() -> Database:
        opened.append(connect(parse_url(database_url)))
        return opened[-1]

    yield open_one
    for database in opened:
        database.close()


@pytest.fixture
def db(open_db: Callable[[], Database]) -> Database:
    """A migrated database of its own, on each backend."""
    return open_db()


@pytest.fixture
def offload(db: Database) -> Iterator[Offload]:
    """Where the writer commits: inline on SQLite, on store threads on PostgreSQL."""
    found = Offload(db, 4)
    yield found
    found.close()
