"""SQLite vs PostgreSQL + Redis, same run: what the shared stores cost the hot path (issue 10).

One nginx upstream answering with `x-fal-billable-units` (bench/billing.py's), two
`nxs serve` (one worker each) on CPU 0 — one on SQLite, one on PostgreSQL + Redis — and
wrk, nginx, PostgreSQL and Redis on CPU 1 (the network services a replica would reach on
other machines). Each gateway serves three customers: `metered` (the default plan: one
group-committed ledger row per request), `prepaid` (credit reserved, then settled) and
`rpm` (a metered plan with an rpm limit that never refuses: the limits path runs, on
Redis one script call to acquire, one to release). In each round a plan's two gateways
run back to back (pairs rotated, order flipped from round to round); each run reports
requests/s at c64, the gateway's CPU µs per request, and that of the PostgreSQL + Redis
processes; ratios are paired per round (PostgreSQL + Redis / SQLite, same plan), then the
median, with the lowest and highest.

Per PostgreSQL round it also counts what the hot path asked of the stores:
`pg_stat_statements` (statements and ledger rows inserted, per request), the transactions
that wrote (transaction ids taken: ledger rows per commit), and
Redis `INFO` (commands and read events — round trips — per request), plus the gateway's
auth store lookups (`/metrics`) over the run.
Usage: .venv/bin/python -m bench.scale [--rounds 5 --seconds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from bench.billing import FAL_CONF, FLUX, customer
from bench.run import (
    ANSWER,
    BENCH,
    Contender,
    Sample,
    free_ports,
    nxs,
    spawn,
    stop,
    wait_ready,
    wrk,
)
from tests.support.postgres_server import PostgresServer, start_postgres
from tests.support.redis_server import RedisServer, start_redis

PLANS = ("metered", "prepaid", "rpm")
METRICS_TOKEN = secrets.token_urlsafe(16)  # /metrics on the customer port wants it
BACKENDS = ("sqlite", "pg")
NEVER_REFUSES = str(10**9)  # rpm: every request runs the limits path, none is refused
SCRIPT_CALLS = ("evalsha", "eval")
SERVICES_CPU = 1  # PostgreSQL and Redis share wrk's and nginx's CPU, not the gateway's
STATEMENTS = "shared_preload_libraries=pg_stat_statements"
# the statements a PostgreSQL round is summarised by (pg_stat_statements' query text)
KINDS = {
    "ledger_insert": re.compile(r"^INSERT INTO ledger\b", re.I),
    "auth_select": re.compile(r"\bFROM (api_keys|customers)\b", re.I),
}


@dataclass
class Services:
    """The PostgreSQL + Redis one gateway uses, and their counters."""

    postgres: PostgresServer
    redis_server: RedisServer
    database: str
    url: str = ""
    redis_client: redis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.postgres.url(self.database)
        self.redis_client = redis.Redis.from_url(self.redis_server.url)

    @property
    def redis_pid(self) -> int:
        assert self.redis_server.process is not None
        return self.redis_server.process.pid

    @property
    def postmaster(self) -> int:
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def pin(self, cpu: int) -> None:
        """Every thread of PostgreSQL (its backends fork from the postmaster: they inherit
        it) and of Redis on `cpu`."""
        pids = [self.redis_pid, self.postmaster, *children(self.postmaster)]
        for pid in pids:
            with contextlib.suppress(OSError):  # a short-lived child that has gone
                for task in Path(f"/proc/{pid}/task").iterdir():
                    os.sched_setaffinity(int(task.name), {cpu})

    def cpu_seconds(self) -> float:
        """User + system CPU of the PostgreSQL processes (the postmaster and its children:
        the pool's connections live through the run) and of redis-server."""
        pids = [self.redis_pid, self.postmaster, *children(self.postmaster)]
        return sum(pid_cpu_seconds(pid) for pid in pids)

    def statements(self) -> dict[str, tuple[int, int]]:
        """pg_stat_statements of the gateway's database: query → (calls, rows)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT query, calls, rows FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND query NOT LIKE '%pg_stat_statements%'"
            ).fetchall()
        totals: dict[str, tuple[int, int]] = {}
        for query, calls, count in rows:
            before = totals.get(query, (0, 0))
            totals[query] = (before[0] + calls, before[1] + count)
        return totals

    def write_transactions(self) -> int:
        """The next transaction id: every transaction that wrote (a batch in one
        transaction, or an INSERT committing alone) takes one; reads take none."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
            ).fetchone()
        assert row is not None
        return int(row[0])

    def redis_counters(self) -> dict[str, int]:
        """Commands by name (INFO itself left out) and read events (≈ round trips)."""
        stats: dict[str, Any] = self.redis_client.info("stats")
        commands: dict[str, Any] = self.redis_client.info("commandstats")
        counters = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in commands.items()
            if name != "cmdstat_info"
        }
        counters["reads"] = int(stats["total_reads_processed"])
        return counters


@dataclass
class Measured:
    """One wrk round of one contender, with the stores' side of it."""

    sample: Sample
    backend: str
    plan: str
    services_cpu_us_per_request: float
    requests: int
    statements: dict[str, tuple[int, int]]  # query → (calls, rows) during the round
    write_transactions: int  # PostgreSQL transactions that wrote, during the round
    redis: dict[str, int]  # command → calls during the round; reads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "scale.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nxs-bench-scale-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        services = start_services(Path(tmp))
        try:
            contenders, gateways = start(Path(tmp), procs, services)
            lookups_before = auth_lookups(gateways["pg"])
            measured = rounds(contenders, services, args.rounds, args.seconds)
            lookups = {
                name: count - lookups_before.get(name, 0)
                for name, count in auth_lookups(gateways["pg"]).items()
            }
        finally:
            for proc in procs:
                stop(proc)
            services.redis_server.stop()
            services.postgres.stop()
    report = {**summarise(measured), "pg_auth_store_lookups_during_rounds": lookups}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    samples = [{**asdict(m), "statements": None} for m in measured]
    args.out.write_text(json.dumps({"samples": samples, **report}, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def start_services(tmp: Path) -> Services:
    postgres = start_postgres((STATEMENTS,))
    try:
        database = postgres.create_database()
        services = Services(postgres, start_redis(tmp / "redis"), database)
    except Exception:
        postgres.stop()
        raise
    with psycopg.connect(services.url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")
    services.pin(SERVICES_CPU)
    return services


def start(
    tmp: Path, procs: list[subprocess.Popen[bytes]], services: Services
) -> tuple[list[Contender], dict[str, str]]:
    upstream_port, sqlite_port, pg_port = free_ports(3)
    conf = tmp / "nginx.conf"
    conf.write_text(FAL_CONF.format(tmp=tmp, port=upstream_port, answer=ANSWER))
    procs.append(spawn(["nginx", "-p", str(tmp), "-c", str(conf)], cpu=1, log=tmp / "ng.log"))
    upstream = f"http://127.0.0.1:{upstream_port}"
    wait_ready(upstream + "/healthz")
    common = {
        "NXS_UPSTREAM_URL": upstream,
        "NXS_ACCESS_LOG": "false",
        "NXS_METRICS_TOKEN": METRICS_TOKEN,
    }
    envs = {
        "sqlite": {
            **common,
            "NXS_DATABASE_URL": f"sqlite:///{tmp}/nxs.db",
            "NXS_SECRET_KEY_FILE": str(tmp / "nxs.secret"),
        },
        "pg": {
            **common,
            "NXS_DATABASE_URL": services.url,
            "NXS_SECRET_KEY": secrets.token_urlsafe(32),
            "NXS_REDIS_URL": services.redis_server.url,
        },
    }
    contenders: list[Contender] = []
    gateways: dict[str, str] = {}
    for backend, port in (("sqlite", sqlite_port), ("pg", pg_port)):
        env = envs[backend]
        keys = provision(env)
        serve = [sys.executable, "-m", "nxs", "serve", "--port", str(port)]
        procs.append(spawn(serve, cpu=0, log=tmp / f"nxs-{backend}.log", env=env))
        gateways[backend] = f"http://127.0.0.1:{port}"
        wait_ready(gateways[backend] + "/healthz")
        for plan in PLANS:
            url, pid = gateways[backend] + FLUX, procs[-1].pid
            contenders.append(Contender(f"{backend}-{plan}", url, pid, {"BENCH_KEY": keys[plan]}))
    return contenders, gateways


def provision(env: dict[str, str]) -> dict[str, str]:
    """The schema, an upstream key, the price, the plans and a key per plan's customer."""
    nxs(env, "db", "upgrade")
    # the upstream is nginx, not one fal account: room for every request at once
    nxs(env, "upstream", "add", "pool", "--concurrency", "1000", stdin="upstream-secret-key\n")
    nxs(env, "pricing", "set", "fal-ai/flux/dev", "request", "0.001")
    nxs(env, "plans", "create", "prepaid", "--prepaid")
    nxs(env, "plans", "create", "limited", "--rpm", NEVER_REFUSES)
    keys = {plan: customer(env, plan) for plan in PLANS}
    nxs(env, "subscriptions", "set", "prepaid", "prepaid")
    nxs(env, "credits", "grant", "prepaid", "1000000")
    nxs(env, "subscriptions", "set", "rpm", "limited")
    return keys


def rounds(
    contenders: list[Contender], services: Services, count: int, seconds: float
) -> list[Measured]:
    """Each plan's two gateways back to back (pairs rotated, and each pair's order
    flipped, from round to round): a paired ratio compares seconds-apart runs."""
    measured: list[Measured] = []
    pairs = [
        (a, b)
        for a in contenders
        for b in contenders
        if a.name == "sqlite-" + b.name.removeprefix("pg-")
    ]
    for round_no in range(count):
        shift = round_no % len(pairs)
        order = [pair[:: 1 - 2 * (round_no % 2)] for pair in pairs[shift:] + pairs[:shift]]
        for contender in [one for pair in order for one in pair]:
            wrk(contender, 64, 0.5)  # warm-up
            measured.append(measure(contender, services, seconds))
            print(f"round {round_no + 1}: {contender.name} done", file=sys.stderr)
    return measured


def measure(contender: Contender, services: Services, seconds: float) -> Measured:
    gateway = contender.url.removesuffix(FLUX)
    served, cpu = requests_served(gateway), services.cpu_seconds()
    statements, counters = services.statements(), services.redis_counters()
    writes = services.write_transactions()
    sample = wrk(contender, 64, seconds)
    cpu = services.cpu_seconds() - cpu
    writes = services.write_transactions() - writes
    statements = delta(services.statements(), statements)
    counters = {k: v - counters.get(k, 0) for k, v in services.redis_counters().items()}
    requests = requests_served(gateway) - served
    backend, plan = contender.name.split("-", 1)
    return Measured(
        sample,
        backend,
        plan,
        cpu * 1e6 / requests if requests else float("nan"),
        requests,
        statements,
        writes,
        {k: v for k, v in counters.items() if v},
    )


def delta(
    after: dict[str, tuple[int, int]], before: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    out = {}
    for query, (calls, rows) in after.items():
        was = before.get(query, (0, 0))
        if calls > was[0]:
            out[query] = (calls - was[0], rows - was[1])
    return out


def auth_lookups(gateway: str) -> dict[str, int]:
    """The gateway's auth store lookups by result (`/metrics`)."""
    found = re.findall(
        r'^nxs_auth_store_lookups_total\{result="(\w+)"\} (\d+)', metrics(gateway), re.M
    )
    return {result: int(count) for result, count in found}


def requests_served(gateway: str) -> int:
    """Every request the gateway answered so far (`nxs_requests_total`, all routes)."""
    found = re.findall(r"^nxs_requests_total\{[^}]*\} (\d+)", metrics(gateway), re.M)
    return sum(int(count) for count in found)


def metrics(gateway: str) -> str:
    scrape = urllib.request.Request(
        gateway + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(scrape, timeout=5) as response:
        text: str = response.read().decode()
    return text


def summarise(measured: list[Measured]) -> dict[str, object]:
    def of(backend: str, plan: str) -> list[Measured]:
        return [m for m in measured if m.backend == backend and m.plan == plan]

    def ratio(plan: str, value: Any) -> dict[str, float]:
        pairs = [
            value(p) / value(s) for s, p in zip(of("sqlite", plan), of("pg", plan), strict=True)
        ]
        return {"median": statistics.median(pairs), "min": min(pairs), "max": max(pairs)}

    table: dict[str, object] = {}
    for backend in BACKENDS:
        for plan in PLANS:
            runs = of(backend, plan)
            table[f"{backend}-{plan}"] = {
                "rps_c64": spread([m.sample.rps for m in runs]),
                "gateway_cpu_us_per_request": spread(
                    [m.sample.cpu_us_per_request or float("nan") for m in runs]
                ),
                "pg_redis_cpu_us_per_request": spread(
                    [m.services_cpu_us_per_request for m in runs]
                ),
                "errors": sum(m.sample.errors for m in runs),
            }
    ratios = {
        plan: {
            "rps": ratio(plan, lambda m: m.sample.rps),
            "gateway_cpu_per_request": ratio(plan, lambda m: m.sample.cpu_us_per_request),
        }
        for plan in PLANS
    }
    stores = {plan: store_calls(of("pg", plan)) for plan in PLANS}
    return {"table": table, "pg_redis_vs_sqlite": ratios, "pg_store_calls": stores}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def store_calls(runs: list[Measured]) -> dict[str, object]:
    """What the PostgreSQL + Redis rounds of one plan asked of the stores, per request."""
    requests = sum(m.requests for m in runs)
    writes = sum(m.write_transactions for m in runs)
    calls: dict[str, int] = dict.fromkeys(KINDS, 0)
    statements = ledger_rows = 0
    top: dict[str, int] = {}
    for m in runs:
        for query, (count, rows) in m.statements.items():
            statements += count
            top[query] = top.get(query, 0) + count
            for kind, pattern in KINDS.items():
                if pattern.search(query.strip()):
                    calls[kind] += count
                    ledger_rows += rows if kind == "ledger_insert" else 0
    redis_totals: dict[str, int] = {}
    for m in runs:
        for name, count in m.redis.items():
            redis_totals[name] = redis_totals.get(name, 0) + count
    busiest = sorted(top.items(), key=lambda item: -item[1])[:6]
    return {
        "requests": requests,
        "pg_statements_per_request": statements / requests,
        "pg_write_transactions_per_request": writes / requests,
        "pg_auth_selects_per_request": calls["auth_select"] / requests,
        "ledger_rows_per_request": ledger_rows / requests,
        "ledger_rows_per_write_transaction": ledger_rows / writes if writes else None,
        "ledger_rows_per_insert": ledger_rows / calls["ledger_insert"]
        if calls["ledger_insert"]
        else None,
        "busiest_statements_per_request": {q[:100]: n / requests for q, n in busiest},
        # a client's round trips: script calls (evalsha/eval) and read events (a pipeline
        # of several calls is one); commands run inside the scripts are counted apart
        "redis_scripts_per_request": sum(redis_totals.get(n, 0) for n in SCRIPT_CALLS) / requests,
        "redis_read_events_per_request": redis_totals.get("reads", 0) / requests,
        "redis_other_commands_per_request": {
            name: n / requests
            for name, n in sorted(redis_totals.items())
            if name not in (*SCRIPT_CALLS, "reads")
        },
    }


def children(parent: int) -> list[int]:
    """The processes whose parent is `parent` (the postmaster's backends and helpers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                pids.append(int(entry.name))
    return pids


def pid_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads); 0 if it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
