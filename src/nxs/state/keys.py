"""Upstream keys as every worker sees them: cooldowns (after fal's 429) and calls in flight.

A cooldown is set as a duration and kept as a deadline on the backend's clock (Redis's
`TIME`), so replicas with skewed clocks agree; in-flight calls are leases, so the counts of
a dead worker come back. `loads` reads every key in one round trip for the least-loaded
choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KeyLoad:
    """One upstream key now: calls in flight, seconds of cooldown left (0: none)."""

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
        """A call on `key_id` began (counted until `finished` or `ttl` seconds)."""

    async def finished(self, key_id: str, lease_id: str) -> None:
        """The call ended (from any worker; twice is a no-op)."""

    async def loads(self, key_ids: Sequence[str]) -> dict[str, KeyLoad]:
        """Every key's load, one round trip; keys with nothing known are `IDLE`."""
