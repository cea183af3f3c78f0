"""Upstream-key cooldowns and outstanding requests shared by every worker and replica
through `nxs.state`.

A 429 seen by one worker is reported at once (in a task: the request does not wait) and
every worker adopts the shared cooldowns, and each key's count of requests outstanding at
fal, every `SYNC_SECONDS` with one read of all keys, so a rate-limited fal key rests for
the whole cluster and queue submits spread by what the whole cluster has at fal.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from nxs.gateway.pool import KeyPool
from nxs.state.keys import KeyLoads

SYNC_SECONDS: Final = 0.25


@dataclass
class SharedCooldowns:
    state: KeyLoads
    pool: KeyPool
    reports: set[asyncio.Task[None]] = field(default_factory=set)

    def attach(self) -> None:
        """Report this pool's cooldowns to the shared state from now on."""
        self.pool.on_cooldown = self.report

    def report(self, key_id: str, seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self.state.cool_down(key_id, seconds))
        self.reports.add(task)
        task.add_done_callback(self.reports.discard)

    async def sync(self) -> None:
        """Adopt the cooldowns other workers reported (one round trip for every key)."""
        key_ids = [entry.key.id for entry in self.pool.entries()]
        if key_ids:
            self.pool.adopt(await self.state.loads(key_ids))
