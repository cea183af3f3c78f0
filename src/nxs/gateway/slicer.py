"""This process's credit slices (`nxs.billing.slices`): prepaid runs admitted against
credit the process already holds, with nothing written until they settle.

One slice per customer admits runs for `SLICE_SECONDS` (or until it is spent), then
closes once its last run has settled: what it still holds goes back to the available
credit. Runs arriving while a slice is being taken wait for it rather than take their
own. When a customer's credit is too small to slice, its runs hold one by one (the exact
path) and no slice is tried again for `RETRY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from nxs.billing import slices
from nxs.billing.writer import LedgerWriter
from nxs.store.database import Database
from nxs.store.ids import new_id

LOG = logging.getLogger("nxs.billing")
SLICE_SECONDS: Final = 2.0  # a slice admits runs this long
RETRY_SECONDS: Final = 1.0  # after a customer's credit was too small to slice
MEMORY_LIMIT: Final = 20_000


@dataclass(slots=True)
class Slice:
    id: str
    customer_id: str
    left: int  # micro-dollars still free for new runs
    running: int = 0  # runs admitted and not yet settled
    admitting: bool = True
    timer: asyncio.TimerHandle | None = None  # ends its admitting


@dataclass
class Slicer:
    """The slices of one process; every call is on its event loop."""

    writer: LedgerWriter
    clock: Callable[[], float] = time.monotonic
    _admitting: dict[str, Slice] = field(default_factory=dict)  # customer → its slice
    _taking: dict[str, asyncio.Future[Slice | None]] = field(default_factory=dict)
    _unsliced_until: dict[str, float] = field(default_factory=dict)
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    async def admit(self, customer_id: str, cost: int) -> Slice | None:
        """The slice that now holds `cost` for a new run, or None: hold it per run."""
        for _ in range(2):  # a slice spent by the runs that waited for it: one more
            current = self._admitting.get(customer_id)
            if current is not None and current.left >= cost:
                current.left -= cost
                current.running += 1
                return current
            if current is not None:
                self._retire(current)
            if await self._new_slice(customer_id, cost) is None:
                return None
        return None

    def settled(self, held: Slice, reserved: int, taken: int) -> None:
        """A run admitted with `reserved` took `taken` out of the slice (committed)."""
        held.left += reserved - taken
        held.running -= 1
        if not held.admitting and held.running == 0:
            self._close(held)

    async def stop(self) -> None:
        """Close every slice no run holds any more (a run still running keeps its slice
        open; the reconciler gives it back after the reservation TTL)."""
        for held in list(self._admitting.values()):
            self._retire(held)
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def _new_slice(self, customer_id: str, cost: int) -> Slice | None:
        taking = self._taking.get(customer_id)
        if taking is None:
            if self._unsliced_until.get(customer_id, 0.0) > self.clock():
                return None
            taking = asyncio.ensure_future(self._take(customer_id, cost))
            self._taking[customer_id] = taking
            taking.add_done_callback(partial(self._taken, customer_id))
        return await asyncio.shield(taking)

    def _taken(self, customer_id: str, taking: asyncio.Future[Slice | None]) -> None:
        """The take ended: the next run may start another; its error is its waiters'."""
        del self._taking[customer_id]
        if not taking.cancelled():
            taking.exception()  # read here too: all its waiters may have left

    async def _take(self, customer_id: str, cost: int) -> Slice | None:
        slice_id, moment = new_id("slc"), time.time()

        def take(db: Database) -> int:
            return slices.take(db, slice_id, customer_id, cost, moment)

        size = await self.writer.run(take)
        if size == 0:
            if len(self._unsliced_until) >= MEMORY_LIMIT:
                self._unsliced_until.clear()
            self._unsliced_until[customer_id] = self.clock() + RETRY_SECONDS
            return None
        taken = Slice(slice_id, customer_id, size)
        self._admitting[customer_id] = taken
        taken.timer = asyncio.get_running_loop().call_later(SLICE_SECONDS, self._retire, taken)
        return taken

    def _retire(self, held: Slice) -> None:
        """No new run for this slice; closed now if none is running."""
        if not held.admitting:
            return
        held.admitting = False
        if held.timer is not None:
            held.timer.cancel()
        if self._admitting.get(held.customer_id) is held:
            del self._admitting[held.customer_id]
        if held.running == 0:
            self._close(held)

    def _close(self, held: Slice) -> None:
        task = asyncio.get_running_loop().create_task(self._give_back(held))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _give_back(self, held: Slice) -> None:
        try:
            await self.writer.run(lambda db: slices.give_back(db, held.id))
        except Exception:  # the reconciler gives it back after the reservation TTL
            LOG.warning("credit slice %s not given back now: the database did not answer", held.id)
