"""The proxy benchmark: direct, bare pass-through, NXS and fal's official proxy, interleaved.

One nginx upstream serves a 1 KB JSON answer; every proxy process is pinned to CPU 0,
nginx and wrk to CPU 1. Each round runs every contender at c64 and at c1, in rotated
order, and the report gives paired ratios against the bare pass-through and CPU µs per
request (the process group's own CPU time / requests). `nxs` is the gateway with billing
off (issue 3's targets); `nxs-billed` the same with metering on (the default plan).
Usage: scripts/bench [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
ANSWER = json.dumps({"images": [{"url": "https://v3.fal.media/files/x/" + "a" * 900}]})
NGINX_CONF = """
worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; keepalive_requests 1000000; client_body_temp_path {tmp};
  server {{
    listen 127.0.0.1:{port};
    location /fal.run/ {{ default_type application/json; return 200 '{answer}'; }}
    location = /healthz {{ return 200 'ok'; }}
  }}
}}
"""


@dataclass
class Sample:
    contender: str
    load: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float | None
    errors: int


@dataclass
class Contender:
    name: str
    url: str
    pgid: int | None
    env: dict[str, str]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nxs-bench-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            contenders = start_all(Path(tmp), procs)
            samples = run_rounds(contenders, args.rounds, args.seconds)
        finally:
            for proc in procs:
                stop(proc)
    report = summarise(samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": [asdict(s) for s in samples], **report}, indent=2))
    print_report(report)
    return 0


def start_all(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> list[Contender]:
    upstream_port, bare_port, nxs_port, billed_port, fal_port = free_ports(5)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=upstream_port, answer=ANSWER))
    procs.append(spawn(["nginx", "-p", str(tmp), "-c", str(conf)], cpu=1, log=tmp / "ng.log"))
    upstream = f"http://127.0.0.1:{upstream_port}"
    wait_ready(upstream + "/healthz")
    bare_env = {"BARE_UPSTREAM": upstream + "/fal.run", "PYTHONPATH": str(ROOT)}
    bare = spawn(uvicorn("bench.bare_proxy:create", bare_port), 0, tmp / "bare.log", bare_env)
    procs.append(bare)
    nxs_env, key = prepare_nxs(tmp, upstream)
    # The gateway as issue 3 measures it (auth, pool, queue mapping, metrics, access log);
    # billing's own cost is the second NXS, metering on the default plan (bench/billing.py
    # measures it in detail).
    nxs = serve_nxs(nxs_port, tmp / "nxs.log", {**nxs_env, "NXS_BILLING": "off"})
    billed = serve_nxs(billed_port, tmp / "nxs-billed.log", {**nxs_env, "NXS_BILLING": "on"})
    procs += [nxs, billed]
    falp = spawn(["node", str(BENCH / "fal_proxy.mjs"), str(fal_port), upstream], 0, tmp / "f.log")
    procs.append(falp)
    for port in (bare_port, nxs_port, billed_port, fal_port):
        wait_ready(f"http://127.0.0.1:{port}/healthz")
    flux = "/fal-ai/flux/dev"
    target = {"BENCH_TARGET": "https://fal.run/fal-ai/flux/dev"}
    return [
        Contender("direct", f"{upstream}/fal.run{flux}", None, {}),
        Contender("bare", f"http://127.0.0.1:{bare_port}{flux}", bare.pid, {}),
        Contender("nxs", f"http://127.0.0.1:{nxs_port}{flux}", nxs.pid, {"BENCH_KEY": key}),
        Contender(
            "nxs-proxy",
            f"http://127.0.0.1:{nxs_port}/api/proxy",
            nxs.pid,
            {"BENCH_KEY": key, **target},
        ),
        Contender(
            "nxs-billed", f"http://127.0.0.1:{billed_port}{flux}", billed.pid, {"BENCH_KEY": key}
        ),
        Contender("fal-proxy", f"http://127.0.0.1:{fal_port}/api/fal/proxy", falp.pid, target),
    ]


def serve_nxs(port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "nxs", "serve", "--port", str(port)], 0, log, env)


def prepare_nxs(tmp: Path, upstream: str) -> tuple[dict[str, str], str]:
    env = {
        "NXS_DATABASE_URL": f"sqlite:///{tmp}/nxs.db",
        "NXS_SECRET_KEY_FILE": str(tmp / "nxs.secret"),
        "NXS_UPSTREAM_URL": upstream,
    }
    nxs(env, "customers", "create", "bench")
    key = nxs(env, "keys", "create", "bench").strip().splitlines()[-1]
    # the upstream is nginx, not one fal account: room for every request at once
    nxs(env, "upstream", "add", "pool", "--concurrency", "1000", stdin="upstream-secret-key\n")
    return env, key


def nxs(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    full = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-m", "nxs", *args],
        env=full,
        input=stdin,
        text=True,
        capture_output=True,
        check=True,
    )
    return done.stdout


def uvicorn(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def run_rounds(contenders: list[Contender], rounds: int, seconds: float) -> list[Sample]:
    samples: list[Sample] = []
    for round_no in range(rounds):
        shift = round_no % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            wrk(contender, 64, 1.0)  # warm-up
            samples.append(wrk(contender, 64, seconds))
            samples.append(wrk(contender, 1, seconds))
            print(f"round {round_no + 1}: {contender.name} done", file=sys.stderr)
    return samples


def wrk(
    contender: Contender, connections: int, seconds: float, script: Path = BENCH / "post.lua"
) -> Sample:
    threads = "1"
    cmd = ["taskset", "-c", "1", "wrk", "-t", threads, "-c", str(connections)]
    cmd += [
        "-d",
        f"{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    before = cpu_seconds(contender.pgid)
    out = subprocess.run(
        [*cmd, contender.url],
        env={**os.environ, **contender.env},
        text=True,
        capture_output=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    cpu = cpu_seconds(contender.pgid) - before if contender.pgid else None
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Sample(
        contender.name,
        f"c{connections}",
        float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        latency(out, "50"),
        latency(out, "99"),
        (cpu * 1e6 / requests) if cpu is not None and requests else None,
        int(errors.group(1)) if errors else 0,
    )


def latency(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}(?:\.\d+)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not match:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


def cpu_seconds(pgid: int | None) -> float:
    """User + system CPU of every process in the group (the proxy and its workers)."""
    if pgid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def summarise(samples: list[Sample]) -> dict[str, object]:
    def med(name: str, load: str, attr: str) -> float:
        values = [getattr(s, attr) for s in samples if s.contender == name and s.load == load]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    names = sorted({s.contender for s in samples}, key=[s.contender for s in samples].index)
    table = {
        name: {
            "rps_c64": med(name, "c64", "rps"),
            "p99_ms_c64": med(name, "c64", "p99_ms"),
            "cpu_us_per_request_c64": med(name, "c64", "cpu_us_per_request"),
            "p50_ms_c1": med(name, "c1", "p50_ms"),
            "errors": sum(s.errors for s in samples if s.contender == name),
        }
        for name in names
    }
    return {"table": table, "ratios": ratios(samples)}


def ratios(samples: list[Sample]) -> dict[str, float]:
    """Paired per-round ratios (same round, same load), then the median over rounds."""

    def paired(a: str, b: str, load: str, attr: str) -> float:
        xs = [getattr(s, attr) for s in samples if s.contender == a and s.load == load]
        ys = [getattr(s, attr) for s in samples if s.contender == b and s.load == load]
        pairs = [x / y for x, y in zip(xs, ys, strict=False) if x and y]
        return statistics.median(pairs) if pairs else float("nan")

    def p50_delta(a: str, b: str) -> float:
        xs = [s.p50_ms for s in samples if s.contender == a and s.load == "c1"]
        ys = [s.p50_ms for s in samples if s.contender == b and s.load == "c1"]
        return statistics.median(x - y for x, y in zip(xs, ys, strict=False))

    return {
        "nxs_rps_vs_bare": paired("nxs", "bare", "c64", "rps"),
        "nxs_cpu_per_request_vs_bare": paired("nxs", "bare", "c64", "cpu_us_per_request"),
        "nxs_p50_c1_minus_bare_ms": p50_delta("nxs", "bare"),
        "nxs_rps_vs_fal_proxy": paired("nxs", "fal-proxy", "c64", "rps"),
        "nxs_proxy_route_rps_vs_bare": paired("nxs-proxy", "bare", "c64", "rps"),
        "nxs_billed_rps_vs_nxs": paired("nxs-billed", "nxs", "c64", "rps"),
        "nxs_billed_cpu_per_request_vs_bare": paired(
            "nxs-billed", "bare", "c64", "cpu_us_per_request"
        ),
        "fal_proxy_rps_vs_bare": paired("fal-proxy", "bare", "c64", "rps"),
    }


def print_report(report: dict[str, object]) -> None:
    table = report["table"]
    assert isinstance(table, dict)
    print(f"{'contender':<11} {'rps c64':>9} {'p99 c64':>9} {'CPU µs/req':>11} {'p50 c1':>8} errs")
    for name, row in table.items():
        print(
            f"{name:<11} {row['rps_c64']:>9.0f} {row['p99_ms_c64']:>7.2f}ms "
            f"{row['cpu_us_per_request_c64']:>11.0f} {row['p50_ms_c1']:>6.3f}ms {row['errors']}"
        )
    ratios_ = report["ratios"]
    assert isinstance(ratios_, dict)
    for name, value in ratios_.items():
        print(f"{name:<36} {value:.3f}")


def free_ports(count: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def spawn(
    cmd: list[str], cpu: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["taskset", "-c", str(cpu), *cmd],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        start_new_session=True,
    )


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    raise SystemExit(main())
