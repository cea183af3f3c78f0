"""Group commit: one writer per process runs queued ledger writes in one transaction.

Callers `await writer.run(operation)` or `await writer.execute(sql, params)`; the writer
takes everything queued (up to `MAX_BATCH` of each), runs it inside one `BEGIN IMMEDIATE …
COMMIT` on the event loop (plain statements grouped per SQL text — an INSERT of one VALUES
row becomes multi-row INSERTs of up to `ROWS_PER_INSERT`, a quarter cheaper per row than
`executemany`; a WAL commit without fsync is cheaper than a thread hop), and resolves the
futures only after the commit: an answer released after the await is durable (WAL
survives SIGKILL). A write that raises (e.g. InsufficientCredit) is undone alone and its
caller gets the error. On a network database (`Offload` not inline) the batch commits on a
store thread, one batch at a time; what is queued meanwhile forms the next batch, so rows
per commit grow with the round trip and the event loop never waits on it. There a batch's
rows go in one INSERT, and a batch of nothing else (the metered path) sends that INSERT
alone, a transaction by itself: one round trip per batch instead of BEGIN, INSERT, COMMIT.

When the database cannot be reached (`DatabaseError`), `outage` is set until a commit
succeeds (the gateway then refuses new billable calls with 503 before they reach fal), the
batch's operations fail, and its plain statements — rows of calls fal already answered —
are held in memory and retried every `RETRY_SECONDS` until they commit: not lost unless
the process dies before the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final, Generic, TypeVar

from nxs.store.database import Database, DatabaseError, Params
from nxs.store.offload import Offload

LOG = logging.getLogger("nxs.billing")
MAX_BATCH: Final = 200
ROWS_PER_INSERT: Final = 32  # statements of 1…32 rows: few enough for sqlite3's statement cache
NETWORK_ROWS_PER_INSERT: Final = 2 * MAX_BATCH  # a batch and its deferred rows in one INSERT
# A batch stays open this many turns of the event loop: under load a turn is busy with
# other requests' answers, so the batch grows (≈16 → ≈55 rows at c64) and every commit's
# WAL pages and locks are shared by more rows; idle, a turn takes microseconds.
COMMIT_TURNS: Final = 4
RETRY_SECONDS: Final = 1.0  # held rows are tried again this often during an outage
T = TypeVar("T")
ItemT = TypeVar("ItemT")
Operation = Callable[[Database], Any]
Deferrer = Callable[[str, Params], None]
Item = tuple[Operation, "asyncio.Future[Any]"]
Statement = tuple[str, Params, "asyncio.Future[None]"]


@dataclass(frozen=True, slots=True)
class Kind(Generic[ItemT]):
    """A write the writer may apply for a whole batch at once: `one` applies one item (and
    raises to refuse it), `all` applies a batch's items in a few statements and returns each
    one's outcome (`(True, value)` or `(False, error)`) without raising for one of them.
    On SQLite every item goes through `one` (a statement there costs microseconds); on a
    network database through `all` (a statement there is a round trip)."""

    one: Callable[[Database, ItemT, Deferrer], Any]
    all: Callable[[Database, Sequence[ItemT], Deferrer], list[tuple[bool, Any]]]
    # When the database is unreachable: the answer its caller gets while the item is held
    # and retried like an answered call's row (None: the item fails with the error).
    held: Callable[[ItemT], Any] | None = None


class _Grouped(Generic[ItemT]):
    """The queued operation for one item of a `Kind` (callable like any operation)."""

    __slots__ = ("defer", "item", "kind")

    def __init__(self, kind: Kind[ItemT], item: ItemT, defer: Deferrer) -> None:
        self.kind, self.item, self.defer = kind, item, defer

    def __call__(self, db: Database) -> Any:
        return self.kind.one(db, self.item, self.defer)


class LedgerWriter:
    """The single writer of ledger, balance and idempotency rows in this process.

    Operations queued during a few turns of the event loop (`COMMIT_TURNS`) are committed
    together by one callback (`call_soon`, passed on from turn to turn): no task, no
    thread hop.
    """

    def __init__(self, database: Database, offload: Offload | None = None) -> None:
        self._db = database
        self._offload = None if offload is None or offload.inline else offload
        self._rows_per_insert = (
            ROWS_PER_INSERT if self._offload is None else NETWORK_ROWS_PER_INSERT
        )
        self._committing: asyncio.Future[None] | None = None  # the batch on a store thread
        self.outage = False  # the last commit could not reach the database
        self._held: list[tuple[str, Params]] = []  # answered calls' rows, awaiting the database
        self._held_items: list[_Grouped[Any]] = []  # and their settlements and attachments
        self._retry: asyncio.TimerHandle | None = None
        self._pending: list[Item] = []
        self._statements: list[Statement] = []
        self._deferred: list[tuple[str, Params]] = []
        self._scheduled = False
        self._multi_row: dict[tuple[str, int], str | None] = {}

    def start(self) -> None:
        """Nothing to start (kept for symmetry with `stop`)."""

    async def stop(self) -> None:
        """Commit what is still queued (and what an outage held, if the database is back)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        held, self._held = self._held, []
        self._statements.extend(_pending_statement(sql, params) for sql, params in held)
        self._requeue_items()
        while self._committing is not None:
            await asyncio.wait([self._committing])
            await asyncio.sleep(0)  # let the done callback start the next batch
        if self._pending or self._statements:
            self._flush()
        while self._committing is not None:
            await asyncio.wait([self._committing])
            await asyncio.sleep(0)
        if self._retry is not None:
            self._retry.cancel()
        if self._held or self._held_items:
            LOG.error(
                "%d ledger writes lost: the database was unreachable at shutdown",
                len(self._held) + len(self._held_items),
            )

    async def run(self, operation: Callable[[Database], T]) -> T:
        """Run `operation(db)` in the next batch; returns (or raises) once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((operation, future))
        self._schedule(loop)
        return await future

    async def apply(self, kind: Kind[ItemT], item: ItemT) -> Any:
        """Like `run`, for an item of a `Kind`: applied with the batch's others of its kind."""
        return await self.run(_Grouped(kind, item, self.defer))

    async def execute(self, sql: str, params: Params) -> None:
        """Run one statement in the next batch (with others of the same SQL); returns once
        committed. The cheap path for a ledger insert.
        """
        await self.submit(sql, params)

    def submit(self, sql: str, params: Params) -> asyncio.Future[None]:
        """`execute` without the coroutine: the future resolves once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._statements.append((sql, params, future))
        self._schedule(loop)
        return future

    def defer(self, sql: str, params: Params) -> None:
        """Called by a running operation: run this statement after the batch's operations,
        in the same transaction (batched with others like it); if it fails, the operation
        that deferred it is undone with it.
        """
        self._deferred.append((sql, params))

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._turn, loop, COMMIT_TURNS - 1)

    def _turn(self, loop: asyncio.AbstractEventLoop, left: int) -> None:
        if left > 0:
            loop.call_soon(self._turn, loop, left - 1)
        else:
            self._flush()

    def _flush(self) -> None:
        self._scheduled = False
        if self._offload is not None:
            self._flush_offloaded()
            return
        while self._pending or self._statements:
            batch, statements = self._take()
            try:
                outcomes = self._commit(batch, statements)
            except Exception as exc:  # the commit itself failed
                outcomes = self._failed(exc, batch, statements)
            else:
                self.outage = False
            _resolve(batch, statements, outcomes)

    def _flush_offloaded(self) -> None:
        """Commit the next batch on a store thread unless one is committing already (its
        end starts the next)."""
        if self._committing is not None or not (self._pending or self._statements):
            return
        assert self._offload is not None
        batch, statements = self._take()
        committing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._committing = committing

        def committed(outcomes: list[tuple[bool, Any]] | None, error: BaseException | None) -> None:
            self._committing = None
            committing.set_result(None)
            if error is not None:
                outcomes = self._failed(error, batch, statements)
            else:
                assert outcomes is not None
                self.outage = False
            _resolve(batch, statements, outcomes)
            self._flush_offloaded()

        self._offload.submit_then(lambda: self._commit(batch, statements), committed)

    def _failed(
        self, error: BaseException, batch: list[Item], statements: list[Statement]
    ) -> list[tuple[bool, Any]]:
        """Every caller of a batch whose commit failed learns it — but when the database is
        unreachable, the plain statements and the items of a `Kind` that says so (rows,
        settlements and attachments of calls fal already answered) are held for a retry
        and their callers answered."""
        count = len(batch) + len(statements)
        if not isinstance(error, DatabaseError):
            LOG.error("ledger batch of %d failed", count, exc_info=error)
            return [(False, error)] * count
        if not self.outage:
            LOG.error("ledger unreachable (%s): new billable calls refused, rows held", error)
        self.outage = True
        self._held.extend((sql, params) for sql, params, _ in statements)
        outcomes = [self._hold(operation, error) for operation, _ in batch]
        self._schedule_retry()
        return outcomes + [(True, None)] * len(statements)

    def _hold(self, operation: Operation, error: BaseException) -> tuple[bool, Any]:
        if isinstance(operation, _Grouped) and operation.kind.held is not None:
            self._held_items.append(operation)
            return True, operation.kind.held(operation.item)
        return False, error

    def _schedule_retry(self) -> None:
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(RETRY_SECONDS, self._retry_held)

    def _retry_held(self) -> None:
        """Queue the held rows again (their callers were answered: nobody awaits them), or,
        with none held, an empty transaction: a commit that works ends the outage."""
        self._retry = None
        held, self._held = self._held, []
        if held or self._held_items:
            LOG.info("retrying %d held ledger writes", len(held) + len(self._held_items))
        for sql, params in held:
            self.submit(sql, params)
        if self._held_items:
            self._requeue_items()
            self._schedule(asyncio.get_running_loop())
        elif not held:
            probe: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            probe.add_done_callback(lambda done: done.exception())  # nobody awaits it
            self._pending.append((_nothing, probe))
            self._schedule(asyncio.get_running_loop())

    def _requeue_items(self) -> None:
        """Held items go back in the queue (their callers were answered: nobody awaits)."""
        items, self._held_items = self._held_items, []
        loop = asyncio.get_running_loop()
        for operation in items:
            future: asyncio.Future[Any] = loop.create_future()
            future.add_done_callback(lambda done: done.exception())
            self._pending.append((operation, future))

    def _take(self) -> tuple[list[Item], list[Statement]]:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        statements = self._statements[:MAX_BATCH]
        self._statements = self._statements[MAX_BATCH:]
        return batch, statements

    def _commit(self, batch: list[Item], statements: list[Statement]) -> list[tuple[bool, Any]]:
        """Run the batch in one transaction (operations first, then the statements grouped
        by SQL); if anything fails, redo the batch with a savepoint per item so only the
        failed one is undone (failures are rare).
        """
        db, self._deferred = self._db, []
        try:
            lone = self._lone_statement(batch, statements)
            if lone is not None:
                db.execute(*lone)
                return [(True, None)] * len(statements)
            with db.transaction():
                outcomes = self._operations(db, batch)
                work = self._deferred + [(sql, params) for sql, params, _ in statements]
                for sql, rows in _grouped(work).items():
                    self._execute_rows(sql, rows)
        except Exception:
            self._deferred = []  # those of the undone attempt
            singles = [(_statement(sql, params), future) for sql, params, future in statements]
            return self._commit_isolated(batch + singles)
        self._deferred = []
        return outcomes + [(True, None)] * len(statements)

    def _operations(self, db: Database, batch: list[Item]) -> list[tuple[bool, Any]]:
        """Run the batch's operations; on a network database, each `Kind`'s items at once
        (after the other operations)."""
        if self._offload is None:
            return [(True, operation(db)) for operation, _ in batch]
        outcomes: list[tuple[bool, Any]] = [(True, None)] * len(batch)
        kinds: dict[Kind[Any], list[int]] = {}
        for index, (operation, _) in enumerate(batch):
            if isinstance(operation, _Grouped):
                kinds.setdefault(operation.kind, []).append(index)
            else:
                outcomes[index] = (True, operation(db))
        for kind, indexes in kinds.items():
            items = [batch[index][0].item for index in indexes]  # type: ignore[attr-defined]
            for index, outcome in zip(indexes, kind.all(db, items, self.defer), strict=True):
                outcomes[index] = outcome
        return outcomes

    def _lone_statement(
        self, batch: list[Item], statements: list[Statement]
    ) -> tuple[str, Params] | None:
        """On a network database, a batch that is only rows of one INSERT: that INSERT with
        every row (it commits by itself, atomically); None for any other batch."""
        if batch or not statements or self._offload is None:
            return None
        if len(statements) > self._rows_per_insert:
            return None
        sql = statements[0][0]
        if any(other != sql for other, _, _ in statements):
            return None
        multi = self._multi_sql(sql, len(statements))
        if multi is None:
            return None
        return multi, tuple(chain.from_iterable(params for _, params, _ in statements))

    def _execute_rows(self, sql: str, rows: list[Params]) -> None:
        """`executemany`, or multi-row INSERTs when `sql` inserts one VALUES row."""
        if self._multi_sql(sql, 1) is None:
            self._db.execute_many(sql, rows)
            return
        for start in range(0, len(rows), self._rows_per_insert):
            chunk = rows[start : start + self._rows_per_insert]
            multi = self._multi_sql(sql, len(chunk))
            self._db.execute(str(multi), tuple(chain.from_iterable(chunk)))

    def _multi_sql(self, sql: str, count: int) -> str | None:
        key = (sql, count)
        if key not in self._multi_row:
            self._multi_row[key] = _multi_row(sql, count)
        return self._multi_row[key]

    def _commit_isolated(self, batch: list[Item]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        db = self._db
        with db.transaction():
            for operation, _ in batch:
                db.execute("SAVEPOINT op")
                try:
                    outcome = operation(db)
                    for sql, params in self._deferred:
                        db.execute(sql, params)
                    outcomes.append((True, outcome))
                except Exception as exc:
                    db.execute("ROLLBACK TO SAVEPOINT op")
                    outcomes.append((False, exc))
                finally:
                    self._deferred = []
                db.execute("RELEASE SAVEPOINT op")
        return outcomes


def _resolve(
    batch: list[Item], statements: list[Statement], outcomes: list[tuple[bool, Any]]
) -> None:
    futures = [future for _, future in batch] + [item[2] for item in statements]
    for future, (ok, value) in zip(futures, outcomes, strict=True):
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _nothing(db: Database) -> None:
    """An operation that writes nothing: its commit tells whether the database answers."""


def _pending_statement(sql: str, params: Params) -> Statement:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda done: done.exception())  # nobody awaits it
    return sql, params, future


def _statement(sql: str, params: Params) -> Operation:
    """One queued statement as an operation (used only when a batch must be isolated)."""

    def operation(db: Database) -> None:
        db.execute(sql, params)

    return operation


def _multi_row(sql: str, count: int) -> str | None:
    """`INSERT … VALUES (?, …)` repeated for `count` rows; None for any other statement."""
    head, found, values = sql.rpartition(" VALUES ")
    plain = values.startswith("(") and values.endswith(")") and ")" not in values[:-1]
    if not found or not head.lstrip().upper().startswith("INSERT") or not plain:
        return None
    return f"{head} VALUES {', '.join([values] * count)}"


def _grouped(statements: list[tuple[str, Params]]) -> dict[str, list[Params]]:
    grouped: dict[str, list[Params]] = {}
    for sql, params in statements:
        grouped.setdefault(sql, []).append(params)
    return grouped
