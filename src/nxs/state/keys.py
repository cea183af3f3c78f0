"""Upstream keys as every worker sees them: cooldowns (after fal's 429) and the requests
each has outstanding at fal.

A cooldown is set as a duration and kept as a deadline on the backend's clock (Redis's
`TIME`), so replicas with skewed clocks agree; an outstanding request is a lease
(`started` at its submit, `finished` by whichever worker sees it end), so the counts of a
dead worker come back. `loads` reads every key in one round trip (the pool's sync). A
run's slot on a key is not here: it is an in-flight lease of `Limits`
(`nxs.gateway.scheduler.SharedSlots`), acquired atomically against the key's limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KeyLoad:
    """One upstream key now: requests outstanding at fal, seconds of cooldown left (0: none)."""

    in_flight: int = 0
    cooldown: float = 0.0

    @property
    def cooling(self) -> bool:
        return self.cooldown > 0


IDLE = KeyLoad()


class KeyLoads(Protocol):
    async def cool_down(self, key_id: str, seconds: float) -> None:
        """Rest `key_id` for `seconds` from now (a longer cooldown already set is kept)."""

    async def started(self, key_id: str, lease_id: str, ttl: float) -> None:
        """A request on `key_id` began (counted until `finished` or `ttl` seconds)."""

    async def finished(self, key_id: str, lease_id: str) -> None:
        """The request ended (from any worker; twice is a no-op)."""

    async def loads(self, key_ids: Sequence[str]) -> dict[str, KeyLoad]:
        """Every key's load, one round trip; keys with nothing known are `IDLE`."""
