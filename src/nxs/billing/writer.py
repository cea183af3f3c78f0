"""Group commit: one writer task per process runs queued ledger writes in one transaction.

Callers `await writer.run(operation)`; the writer takes everything queued (up to
`MAX_BATCH`), runs it in a worker thread inside one `BEGIN IMMEDIATE … COMMIT`, each
operation in its own savepoint (an operation that raises — e.g. InsufficientCredit — is
rolled back alone and its caller gets the exception), and resolves the futures only after
the commit: an answer released after `await run(…)` is durable (WAL survives SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

from nxs.store.database import Database

LOG = logging.getLogger("nxs.billing")
MAX_BATCH: Final = 200
T = TypeVar("T")
Operation = Callable[[Database], Any]
Item = tuple[Operation, "asyncio.Future[Any]"]


class LedgerWriter:
    """The single writer of ledger, balance and idempotency rows in this process."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def run(self, operation: Callable[[Database], T]) -> T:
        """Run `operation(db)` in the next batch; returns (or raises) once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((operation, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await asyncio.to_thread(self._commit, batch)
            except Exception as exc:  # the commit itself failed: every caller learns it
                LOG.exception("ledger batch of %d failed", len(batch))
                outcomes = [(False, exc)] * len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _commit(self, batch: list[Item]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        db = self._db
        with db.transaction():
            for operation, _ in batch:
                db.execute("SAVEPOINT op")
                try:
                    outcomes.append((True, operation(db)))
                except Exception as exc:
                    db.execute("ROLLBACK TO SAVEPOINT op")
                    outcomes.append((False, exc))
                db.execute("RELEASE SAVEPOINT op")
        return outcomes
