"""The streaming check: a 20 MiB answer through the bare pass-through and through NXS.

nginx serves the body (sendfile) on CPU 1; each proxy is pinned to CPU 0. Per contender:
MB/s and proxy CPU for wrk -c32 downloading it, the process group's peak RSS meanwhile,
then 32 slow clients (curl --limit-rate 2M, 6 s) with RSS before → peak → after: a proxy
that buffered whole bodies would grow by ~640 MB. Usage: .venv/bin/python -m bench.stream
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.run import (
    BENCH,
    ROOT,
    cpu_seconds,
    free_ports,
    prepare_nxs,
    serve_nxs,
    spawn,
    stop,
    uvicorn,
    wait_ready,
)

SIZE = 20 * 1024 * 1024
PATH = "/fal-ai/big-download"
NGINX_CONF = """
worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; keepalive_requests 1000000; client_body_temp_path {tmp};
  server {{
    listen 127.0.0.1:{port};
    root {tmp}/www; default_type application/octet-stream;
    location = /healthz {{ return 200 'ok'; }}
  }}
}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "stream.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nxs-bench-stream-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            contenders = start(Path(tmp), procs)
            report = {
                name: measure(url, pid, key, args.seconds) for name, url, pid, key in contenders
            }
        finally:
            for proc in procs:
                stop(proc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report)
    return 0


def start(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> list[tuple[str, str, int, str]]:
    upstream_port, bare_port, nxs_port = free_ports(3)
    body = tmp / "www" / "fal.run" / PATH.lstrip("/")
    body.parent.mkdir(parents=True)
    body.write_bytes(os.urandom(SIZE))
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=upstream_port))
    procs.append(spawn(["nginx", "-p", str(tmp), "-c", str(conf)], cpu=1, log=tmp / "ng.log"))
    upstream = f"http://127.0.0.1:{upstream_port}"
    wait_ready(upstream + "/healthz")
    bare_env = {"BARE_UPSTREAM": upstream + "/fal.run", "PYTHONPATH": str(ROOT)}
    bare = spawn(uvicorn("bench.bare_proxy:create", bare_port), 0, tmp / "bare.log", bare_env)
    nxs_env, key = prepare_nxs(tmp, upstream)
    env = {**nxs_env, "NXS_BILLING": "off", "NXS_ACCESS_LOG": "false"}
    nxs = serve_nxs(nxs_port, tmp / "nxs.log", env)
    procs += [bare, nxs]
    for port in (bare_port, nxs_port):
        wait_ready(f"http://127.0.0.1:{port}/healthz")
    return [
        ("bare", f"http://127.0.0.1:{bare_port}{PATH}", bare.pid, key),
        ("nxs", f"http://127.0.0.1:{nxs_port}{PATH}", nxs.pid, key),
    ]


def measure(url: str, pgid: int, key: str, seconds: int) -> dict[str, float]:
    auth = f"Authorization: Key {key}"
    ttfb, total = single(url, auth)
    before_cpu = cpu_seconds(pgid)
    wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s", "--timeout", "30s"]
    with RssSampler(pgid) as during:
        out = subprocess.run(
            [*wrk, "-H", auth, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    cpu = cpu_seconds(pgid) - before_cpu
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    time.sleep(1.0)
    rss_before = group_rss_mb(pgid)
    with RssSampler(pgid) as slow:
        clients = [
            subprocess.Popen(
                ["curl", "-s", "-o", "/dev/null", "--limit-rate", "2M", "-m", "6", "-H", auth, url]
            )
            for _ in range(32)
        ]
        for client in clients:
            client.wait(timeout=30)
    time.sleep(1.0)
    return {
        "mb_per_s": requests * SIZE / 1e6 / seconds,
        "cpu_percent": 100 * cpu / seconds,
        "peak_rss_mb_wrk": during.peak,
        "ttfb_ms": ttfb,
        "total_ms": total,
        "slow_rss_before_mb": rss_before,
        "slow_rss_peak_mb": slow.peak,
        "slow_rss_after_mb": group_rss_mb(pgid),
    }


def single(url: str, auth: str) -> tuple[float, float]:
    timing = "%{time_starttransfer} %{time_total}"
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-H", auth, "-w", timing, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    first, total = (float(x) * 1000 for x in out.split())
    return first, total


class RssSampler:
    """Peak RSS (MB) of a process group, sampled every 50 ms while the block runs."""

    def __init__(self, pgid: int) -> None:
        self.pgid, self.peak = pgid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, group_rss_mb(self.pgid))


def group_rss_mb(pgid: int) -> float:
    total_kb = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total_kb += int(match[1]) if match else 0
    return total_kb / 1024


def print_report(report: dict[str, dict[str, float]]) -> None:
    print("contender   MB/s  CPU%  RSS wrk  TTFB/total ms   32 slow clients: RSS before→peak→after")
    for name, r in report.items():
        print(
            f"{name:<9} {r['mb_per_s']:>6.0f} {r['cpu_percent']:>5.0f} "
            f"{r['peak_rss_mb_wrk']:>7.1f}M {r['ttfb_ms']:>6.1f}/{r['total_ms']:<7.1f}  "
            f"{r['slow_rss_before_mb']:.1f} → {r['slow_rss_peak_mb']:.1f} → "
            f"{r['slow_rss_after_mb']:.1f} MB"
        )


if __name__ == "__main__":
    raise SystemExit(main())
