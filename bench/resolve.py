"""What resolving a REST path against fal's catalogue costs `Router.match`, per call.

In-process, same run, interleaved rounds: the router with no catalogue (owners only, the
rule before `nxs models sync`) against the router holding a catalogue of N endpoint ids,
over the paths customers send (full ids, shorthand, deep paths, request operations).
Prints ns per match for each and the median of the rounds' paired ratios.
Usage: .venv/bin/python -m bench.resolve [--rounds 9 --ids 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from nxs.config import DEFAULT_OWNERS
from nxs.gateway.routes import Router

PATHS = (
    "/fal-ai/flux/dev",
    "/flux/dev",
    "/queue/fal-ai/flux/dev",
    "/flux/dev/image-to-image",
    "/queue/fal-ai/flux/requests/0b6c3b5e-2f1c-4f6e-9d61-1a2b3c4d5e6f/status",
    "/moonvalley/marey/t2v",
    "/fal-ai/kling-video/v2/master/text-to-video",
)


def catalogue(count: int) -> list[str]:
    """`count` ids shaped like fal's: owners, apps, versions and tasks."""
    tasks = ("text-to-image", "image-to-image", "text-to-video", "image-to-video", "edit")
    ids = ["fal-ai/flux/dev", "fal-ai/flux/dev/image-to-image", "moonvalley/marey/t2v"]
    ids += [f"owner-{i % 97}/app-{i}/v{i % 3}/{tasks[i % len(tasks)]}" for i in range(count)]
    return ids


def ns_per_match(router: Router, loops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(loops):
        for path in PATHS:
            router.match("POST", path)
    return (time.perf_counter_ns() - start) / (loops * len(PATHS))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--ids", type=int, default=2000)
    parser.add_argument("--loops", type=int, default=20000)
    args = parser.parse_args()
    bare, synced = Router(DEFAULT_OWNERS), Router(DEFAULT_OWNERS)
    synced.index.load(catalogue(args.ids))
    ratios, times = [], {"owners only": [], f"catalogue of {len(synced.index)}": []}
    for round_number in range(args.rounds):
        pair = (bare, synced) if round_number % 2 == 0 else (synced, bare)
        measured = {id(router): ns_per_match(router, args.loops) for router in pair}
        times["owners only"].append(measured[id(bare)])
        times[f"catalogue of {len(synced.index)}"].append(measured[id(synced)])
        ratios.append(measured[id(synced)] / measured[id(bare)])
    for name, values in times.items():
        print(f"{name}: {statistics.median(values):.0f} ns per match (median of {args.rounds})")
    print(f"catalogue / owners only: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
