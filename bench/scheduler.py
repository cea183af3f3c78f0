"""The scheduler's cost: CPU when no run waits, memory while 1,000 runs wait.

1. No wait (target ≤ 5 % CPU per request at c64): in one process and one run, the pool's
   old choice (`KeyPool.choose`, the fewest calls in flight) against what a run now does
   with a free slot (`RunQueue.take` + `give_back`: the slot choice, the lane check, no
   await that suspends), over five keys with 64 calls in flight, alternated in rounds;
   the difference is set against a request's CPU from the last `scripts/bench` run
   (`bench/results/latest.json`, NXS billing off), 145 µs if there is none.
2. Memory: one `nxs serve` in front of `nxs emulator --time-scale 20` with one key of
   concurrency 1 held by a slow run (24 s); two waves of 1,000 runs each wait until
   NXS_RUN_WAIT_SECONDS (10) and get their 429; the gateway's RSS is read idle, with each
   wave waiting, and after.
Usage: .venv/bin/python -m bench.scheduler [--rounds 9] [--skip-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from bench.run import BENCH, free_ports, nxs, spawn, stop, wait_ready

from nxs.gateway.metrics import Metrics
from nxs.gateway.pool import KeyPool
from nxs.gateway.scheduler import RunQueue
from nxs.store.models import UpstreamKey

PAIRS = 200_000
KEYS = 5
FALLBACK_REQUEST_CPU_US = 145.0
SLOW = "/fal-ai/kling-video/v2/master/text-to-video"  # 1.2 s of fal's time


def pool_of(keys: int, concurrency: int) -> KeyPool:
    pool = KeyPool(lambda *_: None)
    pool.load(
        UpstreamKey(f"up_{n}", f"k{n}", f"acct-{n}:s", 1, "active", None, 0.0, concurrency)
        for n in range(keys)
    )
    for entry in pool.entries():  # 64 calls in flight over the pool, as at c64
        entry.in_flight = entry.running = 64 // keys
    return pool


def old_choice(pairs: int) -> float:
    pool = pool_of(KEYS, 1000)
    started = time.process_time()
    for _ in range(pairs):
        entry = pool.choose(set())
        assert entry is not None
        entry.in_flight += 1
        entry.in_flight -= 1
    return (time.process_time() - started) / pairs * 1e6


def scheduled(pairs: int) -> float:
    pool = pool_of(KEYS, 1000)
    queue = RunQueue(pool, 60.0, Metrics())

    async def loop() -> float:
        started = time.process_time()
        for _ in range(pairs):
            entry = await queue.take("cust", 1, set(), time.monotonic() + 60)
            entry.in_flight += 1
            entry.in_flight -= 1
            queue.give_back(entry)
        return (time.process_time() - started) / pairs * 1e6

    return asyncio.run(loop())


def request_cpu_us() -> float:
    latest = BENCH / "results" / "latest.json"
    try:
        report = json.loads(latest.read_text())
        return float(report["contenders"]["nxs"]["cpu_us_per_request"])
    except (OSError, ValueError, KeyError, TypeError):
        return FALLBACK_REQUEST_CPU_US


def no_wait(rounds: int) -> dict[str, float]:
    old, new = [], []
    for index in range(rounds):
        pair = (old_choice, scheduled) if index % 2 else (scheduled, old_choice)
        results = {fn: fn(PAIRS) for fn in pair}
        old.append(results[old_choice])
        new.append(results[scheduled])
    extra = statistics.median(n - o for n, o in zip(new, old, strict=True))
    per_request = request_cpu_us()
    return {
        "old_choice_us": round(statistics.median(old), 3),
        "scheduled_us": round(statistics.median(new), 3),
        "extra_us_per_run": round(extra, 3),
        "request_cpu_us": per_request,
        "extra_share_of_request_cpu": round(extra / per_request, 4),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wave(session: aiohttp.ClientSession, url: str, key: str, count: int) -> list[int]:
    headers = {"Authorization": f"Key {key}"}

    async def one(n: int) -> int:
        async with session.post(url, headers=headers, json={"prompt": f"{n}"}) as response:
            await response.read()
            return response.status

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def memory_waves(base: str, key: str, pid: int) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        holder = asyncio.ensure_future(wave(session, base + SLOW, key, 1))
        await asyncio.sleep(0.5)
        figures: dict[str, object] = {"idle_kib": rss_kib(pid)}
        for name in ("first", "second"):
            runs = asyncio.ensure_future(wave(session, base + "/fal-ai/flux/dev", key, 1000))
            await asyncio.sleep(6)  # all sent, all waiting (each waits 10 s)
            figures[f"{name}_wave_waiting_kib"] = rss_kib(pid)
            codes = await runs
            figures[f"{name}_wave_statuses"] = {str(c): codes.count(c) for c in set(codes)}
        figures["holder_status"] = (await holder)[0]
        figures["after_kib"] = rss_kib(pid)
        return figures


def memory() -> dict[str, object]:
    gateway_port, fal_port = free_ports(2)
    with tempfile.TemporaryDirectory(prefix="nxs-bench-scheduler-") as tmp:
        folder = Path(tmp)
        env = {
            "NXS_DATABASE_URL": f"sqlite:///{folder / 'nxs.db'}",
            "NXS_UPSTREAM_URL": f"http://127.0.0.1:{fal_port}",
            "NXS_RUN_WAIT_SECONDS": "10",
            "NXS_ACCESS_LOG": "false",
        }
        procs = []
        try:
            fal = ["nxs", "emulator", "--port", str(fal_port), "--time-scale", "20"]
            procs.append(spawn([".venv/bin/" + fal[0], *fal[1:]], 1, folder / "fal.log"))
            nxs(env, "upstream", "add", "one", "--concurrency", "1", stdin="acct-bench:s\n")
            nxs(env, "customers", "create", "bench")
            key = nxs(env, "keys", "create", "bench").strip().splitlines()[-1].strip()
            serve = [".venv/bin/nxs", "serve", "--port", str(gateway_port)]
            procs.append(spawn(serve, 0, folder / "gateway.log", env))
            base = f"http://127.0.0.1:{gateway_port}"
            wait_ready(f"{base}/healthz")
            wait_ready(f"http://127.0.0.1:{fal_port}/healthz")
            return asyncio.run(memory_waves(base, key, procs[-1].pid))  # taskset execs
        except Exception:
            print((folder / "gateway.log").read_text()[-3000:])
            raise
        finally:
            for proc in procs:
                stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "scheduler.json")
    args = parser.parse_args()
    report: dict[str, object] = {"no_wait": no_wait(args.rounds)}
    if not args.skip_memory:
        report["memory"] = memory()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
