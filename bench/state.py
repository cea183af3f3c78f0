"""What one limits acquire costs on each shared-state backend, in one run.

In process (the baseline), SQLite (the state file of `--workers N` on one box) and Redis
(a throw-away `redis-server` on loopback), each with a plan's two scopes (customer and
key, rpm and in-flight). c1: µs per acquire and per release, one call at a time; c64:
acquire+release pairs per second with 64 concurrent callers, on uvloop. Rounds rotate the backends;
the medians are printed with their ratio to in-process.
Usage: .venv/bin/python -m bench.state [--rounds 5 --calls 3000 --seconds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uvloop
from tests.support.redis_server import start_redis

from nxs.state.interface import State
from nxs.state.limits import Limit, Permit
from nxs.state.memory import InProcessState
from nxs.state.redis_state import RedisState
from nxs.state.sqlite_state import SqliteState

BIG = 10**9  # limits that never refuse: every call does the whole check and count
LIMITS = [Limit("customer:bench", BIG, BIG), Limit("key:bench", BIG, BIG)]
CONCURRENCY = 64


async def one_at_a_time(state: State, calls: int) -> tuple[float, float, float]:
    """µs per acquire and per release, one call in flight, and this process's CPU µs per
    acquire+release pair (the server's own CPU is not counted)."""
    acquiring = releasing = 0.0
    cpu = time.process_time()
    for n in range(calls):
        started = time.perf_counter()
        permit = await state.acquire(LIMITS, f"c1-{n}", 60)
        middle = time.perf_counter()
        await state.release(f"c1-{n}")
        releasing += time.perf_counter() - middle
        acquiring += middle - started
        assert isinstance(permit, Permit)
    cpu_us = (time.process_time() - cpu) / calls * 1e6
    return acquiring / calls * 1e6, releasing / calls * 1e6, cpu_us


async def concurrent(state: State, seconds: float) -> float:
    """Acquire+release pairs per second with `CONCURRENCY` callers."""
    deadline = time.perf_counter() + seconds
    done = [0] * CONCURRENCY

    async def caller(index: int) -> None:
        while time.perf_counter() < deadline:
            lease = f"c64-{index}-{done[index]}"
            await state.acquire(LIMITS, lease, 60)
            await state.release(lease)
            done[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(CONCURRENCY)))
    return sum(done) / (time.perf_counter() - started)


async def measure(make: Callable[[], State], calls: int, seconds: float) -> tuple[float, ...]:
    state = make()
    try:
        await one_at_a_time(state, 200)  # warm up: connections, scripts loaded
        acquire_us, release_us, cpu_us = await one_at_a_time(state, calls)
        return acquire_us, release_us, cpu_us, await concurrent(state, seconds)
    finally:
        await state.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # the gateway's loop
    with tempfile.TemporaryDirectory(prefix="nxs-bench-state-") as tmp:
        redis = start_redis(Path(tmp) / "redis")
        try:
            backends: dict[str, Callable[[], State]] = {
                "in-process": InProcessState,
                "sqlite": lambda: SqliteState(Path(tmp) / "nxs.db-state"),
                "redis": lambda: RedisState.from_url(redis.url, namespace="nxs:bench:"),
            }
            samples: dict[str, list[tuple[float, ...]]] = {name: [] for name in backends}
            names = list(backends)
            for round_index in range(args.rounds):
                for name in names[round_index % 3 :] + names[: round_index % 3]:
                    run = measure(backends[name], args.calls, args.seconds)
                    samples[name].append(asyncio.run(run))
        finally:
            redis.stop()
    report(samples)
    return 0


def report(samples: dict[str, list[tuple[float, ...]]]) -> None:
    medians = {
        name: [statistics.median(column) for column in zip(*rows, strict=True)]
        for name, rows in samples.items()
    }
    base = medians["in-process"]
    print(
        f"{'backend':<11} {'acquire µs':>11} {'release µs':>11} {'c1 acq/s':>10} "
        f"{'CPU µs/pair':>12} {'c64 pairs/s':>12} {'acquire vs in-proc':>19}"
    )
    for name, (acquire_us, release_us, cpu_us, pairs) in medians.items():
        print(
            f"{name:<11} {acquire_us:>11.1f} {release_us:>11.1f} {1e6 / acquire_us:>10,.0f} "
            f"{cpu_us:>12.1f} {pairs:>12,.0f} {acquire_us / base[0]:>18.1f}×"
        )


if __name__ == "__main__":
    raise SystemExit(main())
