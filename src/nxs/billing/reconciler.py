"""The reconciler: polls unfetched queued requests with their submitting key until they end.

Its queue is the ledger itself (`status = 'pending'`, `next_check_at` due), so it resumes
after a restart where it stopped. Checks run with bounded concurrency; a final verdict
settles (COMPLETED → fetch the result and charge it, ERROR or unknown id → refund);
anything else — still running, a transport error, a missing key — backs off, never refunds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from nxs.billing import ledger, replay
from nxs.billing.ledger import Entry
from nxs.billing.outcomes import outcome_of_result, outcome_of_status
from nxs.billing.settle import Outcome
from nxs.store.database import Database

LOG = logging.getLogger("nxs.billing")
BATCH: Final = 100
FIRST_BACKOFF: Final = 5.0
MAX_BACKOFF: Final = 300.0

Finish = Callable[[Entry, Outcome, Mapping[str, str], object], Awaitable[bool]]


class Upstream(Protocol):
    """How the reconciler asks fal about a request, with the key that submitted it."""

    async def status(self, entry: Entry) -> tuple[int, object] | None:
        """(HTTP status, parsed body), or None when it could not ask (no key, network)."""
        ...

    async def result(self, entry: Entry) -> tuple[int, Mapping[str, str], object] | None: ...


@dataclass
class Reconciler:
    """One pass per `tick()`: every due row checked, at most `concurrency` at a time."""

    db: Database
    upstream: Upstream
    finish: Finish
    concurrency: int = 8

    async def tick(self) -> int:
        """Check every due row once; returns how many were looked at."""
        moment = time.time()
        due = await asyncio.to_thread(ledger.due, self.db, moment, BATCH)
        if not due:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(entry: Entry) -> None:
            async with gate:
                await self._check(entry)

        await asyncio.gather(*(bounded(entry) for entry in due))
        await asyncio.to_thread(replay.purge, self.db, moment)
        return len(due)

    async def _check(self, entry: Entry) -> None:
        try:
            settled = await self._verdict(entry)
        except Exception:
            LOG.exception("reconciling %s failed", entry.request_id)
            settled = False
        if not settled:
            delay = min(FIRST_BACKOFF * 2**entry.checks, MAX_BACKOFF)
            await asyncio.to_thread(ledger.reschedule, self.db, entry.id, time.time() + delay)

    async def _verdict(self, entry: Entry) -> bool:
        answer = await self.upstream.status(entry)
        if answer is None:
            return False
        outcome = outcome_of_status(*answer)
        if outcome is None:
            return False
        if outcome is not Outcome.COMPLETED:
            await self.finish(entry, outcome, {}, None)
            return True
        result = await self.upstream.result(entry)
        if result is None:
            return False
        status, headers, body = result
        final = outcome_of_result(status, headers)
        if final is None:
            return False
        await self.finish(entry, final, headers, body)
        return True
