"""The first moments of a worker's graceful stop. At SIGTERM (or SIGINT) the worker ends
its realtime sessions itself — fal's socket closed, then the client's with 1001 — and
only then hands the signal to uvicorn, which stops accepting, lets runs and streams in
flight finish (up to `NXS_DRAIN_SECONDS`), and runs the lifespan shutdown that flushes
the ledger writer and the access log. Left to uvicorn alone, sessions would get 1012.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def before_stopping(first: Callable[[], Awaitable[None]]) -> None:
    """Run `first()` on this loop when a stop signal arrives, then pass the signal to the
    handler that was there (uvicorn's); a second signal passes at once."""
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []
    for number in SIGNALS:
        previous = signal.getsignal(number)
        if callable(previous):
            signal.signal(number, _chained(loop, first, previous, started))


def _chained(
    loop: asyncio.AbstractEventLoop,
    first: Callable[[], Awaitable[None]],
    previous: Handler,
    started: list[asyncio.Task[None]],
) -> Handler:
    def handle(number: int, frame: FrameType | None) -> None:
        if started:
            previous(number, frame)
            return

        def begin() -> None:
            task = loop.create_task(_run(first))
            task.add_done_callback(lambda _: previous(number, None))
            started.append(task)

        loop.call_soon_threadsafe(begin)

    return handle


async def _run(first: Callable[[], Awaitable[None]]) -> None:
    await first()
