"""Fixtures shared by the unit tests that need a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nxs.store.database import Database
from nxs.store.migrations import migrate
from nxs.store.sqlite import SqliteDatabase


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite file of its own."""
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    migrate(database)
    yield database
    database.close()
