"""Store reads for `nxs_` keys the snapshot does not hold yet, and what keeps them cheap.

A key created since the last reload (`nxs keys create`, the admin API, on any process)
is not in a worker's snapshot until the store version is next polled, so a snapshot miss
asks the store for that one hash (`Store.find_grant`, one read through the unique index)
and the authenticator adds what it finds. A found key also brings the rest of the
worker's snapshot up to date (`on_found`: the version poll, run now): what was set up
before the key — its customer's plan and credit, a new upstream key — is in force for
its first request, not only the key. Unknown keys must not turn into a query each:

- *Known misses*: a hash the store did not have is remembered (hash → time of the miss)
  until the store version next changes (`forget`, called on every reload) and at most
  `MISS_TTL_SECONDS`, `MISS_LIMIT` entries, oldest dropped first. Such a hash is answered
  401 without a query. This cannot refuse a key that works: a key's plaintext is made
  inside the transaction that stores it (240 random bits, `keys.generate`) and leaves the
  creating process only after the commit, so no request can carry a key before it exists
  and no miss can have been remembered for it. A key that did not exist at the miss and
  exists now could only come from outside that path (a restored database); the version
  change that comes with it clears the memory at the next poll, and the TTL bounds it.
  Checking the store version on every known miss would cost the query this avoids.
- *A rate limit*: a token bucket of `RATE_PER_SECOND` lookups (burst `BURST`) per worker.
  Beyond it a snapshot miss is 401 without a query, so a flood of random keys costs at
  most that many indexed reads a second. The price: while such a flood lasts, a key
  created meanwhile may be refused until the worker's next poll picks it up
  (`NXS_REFRESH_SECONDS`), as every new key was before lookups existed.

The read and the catch-up are awaited (through the worker's `Offload`: inline on SQLite,
on a store thread on PostgreSQL), and `Authenticator` refuses to cache a grant read across
a reload.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

from nxs.store.database import DatabaseError
from nxs.store.models import KeyGrant

LOG = logging.getLogger("nxs.gateway")
RATE_PER_SECOND: Final = 50.0
BURST: Final = 50.0
MISS_TTL_SECONDS: Final = 30.0
MISS_LIMIT: Final = 10_000


class KeyLookup:
    """Finds a key's grant in the store on a snapshot miss, at most `rate` times a second,
    never twice for a hash already missed since the last reload."""

    def __init__(
        self,
        find: Callable[[str], Awaitable[KeyGrant | None]],
        counts: Counter[str],
        *,
        rate: float = RATE_PER_SECOND,
        burst: float = BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._find = find
        self.on_found: Callable[[], Awaitable[None]] = _nothing  # the owner's catch-up
        self._counts = counts  # found / missing / error / known_miss / rate_limited
        self._rate, self._burst = rate, burst
        self._clock = clock
        self._tokens = burst
        self._filled_at = clock()
        self._misses: dict[str, float] = {}

    def forget(self) -> None:
        """Drop the remembered misses (the store version changed: keys may have appeared)."""
        self._misses = {}

    async def find(self, key_hash: str) -> KeyGrant | None:
        """The grant of this hash from the store, or None (unknown, revoked, remembered as
        missing, over the rate limit, or the store unreachable)."""
        now = self._clock()
        missed_at = self._misses.get(key_hash)
        if missed_at is not None and now - missed_at < MISS_TTL_SECONDS:
            self._counts["known_miss"] += 1
            return None
        if not self._take(now):
            self._counts["rate_limited"] += 1
            return None
        try:
            grant = await self._find(key_hash)
        except DatabaseError as exc:
            self._counts["error"] += 1
            LOG.warning("key lookup failed: %s", exc)
            return None
        if grant is None:
            self._counts["missing"] += 1
            self._remember_miss(key_hash, now)
        else:
            self._counts["found"] += 1
            await self.on_found()
        return grant

    def _take(self, now: float) -> bool:
        """One token from the bucket, refilled at `rate` per second up to `burst`."""
        self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _remember_miss(self, key_hash: str, now: float) -> None:
        self._misses.pop(key_hash, None)  # re-inserted last: the dict stays oldest-first
        if len(self._misses) >= MISS_LIMIT:
            del self._misses[next(iter(self._misses))]
        self._misses[key_hash] = now


async def _nothing() -> None:
    return None
