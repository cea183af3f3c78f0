"""Unknown keys vs authenticated pass-throughs, same run: what a 401 costs the gateway.

One nginx upstream (bench/run.py's) and one `nxs serve` (billing off) on CPU 0, wrk on
CPU 1. Contenders, all against that gateway: `known` (a real key, forwarded to nginx),
`unknown-random` (a fresh random well-formed `nxs_` key per request: a snapshot miss each,
looked up in the store at most 50 times a second, the rest refused by the rate limit) and
`unknown-same` (one unknown key again and again: a remembered miss). Rounds are short and
rotated; the result is the median of each round's paired ratio against `known`, and the
store lookups the gateway counted (`/metrics`) over the whole run.
Usage: .venv/bin/python -m bench.auth [--rounds 10 --seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

from bench.billing import FLUX
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

METRICS_TOKEN = secrets.token_urlsafe(16)  # /metrics on the customer port wants it
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
SCRIPTS = {
    "known": BENCH / "post.lua",
    "unknown-random": BENCH / "unknown_keys.lua",
    "unknown-same": BENCH / "post.lua",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "auth.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nxs-bench-auth-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            contenders, gateway = start(Path(tmp), procs)
            started = time.monotonic()
            samples = rounds(contenders, args.rounds, args.seconds)
            elapsed = time.monotonic() - started
            lookups = store_lookups(gateway)
        finally:
            for proc in procs:
                stop(proc)
    report = summarise(samples)
    report["store_lookups"] = {**lookups, "run_seconds": round(elapsed, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": [asdict(s) for s in samples], **report}, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def start(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[list[Contender], str]:
    upstream_port, port = free_ports(2)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=upstream_port, answer=ANSWER))
    procs.append(spawn(["nginx", "-p", str(tmp), "-c", str(conf)], cpu=1, log=tmp / "ng.log"))
    upstream = f"http://127.0.0.1:{upstream_port}"
    wait_ready(upstream + "/healthz")
    env = {
        "NXS_DATABASE_URL": f"sqlite:///{tmp}/nxs.db",
        "NXS_SECRET_KEY_FILE": str(tmp / "nxs.secret"),
        "NXS_UPSTREAM_URL": upstream,
        "NXS_BILLING": "off",
        "NXS_METRICS_TOKEN": METRICS_TOKEN,
    }
    # the upstream is nginx, not one fal account: room for every request at once
    nxs(env, "upstream", "add", "pool", "--concurrency", "1000", stdin="upstream-secret-key\n")
    nxs(env, "customers", "create", "bench")
    key = nxs(env, "keys", "create", "bench").strip().splitlines()[-1]
    serve = [sys.executable, "-m", "nxs", "serve", "--port", str(port)]
    procs.append(spawn(serve, cpu=0, log=tmp / "nxs.log", env=env))
    gateway = f"http://127.0.0.1:{port}"
    wait_ready(gateway + "/healthz")
    url, pid = gateway + FLUX, procs[-1].pid
    unknown = "nxs_" + secrets.token_urlsafe(30)
    return [
        Contender("known", url, pid, {"BENCH_KEY": key}),
        Contender("unknown-random", url, pid, {}),
        Contender("unknown-same", url, pid, {"BENCH_KEY": unknown}),
    ], gateway


def rounds(contenders: list[Contender], count: int, seconds: float) -> list[Sample]:
    samples: list[Sample] = []
    for round_no in range(count):
        shift = round_no % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            script = SCRIPTS[contender.name]
            contender.env["BENCH_SEED"] = str(round_no)
            wrk(contender, 64, 0.5, script)  # warm-up
            samples.append(wrk(contender, 64, seconds, script))
            print(f"round {round_no + 1}: {contender.name} done", file=sys.stderr)
    return samples


def store_lookups(gateway: str) -> dict[str, int]:
    """The gateway's key-lookup counters: queries made by result, refusals without one."""
    scrape = urllib.request.Request(gateway + "/metrics", headers=METRICS_AUTH)
    with urllib.request.urlopen(scrape, timeout=5) as response:
        text = response.read().decode()
    pattern = r'^nxs_auth_(?:store_lookups|lookups_skipped)_total\{\w+="(\w+)"\} (\d+)$'
    return {name: int(count) for name, count in re.findall(pattern, text, re.M)}


def summarise(samples: list[Sample]) -> dict[str, object]:
    """Medians per contender and paired per-round ratios against `known`."""

    def values(name: str, attr: str) -> list[float]:
        return [getattr(s, attr) for s in samples if s.contender == name]

    def ratio(name: str, attr: str) -> float:
        pairs = zip(values(name, attr), values("known", attr), strict=False)
        ratios = [x / y for x, y in pairs if x and y]
        return statistics.median(ratios) if ratios else float("nan")

    names = ("known", "unknown-random", "unknown-same")
    return {
        "rps_c64": {name: statistics.median(values(name, "rps")) for name in names},
        "cpu_us_per_request": {
            name: statistics.median(values(name, "cpu_us_per_request")) for name in names
        },
        "non_2xx": {name: sum(s.errors for s in samples if s.contender == name) for name in names},
        "unknown_random_cpu_vs_known": ratio("unknown-random", "cpu_us_per_request"),
        "unknown_same_cpu_vs_known": ratio("unknown-same", "cpu_us_per_request"),
        "unknown_random_rps_vs_known": ratio("unknown-random", "rps"),
    }


if __name__ == "__main__":
    raise SystemExit(main())
