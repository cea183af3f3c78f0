"""A worker process for the shared-state tests: `python -m tests.support.state_worker
sqlite|redis TARGET CALLS` makes CALLS acquires under rpm 10 and prints how many passed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from nxs.state.interface import State
from nxs.state.limits import Limit, Permit
from nxs.state.redis_state import RedisState
from nxs.state.sqlite_state import SqliteState


async def admitted(kind: str, target: str, calls: int) -> int:
    state: State
    if kind == "sqlite":
        state = SqliteState(Path(target))
    else:
        url, namespace = target.split(" ")
        state = RedisState.from_url(url, namespace=namespace)
    limits = [Limit("customer:c", rpm=10, max_in_flight=100)]
    pid = os.getpid()
    results = await asyncio.gather(*(state.acquire(limits, f"{pid}-{n}", 60) for n in range(calls)))
    await state.close()
    return sum(isinstance(result, Permit) for result in results)


if __name__ == "__main__":
    print(asyncio.run(admitted(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
