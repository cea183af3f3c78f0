"""Rate (rpm, a token bucket starting full) and in-flight limits per scope, shared state.

`Limits` is what the gateway calls. An in-flight permit is a lease: it has an id (the
request id) so any worker can release it, and an expiry so the permits of a dead worker or
replica come back by themselves. The bucket arithmetic lives here once; the Redis backend
mirrors it in Lua (`nxs.state.redis_scripts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from nxs.billing.errors import RateLimitExceeded

SECONDS_PER_MINUTE = 60.0
IN_FLIGHT_RETRY_AFTER = 1  # an in-flight slot frees when some request ends: try again soon


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
    """Admission under lease `lease_id`; release it when the request ends (twice is a no-op)."""

    lease_id: str
    released: bool = False


@dataclass(frozen=True)
class Refusal:
    """Not admitted: which scope said no, why, and when to try again (whole seconds ≥ 1)."""

    scope: str
    reason: Literal["rpm", "in_flight"]
    retry_after: int

    def error(self) -> RateLimitExceeded:
        return RateLimitExceeded(self.retry_after)


class Limits(Protocol):
    """All or nothing across `limits`: a refusal consumes nothing in any scope.

    `ttl` (seconds) bounds the in-flight lease: a run's lease lives as long as the upstream
    call may take, a queued request's as long as the reconciler may take to see its end
    (`nxs.state.leases`); `renew` extends a lease that must outlive its first ttl.
    """

    async def acquire(
        self, limits: Sequence[Limit], lease_id: str, ttl: float
    ) -> Permit | Refusal: ...

    async def release(self, lease_id: str) -> None: ...

    async def renew(self, lease_id: str, ttl: float) -> bool: ...


def refilled(tokens: float, stamp: float, now: float, rpm: int) -> float:
    """A bucket's tokens at `now`: one more every 60/rpm seconds, at most rpm (a clock that
    went backwards gains nothing)."""
    gained = max(0.0, now - stamp) * rpm / SECONDS_PER_MINUTE
    return min(float(rpm), tokens + gained)


def rpm_refusal(scope: str, tokens: float, rpm: int) -> Refusal | None:
    """Refused when less than a whole token is left; Retry-After is the wait for one."""
    if tokens >= 1:
        return None
    if rpm <= 0:
        return Refusal(scope, "rpm", int(SECONDS_PER_MINUTE))
    wait = (1 - tokens) * SECONDS_PER_MINUTE / rpm
    return Refusal(scope, "rpm", max(1, math.ceil(wait - 1e-9)))  # float noise


def in_flight_refusal(scope: str, held: int, cap: int) -> Refusal | None:
    return Refusal(scope, "in_flight", IN_FLIGHT_RETRY_AFTER) if held >= cap else None
