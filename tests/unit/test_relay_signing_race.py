"""The webhook signing key of a new database: the first openers (the workers of one or
several `nxs serve`, on each backend) race to make it and all sign with the one key made,
so a token or a delivery signed by one worker verifies against any other's JWKS."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from nxs.relay.signing import SigningKey
from nxs.store.crypto import SecretBox
from nxs.store.database import Database

OPENERS = 8


def test_first_openers_racing_on_a_new_database_agree_on_one_signing_key(
    open_db: Callable[[], Database],
) -> None:
    databases = [open_db() for _ in range(OPENERS)]
    box = SecretBox("the-one-secret", "NXS_SECRET_KEY")
    barrier = threading.Barrier(OPENERS)

    def first_open(database: Database) -> str:
        barrier.wait(timeout=10)
        return SigningKey.load_or_create(database, box).kid

    with ThreadPoolExecutor(OPENERS) as pool:
        kids = set(pool.map(first_open, databases))
    assert len(kids) == 1
    stored = databases[0].fetch_all("SELECT kid FROM relay_signing_keys")
    assert [row["kid"] for row in stored] == list(kids)
