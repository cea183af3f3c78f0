"""Change notices: a CLI or admin change publishes the store's new version, every
subscribed worker of every replica is called back within a second.

A callback may also get `RESYNC` (0): the backend lost its subscription for a while and a
notice may have been missed, so the worker re-reads the store as if the version moved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Protocol

RESYNC: Final = 0
Callback = Callable[[int], None]
log = logging.getLogger("nxs.state")


class Subscription(Protocol):
    async def close(self) -> None: ...


class Notices(Protocol):
    async def publish(self, version: int) -> None: ...

    async def subscribe(self, callback: Callback) -> Subscription: ...


def deliver(callback: Callback, version: int) -> None:
    """Call back without letting a failing callback end the subscription."""
    try:
        callback(version)
    except Exception:
        log.exception("change notice callback failed")
