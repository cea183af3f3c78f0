"""Group commit: one writer task per process runs queued ledger writes in one transaction.

Callers `await writer.run(operation)`; the writer takes everything queued (up to
`MAX_BATCH`), runs it inside one `BEGIN IMMEDIATE … COMMIT` on the event loop (a WAL
commit without fsync is cheaper than a thread hop), and resolves the futures only after the
commit: an answer released after `await run(…)` is durable (WAL survives SIGKILL). An
operation that raises (e.g. InsufficientCredit) is undone alone and its caller gets it.
"""

from __future__ import annotations

import asyncio
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
    """The single writer of ledger, balance and idempotency rows in this process.

    Operations queued during one turn of the event loop are committed together by one
    callback scheduled at the end of that turn (`call_soon`): no task, no thread hop.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._pending: list[Item] = []
        self._scheduled = False

    def start(self) -> None:
        """Nothing to start (kept for symmetry with `stop`)."""

    async def stop(self) -> None:
        """Commit what is still queued."""
        if self._pending:
            self._flush()

    async def run(self, operation: Callable[[Database], T]) -> T:
        """Run `operation(db)` in the next batch; returns (or raises) once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((operation, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                outcomes = self._commit(batch)
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
        """Run the batch in one transaction; if an operation fails, redo the batch with a
        savepoint per operation so only the failed one is undone (failures are rare).
        """
        try:
            with self._db.transaction():
                return [(True, operation(self._db)) for operation, _ in batch]
        except Exception:
            return self._commit_isolated(batch)

    def _commit_isolated(self, batch: list[Item]) -> list[tuple[bool, Any]]:
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
