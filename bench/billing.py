"""Billing on vs off, same run: what metering costs the hot path (target: ≤ 10 %).

One nginx upstream (bench/run.py's), two `nxs serve` on CPU 0 — one with NXS_BILLING=off,
one metering — and wrk on CPU 1. On the metering gateway: a customer on the built-in
`default` plan (one group-committed ledger insert per request) and one on a prepaid plan
(reserve before, settle after). The endpoint is priced per request and nginx answers with
`x-fal-billable-units`, as fal does: the path a synced price book takes (no body parse).

This machine's speed drifts by ±15 % from second to second, so many short rounds run the
contenders back to back (rotated) and the result is the median of each round's ratio.
Usage: .venv/bin/python -m bench.billing [--rounds 15 --seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.run import (
    ANSWER,
    BENCH,
    NGINX_CONF,
    Contender,
    Sample,
    free_ports,
    nxs,
    spawn,
    stop,
    wait_ready,
    wrk,
)

FLUX = "/fal-ai/flux/dev"
# fal reports what it bills in a header; the gateway settles from it without parsing
FAL_CONF = NGINX_CONF.replace(
    "default_type application/json;",
    "default_type application/json; add_header x-fal-billable-units 1;",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "billing.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nxs-bench-billing-") as tmp:
        procs: list = []  # type: ignore[type-arg]
        try:
            contenders = start(Path(tmp), procs)
            samples = rounds(contenders, args.rounds, args.seconds)
        finally:
            for proc in procs:
                stop(proc)
    report = summarise(samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": [asdict(s) for s in samples], **report}, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def start(tmp: Path, procs: list) -> list[Contender]:  # type: ignore[type-arg]
    upstream_port, off_port, on_port = free_ports(3)
    conf = tmp / "nginx.conf"
    conf.write_text(FAL_CONF.format(tmp=tmp, port=upstream_port, answer=ANSWER))
    procs.append(spawn(["nginx", "-p", str(tmp), "-c", str(conf)], cpu=1, log=tmp / "ng.log"))
    upstream = f"http://127.0.0.1:{upstream_port}"
    wait_ready(upstream + "/healthz")
    env = {
        "NXS_DATABASE_URL": f"sqlite:///{tmp}/nxs.db",
        "NXS_SECRET_KEY_FILE": str(tmp / "nxs.secret"),
        "NXS_UPSTREAM_URL": upstream,
        "NXS_ACCESS_LOG": "false",
    }
    # the upstream is nginx, not one fal account: room for every request at once
    nxs(env, "upstream", "add", "pool", "--concurrency", "1000", stdin="upstream-secret-key\n")
    nxs(env, "pricing", "set", "fal-ai/flux/dev", "request", "0.001")
    nxs(env, "plans", "create", "prepaid", "--prepaid")
    metered, payer = customer(env, "metered"), customer(env, "payer")
    nxs(env, "subscriptions", "set", "payer", "prepaid")
    nxs(env, "credits", "grant", "payer", "1000000")
    for port, billing in ((off_port, "off"), (on_port, "on")):
        serve = [sys.executable, "-m", "nxs", "serve", "--port", str(port)]
        log = tmp / f"nxs-{billing}.log"
        procs.append(spawn(serve, cpu=0, log=log, env={**env, "NXS_BILLING": billing}))
        wait_ready(f"http://127.0.0.1:{port}/healthz")
    off, on = procs[-2].pid, procs[-1].pid
    return [
        Contender("billing-off", f"http://127.0.0.1:{off_port}{FLUX}", off, {"BENCH_KEY": metered}),
        Contender("default-plan", f"http://127.0.0.1:{on_port}{FLUX}", on, {"BENCH_KEY": metered}),
        Contender("prepaid-plan", f"http://127.0.0.1:{on_port}{FLUX}", on, {"BENCH_KEY": payer}),
    ]


def customer(env: dict[str, str], name: str) -> str:
    nxs(env, "customers", "create", name)
    return nxs(env, "keys", "create", name).strip().splitlines()[-1]


def rounds(contenders: list[Contender], count: int, seconds: float) -> list[Sample]:
    samples: list[Sample] = []
    for round_no in range(count):
        shift = round_no % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            wrk(contender, 64, 0.5)  # warm-up
            samples.append(wrk(contender, 64, seconds))
            print(f"round {round_no + 1}: {contender.name} done", file=sys.stderr)
    return samples


def summarise(samples: list[Sample]) -> dict[str, object]:
    """Median rps per contender and paired per-round ratios against billing off."""

    def rps(name: str) -> list[float]:
        return [s.rps for s in samples if s.contender == name]

    def ratio(name: str) -> float:
        pairs = [on / off for on, off in zip(rps(name), rps("billing-off"), strict=False) if off]
        return statistics.median(pairs) if pairs else float("nan")

    names = ("billing-off", "default-plan", "prepaid-plan")
    return {
        "rps_c64": {name: statistics.median(rps(name)) for name in names},
        "cpu_us_per_request": {
            name: statistics.median(s.cpu_us_per_request for s in samples if s.contender == name)
            for name in names
        },
        "errors": {name: sum(s.errors for s in samples if s.contender == name) for name in names},
        "default_plan_rps_vs_off": ratio("default-plan"),
        "prepaid_plan_rps_vs_off": ratio("prepaid-plan"),
    }


if __name__ == "__main__":
    raise SystemExit(main())
