"""A cluster of shared-state "workers" for the contract suite: several independent state
objects (own connections) on one backend, and a clock the test moves where it can."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from nxs.state.interface import State
from nxs.state.memory import InProcessState
from nxs.state.redis_state import RedisState
from nxs.state.sqlite_state import SqliteState


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Cluster:
    """`worker()` is a new state object on the shared backend (in process: the one worker)."""

    kind: str
    make: Callable[[Clock], State]
    clock: Clock | None = field(default_factory=Clock)
    made: list[State] = field(default_factory=list)

    def worker(self) -> State:
        state = self.make(self.clock or Clock())
        self.made.append(state)
        return state

    def workers(self, count: int) -> list[State]:
        return [self.worker() for _ in range(count)]

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass: on the test's clock, or for real (Redis keeps its own time)."""
        if self.clock is not None:
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    def run(self, scenario: Callable[[Cluster], Awaitable[None]]) -> None:
        async def main() -> None:
            try:
                await scenario(self)
            finally:
                for state in {id(s): s for s in self.made}.values():
                    await state.close()

        asyncio.run(main())


def in_process() -> Cluster:
    single: list[State] = []

    def make(clock: Clock) -> State:
        if not single:
            single.append(InProcessState(clock=clock))
        return single[0]

    return Cluster("in-process", make)


def sqlite(folder: Path) -> Cluster:
    return Cluster("sqlite", lambda clock: SqliteState(folder / "nxs.db-state", clock=clock))


def redis(url: str) -> Cluster:
    namespace = f"nxs:test-{uuid.uuid4().hex[:12]}:"
    return Cluster("redis", lambda _clock: RedisState.from_url(url, namespace=namespace), None)
