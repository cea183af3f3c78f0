"""Requests-per-minute (token bucket) and requests-in-flight limits, per key and customer.

`Limiter` is the interface the gateway calls; `InProcessLimiter` keeps the counters in this
process (O(1) per call, idle buckets evicted), a shared backend (Redis) can come later.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from nxs.billing.errors import RateLimitExceeded

SECONDS_PER_MINUTE = 60.0
_EVICTION_CHECKS = 4  # oldest entries examined per acquire: bounded work, bounded memory


@dataclass(frozen=True)
class Limit:
    """One scope's limits, e.g. `Limit("key:key_1", rpm=60, max_in_flight=4)`; None = none."""

    scope: str
    rpm: int | None = None
    max_in_flight: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.max_in_flight is None


@dataclass(eq=False)
class Permit:
    """Admission; release it exactly once when the request ends (releasing twice is a no-op)."""

    token: object = None
    released: bool = False


@dataclass(frozen=True)
class Refusal:
    """Not admitted: which scope said no, why, and when to try again (whole seconds ≥ 1)."""

    scope: str
    reason: Literal["rpm", "in_flight"]
    retry_after: int

    def error(self) -> RateLimitExceeded:
        return RateLimitExceeded(self.retry_after)


class Limiter(Protocol):
    """What the gateway needs from any limits backend."""

    async def acquire(self, limits: Sequence[Limit]) -> Permit | Refusal: ...

    async def release(self, permit: Permit) -> None: ...


@dataclass(eq=False)
class _Bucket:
    tokens: float
    stamp: float
    in_flight: int = 0

    def refill(self, now: float, rpm: int | None) -> None:
        if rpm is not None:
            gained = (now - self.stamp) * rpm / SECONDS_PER_MINUTE
            self.tokens = min(float(rpm), self.tokens + gained)
        self.stamp = now


@dataclass
class InProcessLimiter:
    """Counters in a dict of buckets; all or nothing: a refusal consumes nothing."""

    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    async def acquire(self, limits: Sequence[Limit]) -> Permit | Refusal:
        return self.try_acquire(limits)

    async def release(self, permit: Permit) -> None:
        self.release_now(permit)

    def try_acquire(self, limits: Sequence[Limit]) -> Permit | Refusal:
        now = self.clock()
        checked: list[tuple[Limit, _Bucket]] = []
        for limit in limits:
            if limit.unlimited:
                continue
            bucket = self._bucket(limit, now)
            refusal = _refusal(limit, bucket)
            if refusal is not None:
                return refusal
            checked.append((limit, bucket))
        held: list[_Bucket] = []
        for limit, bucket in checked:
            if limit.rpm is not None:
                bucket.tokens -= 1
            if limit.max_in_flight is not None:
                bucket.in_flight += 1
                held.append(bucket)
        self._evict_idle(now)
        return Permit(token=tuple(held))

    def release_now(self, permit: Permit) -> None:
        if permit.released:
            return
        permit.released = True
        buckets = permit.token if isinstance(permit.token, tuple) else ()
        for bucket in buckets:
            bucket.in_flight = max(0, bucket.in_flight - 1)

    def __len__(self) -> int:
        """Buckets currently kept (for tests and metrics)."""
        return len(self._buckets)

    def _bucket(self, limit: Limit, now: float) -> _Bucket:
        bucket = self._buckets.get(limit.scope)
        if bucket is None:
            bucket = _Bucket(tokens=float(limit.rpm or 0), stamp=now)
            self._buckets[limit.scope] = bucket
        else:
            self._buckets.move_to_end(limit.scope)
            bucket.refill(now, limit.rpm)
        return bucket

    def _evict_idle(self, now: float) -> None:
        """Drop a few of the least recently used buckets that a fresh one would equal."""
        for _ in range(min(_EVICTION_CHECKS, len(self._buckets))):
            scope, bucket = next(iter(self._buckets.items()))
            if bucket.in_flight:  # busy for long: rotate it so it cannot pin the queue
                self._buckets.move_to_end(scope)
            elif now - bucket.stamp < SECONDS_PER_MINUTE:
                return
            else:
                del self._buckets[scope]


def _refusal(limit: Limit, bucket: _Bucket) -> Refusal | None:
    if limit.max_in_flight is not None and bucket.in_flight >= limit.max_in_flight:
        return Refusal(limit.scope, "in_flight", 1)
    if limit.rpm is not None and bucket.tokens < 1:
        if limit.rpm <= 0:
            return Refusal(limit.scope, "rpm", int(SECONDS_PER_MINUTE))
        wait = (1 - bucket.tokens) * SECONDS_PER_MINUTE / limit.rpm
        return Refusal(limit.scope, "rpm", max(1, math.ceil(wait - 1e-9)))  # float noise
    return None
