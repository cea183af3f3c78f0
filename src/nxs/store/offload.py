"""Store calls from the event loop: inline on SQLite (microseconds, no thread hop, today's
speed), on a bounded pool of threads for a network database (PostgreSQL), so no worker's
event loop waits on a round trip. Every repository stays one synchronous function shared
with the CLI and the admin API; the gateway awaits it through `Offload.call`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from nxs.store.database import Database

LOG = logging.getLogger("nxs.store")
P = ParamSpec("P")
T = TypeVar("T")


class Offload:
    """Where a store call of the gateway runs: here, or on one of `threads` threads (one
    pooled connection each at most)."""

    def __init__(self, database: Database, threads: int) -> None:
        self.inline = database.dialect == "sqlite"
        self._executor = (
            None if self.inline else ThreadPoolExecutor(threads, thread_name_prefix="nxs-store")
        )

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)`, awaited without holding the event loop."""
        if self._executor is None:
            return function(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, *args, **kwargs))

    def submit_then(
        self, function: Callable[[], T], then: Callable[[T | None, BaseException | None], object]
    ) -> None:
        """`function()` on a store thread, then `then(result, error)` on this loop. A turn
        sooner than a future's done callback, which the loop runs one turn after the future
        is set: under load a turn takes milliseconds, and the ledger writer's next batch
        waits for this callback."""
        assert self._executor is not None, "an inline store runs its calls where they are"
        loop = asyncio.get_running_loop()

        def work() -> None:
            try:
                result = function()
            except BaseException as exc:  # handed to `then`, on the loop
                loop.call_soon_threadsafe(then, None, exc)
            else:
                loop.call_soon_threadsafe(then, result, None)

        self._executor.submit(work)

    def spawn(self, function: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """`function(*args, **kwargs)` without waiting for it (a write nobody awaits, e.g. an
        upstream key's new state); a failure is logged."""
        if self._executor is None:
            function(*args, **kwargs)
            return
        self._executor.submit(partial(function, *args, **kwargs)).add_done_callback(_log_failure)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _log_failure(done: Future[object]) -> None:
    error = done.exception()
    if error is not None:
        LOG.error("a store write off the event loop failed", exc_info=error)
