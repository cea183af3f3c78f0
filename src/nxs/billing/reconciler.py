"""The reconciler: polls unfetched queued requests with their submitting key until they end.

Its queue is the ledger itself (`status = 'pending'`, `next_check_at` due), so it resumes
after a restart where it stopped; due rows are claimed (`ledger.claim_due`), so every
worker of every replica may run one and each due request is still polled once. Checks run
with bounded concurrency; a status saying COMPLETED (with or without an error) → fetch the
result and settle from fal's answer there (`outcome_of_result`); anything else — still
running, an id fal does not know (404), a transport error, a missing key — backs off,
never refunds. After `max_checks` it gives up: the row stays `pending`, its hold kept,
out of the queue, logged for the operator.

It also releases stranded holds: rows still `reserved` after `reservation_ttl` seconds
(default an hour, longer than fal lets a client wait), whose process died before the
upstream answered — no request id, so nobody can ask fal. Refunded once, logged per row,
by whichever reconciler holds the cluster's `stranded-holds` lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from nxs.billing import ledger, replay, slices
from nxs.billing.ledger import Entry
from nxs.billing.money import Money
from nxs.billing.outcomes import outcome_of_result, outcome_of_status
from nxs.billing.settle import Outcome
from nxs.store import claims
from nxs.store.database import Database

LOG = logging.getLogger("nxs.billing")
BATCH: Final = 100
FIRST_BACKOFF: Final = 5.0
MAX_BACKOFF: Final = 300.0
MAX_CHECKS: Final = 300  # about a day: 5 min of backoffs, then one check every 5 min
RESERVATION_TTL: Final = 3600.0  # a live process's request is answered (or fails) sooner
CLAIM_LEASE: Final = 20.0  # a claimed row returns to the queue this soon if its checker died
# (a check that outlasts it may be repeated by another worker: settling is idempotent)
STRANDED_JOB: Final = "stranded-holds"
STRANDED_LEASE: Final = 10.0  # renewed every tick by its holder; taken over when it lapses

Finish = Callable[[Entry, Outcome, Mapping[str, str], object], Awaitable[bool]]


class Upstream(Protocol):
    """How the reconciler asks fal about a request, with the key that submitted it."""

    async def status(self, entry: Entry) -> tuple[int, object] | None:
        """(HTTP status, parsed body), or None when it could not ask (no key, network)."""
        ...

    async def result(self, entry: Entry) -> tuple[int, Mapping[str, str], object] | None: ...


@dataclass
class Reconciler:
    """One pass per `tick()`: every due row checked, at most `concurrency` at a time; a
    row not settled is checked again after `first_backoff × 2^checks` (at most
    `MAX_BACKOFF`) seconds, `max_checks` times in all.
    """

    db: Database
    upstream: Upstream
    finish: Finish
    concurrency: int = 8
    first_backoff: float = FIRST_BACKOFF
    max_checks: int = MAX_CHECKS
    reservation_ttl: float = RESERVATION_TTL
    holder: str = field(default_factory=claims.holder_id)

    async def tick(self) -> int:
        """Release stranded holds, then check every due row once; returns how many due
        rows were looked at."""
        moment = time.time()
        await self.release_stranded(moment)
        due = await asyncio.to_thread(ledger.claim_due, self.db, moment, CLAIM_LEASE, BATCH)
        if not due:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(entry: Entry) -> None:
            async with gate:
                await self._check(entry)

        await asyncio.gather(*(bounded(entry) for entry in due))
        await asyncio.to_thread(replay.purge, self.db, moment)
        return len(due)

    async def release_stranded(self, moment: float) -> int:
        """Refund (at most `BATCH`) holds reserved more than `reservation_ttl` seconds
        before `moment` and never answered; returns how many were released."""
        before = moment - self.reservation_ttl
        held = await asyncio.to_thread(
            claims.hold_lease, self.db, STRANDED_JOB, self.holder, STRANDED_LEASE
        )
        if not held:
            return 0
        released = await asyncio.to_thread(_release_stranded, self.db, before)
        given_back = await asyncio.to_thread(_give_back_stale_slices, self.db, before)
        for slice_id, customer_id, micros in given_back:
            LOG.warning(
                "gave back credit slice %s (customer %s, %s USD): taken more than %.0f s ago"
                " by a gateway process that stopped before closing it",
                slice_id,
                customer_id,
                Money(micros),
                self.reservation_ttl,
            )
        for entry in released:
            LOG.warning(
                "released stranded hold %s (customer %s, %s, %s USD): reserved %.0f s ago"
                " and never answered — its gateway process stopped before the upstream did",
                entry.id,
                entry.customer_id,
                entry.endpoint,
                entry.reserved,
                moment - entry.created_at,
            )
        return len(released) + len(given_back)

    async def _check(self, entry: Entry) -> None:
        try:
            settled = await self._verdict(entry)
        except Exception:
            LOG.exception("reconciling %s failed", entry.request_id)
            settled = False
        if settled:
            return
        if entry.checks + 1 >= self.max_checks:
            await self._give_up(entry)
            return
        delay = min(self.first_backoff * 2 ** min(entry.checks, 30), MAX_BACKOFF)
        await asyncio.to_thread(ledger.reschedule, self.db, entry.id, time.time() + delay)

    async def _give_up(self, entry: Entry) -> None:
        """No verdict after `max_checks`: out of the queue, the hold kept, the operator told."""
        await asyncio.to_thread(ledger.check_at, self.db, entry.id, None)
        LOG.warning(
            "reconciler gave up on request %s (%s, customer %s) after %d checks without a"
            " verdict from fal; it stays pending, its hold kept, until an operator settles it",
            entry.request_id,
            entry.endpoint,
            entry.customer_id,
            entry.checks + 1,
        )

    async def _verdict(self, entry: Entry) -> bool:
        answer = await self.upstream.status(entry)
        if answer is None:
            return False
        outcome = outcome_of_status(*answer)
        if outcome is None:  # still running, unknown, …: ask again later
            return False
        result = await self.upstream.result(entry)
        if result is None:
            return False
        status, headers, body = result
        final = outcome_of_result(status, headers)
        if final is None:
            return False
        await self.finish(entry, final, headers, body)
        return True


def _release_stranded(db: Database, before: float) -> list[Entry]:
    """One read of the (tiny) index of open holds; a write only when some are too old."""
    old = ledger.stranded(db, before, BATCH)
    return ledger.release(db, old) if old else []


def _give_back_stale_slices(db: Database, before: float) -> list[tuple[str, str, int]]:
    """Credit slices older than the reservation TTL: their process died holding them."""
    stale = slices.stale(db, before, BATCH)
    return [found for found in stale if slices.give_back(db, found[0]) is not None]
