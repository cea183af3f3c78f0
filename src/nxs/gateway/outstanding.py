"""Queued requests each upstream key has at fal: submitted, not yet seen finished.

fal runs a key's queued requests within the same concurrency as its direct runs, so the
pool counts them (`PoolKey.outstanding`): queue submits go to the key with the fewest,
and runs prefer keys with less queued work. A request counts from
its submit until a result, a COMPLETED status or its webhook is seen, at most
`queued_lease_seconds`. With a shared state the counts are leases there (`KeyLoads.started`
/ `finished`, read back by the cooldown sync), so any worker may end what another began.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any, Final

from nxs.gateway.pool import KeyPool, PoolKey
from nxs.state.keys import KeyLoads

REMEMBER_ENDED: Final = 10_000  # ids seen finished, so repeated polls report them once


class Outstanding:
    """This worker's view of the requests outstanding at fal, per upstream key."""

    def __init__(self, pool: KeyPool, ttl: float, shared: KeyLoads | None = None) -> None:
        self._pool, self._ttl, self.shared = pool, ttl, shared
        self._open: dict[str, tuple[str, float]] = {}  # request id → key id, expiry
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def submitted(self, entry: PoolKey, request_id: str) -> None:
        self._open[request_id] = (entry.key.id, time.monotonic() + self._ttl)
        entry.outstanding += 1
        if self.shared is not None:
            self._spawn(self.shared.started(entry.key.id, request_id, self._ttl))

    def finished(self, request_id: str, key_id: str | None = None) -> None:
        """The request ended at fal (twice is a no-op)."""
        if request_id in self._ended:
            return
        self._ended[request_id] = None
        if len(self._ended) > REMEMBER_ENDED:
            self._ended.popitem(last=False)
        found = self._open.pop(request_id, None)
        if found is not None:
            key_id = found[0]
            self._decrement(key_id)
        if self.shared is not None and key_id is not None:
            self._spawn(self.shared.finished(key_id, request_id))

    def sweep(self) -> None:
        """Forget requests past their lease (a client that never asked for its result)."""
        now = time.monotonic()
        for request_id, (key_id, expires) in list(self._open.items()):
            if expires <= now:
                del self._open[request_id]
                self._decrement(key_id)

    def _decrement(self, key_id: str) -> None:
        entry = self._pool.get(key_id)
        if entry is not None and entry.outstanding > 0:
            entry.outstanding -= 1

    def _spawn(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
