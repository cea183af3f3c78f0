"""Runs waiting in NXS for a free slot on some upstream key, instead of meeting fal's 429.

fal refuses a direct run at once when its account is at its concurrency limit, so a run
is only sent to a key with a free slot (`KeyPool.take_slot`). With no one waiting and a
slot free, a run takes it without awaiting anything. Otherwise it waits in its customer's
lane; lanes are served in turn by start-time fair queueing weighted by the plan's
priority, so one customer's burst cannot hold another's single run behind it. A run still
waiting after `NXS_RUN_WAIT_SECONDS` gets 429 with Retry-After (both official clients
retry it). Across workers and replicas (`SharedSlots`) a slot is also a lease in the shared
state, so together they never send a key more runs than its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from nxs.errors import ClientGone, NoUpstreamKeys, UpstreamBusy, UpstreamFailed
from nxs.gateway.metrics import Metrics
from nxs.gateway.pool import KeyPool, PoolKey
from nxs.state.limits import Limit, Limits, Permit

Gone = Callable[[], Awaitable[object]]  # completes when the run's client disconnects
TICK_SECONDS: Final = 0.05  # while runs wait: look again (cooldowns end, limits climb)
SHARED_REST_SECONDS: Final = 0.05  # a key another replica filled is skipped this long
SPARE_SECONDS: Final = 0.05  # a finished run's shared lease waits this long for the next run
REUSE_SECONDS: Final = 5.0  # … while younger than this (its ttl's margin is 30 s)
FIRST: Final = asyncio.FIRST_COMPLETED


@dataclass(eq=False)
class Waiter:
    """One run waiting for a slot: the keys it may not use, and where its key goes."""

    tried: set[str]
    future: asyncio.Future[PoolKey]


@dataclass(eq=False)
class Lane:
    """One customer's waiting runs, oldest first, and the virtual time of its next turn."""

    weight: int
    start: float
    waiters: deque[Waiter] = field(default_factory=deque)


class SharedSlots:
    """Slots as in-flight leases in the shared state (`nxs.state`): one acquire per run,
    batched with the loop turn's other calls on Redis; any key's leases are alike, so a
    finished run frees any one of them.

    A finished run's lease is kept a moment as a spare (`SPARE_SECONDS`) for this
    process's next run on the key, which then claims it without a round trip: under load
    runs follow each other within microseconds, and the shared state sees a lease taken
    once per `REUSE_SECONDS` instead of twice per run. The lease still counts there while
    it is spare, so workers and replicas together never exceed the key's concurrency;
    others merely see the slot busy for up to `SPARE_SECONDS` more. A lease is reused
    only while younger than `REUSE_SECONDS`, so the run it serves ends (at most the
    upstream timeout) before the lease expires (that timeout plus its margin, 30 s).
    """

    def __init__(self, limits: Limits, ttl: float) -> None:
        self._limits, self._ttl = limits, ttl
        self._tasks: set[asyncio.Task[None]] = set()
        # lease ids unique across the cluster without a syscall per run (uuid4 reads
        # the OS's randomness: ~2 % of a request's CPU): a random prefix, then a count
        self._prefix = uuid.uuid4().hex[:16]
        self._numbers = itertools.count()
        self._taken_at: dict[str, float] = {}  # lease → when the shared state granted it
        self._spares: dict[str, list[tuple[str, float]]] = {}  # key id → (lease, spare since)
        self._sweep: asyncio.TimerHandle | None = None

    async def claim(self, entry: PoolKey) -> bool:
        now = time.monotonic()
        spare = self._spare(entry.key.id, now)
        if spare is not None:
            entry.leases.append(spare)
            return True
        cap = entry.limit(now)
        lease = f"{self._prefix}{next(self._numbers):x}"
        scope = Limit(f"upstream-slot:{entry.key.id}", max_in_flight=cap)
        answer = await self._limits.acquire([scope], lease, self._ttl)
        if isinstance(answer, Permit):
            entry.leases.append(lease)
            self._taken_at[lease] = now
            return True
        return False

    def release(self, entry: PoolKey) -> None:
        if not entry.leases:
            return
        lease, now = entry.leases.pop(), time.monotonic()
        if now - self._taken_at.get(lease, 0.0) < REUSE_SECONDS:
            self._spares.setdefault(entry.key.id, []).append((lease, now))
            if self._sweep is None:
                loop = asyncio.get_running_loop()
                self._sweep = loop.call_later(SPARE_SECONDS, self._give_back_idle)
            return
        self._give_back(lease)

    def close(self) -> None:
        """Give back every spare lease (the process stops)."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for spares in self._spares.values():
            for lease, _ in spares:
                self._give_back(lease)
        self._spares.clear()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spare(self, key_id: str, now: float) -> str | None:
        """A spare lease of the key still young enough to serve a run (older ones go)."""
        spares = self._spares.get(key_id)
        while spares:
            lease, _ = spares.pop()
            if now - self._taken_at[lease] < REUSE_SECONDS:
                return lease
            self._give_back(lease)
        return None

    def _give_back_idle(self) -> None:
        """Spares idle since the last sweep go back to the shared state."""
        self._sweep = None
        limit = time.monotonic() - SPARE_SECONDS
        for key_id, spares in list(self._spares.items()):
            kept = [(lease, since) for lease, since in spares if since > limit]
            for lease, since in spares:
                if since <= limit:
                    self._give_back(lease)
            if kept:
                self._spares[key_id] = kept
            else:
                del self._spares[key_id]
        if self._spares:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(SPARE_SECONDS, self._give_back_idle)

    def _give_back(self, lease: str) -> None:
        self._taken_at.pop(lease, None)
        task = asyncio.get_running_loop().create_task(self._limits.release(lease))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class RunQueue:
    """Hands runs a key with a free slot, now or in their customer's turn."""

    def __init__(
        self,
        pool: KeyPool,
        wait_seconds: float,
        metrics: Metrics,
        shared: SharedSlots | None = None,
    ) -> None:
        self._pool, self._wait, self._metrics, self.shared = pool, wait_seconds, metrics, shared
        self._lanes: dict[str, Lane] = {}
        self._clock = 0.0  # virtual time of the last turn given
        self._ticker: asyncio.Task[None] | None = None

    async def take(
        self,
        customer: str,
        priority: int,
        tried: set[str],
        deadline: float,
        gone: Gone | None = None,
    ) -> PoolKey:
        """A key with a slot held for this run; 429 past `deadline` (monotonic), 502 when
        no key may serve it any more, 503 when the pool has no active key, 499 when `gone`
        completes first (the client left while the run waited)."""
        while True:
            entry = self._pool.take_slot(tried) if not self._lanes else None
            if entry is None:
                entry = await self._queued(customer, priority, tried, deadline, gone)
            if self.shared is None or await self.shared.claim(entry):
                return entry
            self._pool.free_slot(entry)  # other replicas fill it: skip it a moment
            entry.run_cooldown_until = time.monotonic() + SHARED_REST_SECONDS

    def give_back(self, entry: PoolKey) -> None:
        """A run ended: its slot serves the next waiting run."""
        self._pool.free_slot(entry)
        if self.shared is not None:
            self.shared.release(entry)
        if self._lanes:
            self._dispatch()

    async def _queued(
        self, customer: str, priority: int, tried: set[str], deadline: float, gone: Gone | None
    ) -> PoolKey:
        self._check(tried)
        waiter = Waiter(tried, asyncio.get_running_loop().create_future())
        lane = self._lanes.get(customer)
        if lane is None:
            lane = self._lanes[customer] = Lane(max(priority, 1), self._clock)
        lane.waiters.append(waiter)
        self._metrics.waiting += 1
        self._dispatch()  # a slot its tried keys allow may be free already
        self._start_ticker()
        started = time.monotonic()
        watch = asyncio.ensure_future(gone()) if gone is not None else None
        waits: set[asyncio.Future[object]] = {waiter.future}  # type: ignore[arg-type]
        if watch is not None:
            waits.add(watch)
        try:
            await asyncio.wait(waits, timeout=deadline - started, return_when=FIRST)
        except asyncio.CancelledError:
            self._abandon(customer, waiter)
            raise
        finally:
            if watch is not None:
                watch.cancel()
        self._metrics.observe_wait(time.monotonic() - started)
        if not waiter.future.done():
            self._abandon(customer, waiter)
            if watch is not None and watch.done() and not watch.cancelled():
                raise ClientGone()
            raise UpstreamBusy(self._pool.retry_after())
        return waiter.future.result()

    def _check(self, tried: set[str]) -> None:
        """Fail now when no key could ever take this run."""
        if not self._pool.could_run(tried):  # the keys tried were found invalid or failed
            raise UpstreamFailed() if tried else NoUpstreamKeys()

    def _abandon(self, customer: str, waiter: Waiter) -> None:
        """The run stopped waiting (deadline, client gone): out of its lane; a key it was
        handed meanwhile goes to the next run."""
        lane = self._lanes.get(customer)
        if lane is not None and waiter in lane.waiters:
            lane.waiters.remove(waiter)
            self._metrics.waiting -= 1
            if not lane.waiters:
                del self._lanes[customer]
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            self.give_back(future.result())
        future.cancel()

    def _dispatch(self) -> None:
        """Give free slots to the lanes whose turn it is (lowest virtual start first)."""
        while self._lanes:
            for customer, lane in sorted(self._lanes.items(), key=lambda item: item[1].start):
                waiter = lane.waiters[0]
                if not self._pool.could_run(waiter.tried):
                    self._settle(customer, lane, waiter, None)
                    break
                entry = self._pool.take_slot(waiter.tried)
                if entry is not None:
                    self._clock = lane.start
                    lane.start += 1 / lane.weight
                    self._settle(customer, lane, waiter, entry)
                    break
            else:
                return

    def _settle(self, customer: str, lane: Lane, waiter: Waiter, entry: PoolKey | None) -> None:
        lane.waiters.popleft()
        self._metrics.waiting -= 1
        if not lane.waiters:
            del self._lanes[customer]
        if entry is None:
            waiter.future.set_exception(UpstreamFailed())
        else:
            waiter.future.set_result(entry)

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while self._lanes:
            await asyncio.sleep(TICK_SECONDS)
            self._dispatch()

    async def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
            await self.shared.wait_closed()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
