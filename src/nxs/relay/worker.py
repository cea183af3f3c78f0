"""The delivery worker: an asyncio task that POSTs due outbox rows to customers, signed
with NXS's key, at most `max_concurrency` at once, and reschedules failures along
`retry_delays` (10 tries over about 2 h by default). Pending rows left by an earlier
process are picked up at start. Log lines name deliveries, never URLs or signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp

from nxs.errors import NxsError
from nxs.relay.outbox import Attempt, Delivery, Outbox
from nxs.relay.signing import SigningKey
from nxs.relay.targets import check_target
from nxs.store.database import DatabaseError

logger = logging.getLogger("nxs.relay.worker")

# Delays after tries 1..9: 10 s, 30 s, 1, 2, 5, 10, 15, 30, 60 min → 10 tries in ~2 h 04 min.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)


@dataclass(frozen=True)
class WorkerConfig:
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    max_concurrency: int = 16
    delivery_timeout_seconds: float = 15.0
    idle_poll_seconds: float = 5.0  # rows enqueued by other processes are seen this soon
    allow_private: bool = False

    @property
    def lease_seconds(self) -> float:
        return self.delivery_timeout_seconds + 30.0


class DeliveryWorker:
    """Owns the loop task and the in-flight attempts; `wake()` after an enqueue."""

    def __init__(
        self, outbox: Outbox, key: SigningKey, session: aiohttp.ClientSession, config: WorkerConfig
    ) -> None:
        self._outbox = outbox
        self._key = key
        self._session = session
        self._config = config
        self._wakeup = asyncio.Event()
        self.outcomes: Counter[str] = Counter()  # attempts by outcome, for /metrics
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop claiming; interrupted attempts give their rows back for the next start."""
        tasks = [t for t in (self._loop_task, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._claim()
                await self._sleep()
            except DatabaseError as exc:  # e.g. locked for too long: try again shortly
                logger.warning("webhook outbox unavailable: %s", exc.detail)
                await asyncio.sleep(self._config.idle_poll_seconds)

    async def _claim(self) -> None:
        """Claim due rows (on a thread: the outbox's reads and writes never hold the event
        loop, which matters on a network database) and start their attempts."""
        free = self._config.max_concurrency - len(self._inflight)
        if free <= 0:
            return
        lease = self._config.lease_seconds
        for delivery in await asyncio.to_thread(self._outbox.claim_due, free, lease):
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wakeup.set()  # a slot is free: look for more due rows

    async def _sleep(self) -> None:
        due = await asyncio.to_thread(self._outbox.next_due)
        delay = self._config.idle_poll_seconds
        if due is not None:
            delay = min(delay, max(due - time.time(), 0.0))
        if self._inflight and len(self._inflight) >= self._config.max_concurrency:
            delay = self._config.idle_poll_seconds  # full: a finishing attempt wakes us
        self._wakeup.clear()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # lands as the event is set (a finishing attempt), and stop() would wait forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(delay, 0.01)):
                await self._wakeup.wait()

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            attempt = await self._attempt(delivery)
        except asyncio.CancelledError:
            self._outbox.release(delivery.id)
            raise
        delivered = attempt.error is None
        retry_in = None if delivered else self._retry_delay(attempt.attempt)
        try:
            await asyncio.to_thread(self._outbox.record, delivery, attempt, retry_in)
        except DatabaseError as exc:  # the lease runs out and the row is tried again
            logger.warning("webhook delivery %s not recorded: %s", delivery.id, exc.detail)
            return
        outcome = "delivered" if delivered else ("gave up" if retry_in is None else "will retry")
        self.outcomes[outcome.replace(" ", "_")] += 1
        logger.info(
            "webhook delivery %s for request %s: attempt %d %s (%s)",
            delivery.id,
            delivery.request_id,
            attempt.attempt,
            outcome,
            attempt.error or "2xx",
        )

    def _retry_delay(self, attempt: int) -> float | None:
        delays = self._config.retry_delays
        return delays[attempt - 1] if attempt <= len(delays) else None

    async def _attempt(self, delivery: Delivery) -> Attempt:
        number = delivery.attempts + 1
        started = time.time()
        status, error = await self._post(delivery)
        return Attempt(number, started, time.time(), status, error)

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        """The receiver's status and the error to record (None when it answered 2xx)."""
        try:
            check_target(delivery.target_url, allow_private=self._config.allow_private)
        except NxsError as exc:
            return None, str(exc.detail)
        headers = self._key.headers(delivery.request_id, delivery.customer_id, delivery.body)
        timeout = aiohttp.ClientTimeout(total=self._config.delivery_timeout_seconds)
        try:
            async with self._session.post(
                delivery.target_url,
                data=delivery.body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                status = response.status  # the body is not read: receivers answer anything
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            return None, type(exc).__name__
        return status, None if 200 <= status < 300 else f"HTTP {status}"
