"""The sealed secret marker a database keeps: the first openers of a new database (the
workers of one `nxs serve`, on each backend) race to write it and all agree on one; a
different secret is refused afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from nxs.store.crypto import CHECK_NAME, SecretBox, SecretKeyError, check_secret
from nxs.store.database import Database

OPENERS = 8


def test_first_openers_racing_on_a_new_database_agree_on_one_marker(
    open_db: Callable[[], Database],
) -> None:
    databases = [open_db() for _ in range(OPENERS)]
    box = SecretBox("the-one-secret", "NXS_SECRET_KEY")
    barrier = threading.Barrier(OPENERS)

    def first_open(database: Database) -> None:
        barrier.wait(timeout=10)
        check_secret(database, box)

    with ThreadPoolExecutor(OPENERS) as pool:
        list(pool.map(first_open, databases))  # none raises
    query = "SELECT value FROM store_meta WHERE name = ?"
    assert len(databases[0].fetch_all(query, (CHECK_NAME,))) == 1
    with pytest.raises(SecretKeyError, match="another-secret"):
        check_secret(databases[0], SecretBox("wrong", "another-secret"))
