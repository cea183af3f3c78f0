"""Two workers claim one Idempotency-Key at once, each inside its own ledger batch: the
second waits for the first's commit and is told the request is in progress — never both
sent to fal (on PostgreSQL READ COMMITTED alone would let both read "no row")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from nxs.billing import replay
from nxs.billing.errors import IdempotentRequestInProgress
from nxs.store import customers
from nxs.store.database import Database


def test_a_key_claimed_in_an_open_batch_is_in_progress_for_another_worker(
    open_db: Callable[[], Database],
) -> None:
    first, second = open_db(), open_db()
    with first.transaction():
        cid = customers.create(first, "acme").id
    claimed, release = threading.Event(), threading.Event()

    def first_batch() -> None:
        with first.transaction():
            assert replay.claim(first, cid, "idem-1", "fp", time.time()) is None
            claimed.set()
            release.wait(5)  # the rest of its batch, then COMMIT

    worker = threading.Thread(target=first_batch)
    worker.start()
    claimed.wait(5)
    threading.Timer(0.3, release.set).start()
    with pytest.raises(IdempotentRequestInProgress), second.transaction():
        replay.claim(second, cid, "idem-1", "fp", time.time())
    worker.join()
