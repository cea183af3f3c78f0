"""Prometheus text for `/metrics`: requests by route and status, their duration by route
and status class, upstream attempts and latency by key and outcome, pool state, the wait
queue, the store lookups of keys newer than the snapshot, a few figures of the background
work (ledger writer, realtime sessions, dropped log lines) and `nxs_build_info`. Every
family has `# HELP` and `# TYPE` (`HELP` below); names carry base units.

Hand-rolled: counters are plain dicts bumped on the hot path, rendered only when scraped.
Each worker's counters travel as a `snapshot()`; `/metrics` renders the sum over the
workers of its replica (`nxs.gateway.metrics_share`).
"""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from nxs import __version__
from nxs.gateway.pool import KeyPool

WAIT_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATES: Final = ("active", "invalid", "suspended")
LOOKUP_RESULTS: Final = ("found", "missing", "error")  # a store query was made
LOOKUP_SKIPS: Final = ("known_miss", "rate_limited")  # answered 401 without a query
DURATION_BUCKETS: Final = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),  # runs and streams last minutes
)
STATUS_CLASSES: Final = tuple(f"{n}xx" for n in range(10))
# Figures each worker reports as it publishes (summed over workers): name → (type, help).
FIGURES: Final = {
    "nxs_realtime_sessions": ("gauge", "Realtime WebSocket sessions open now."),
    "nxs_ledger_writer_outage": (
        "gauge",
        "Workers whose ledger writer cannot reach the database (answered rows held).",
    ),
    "nxs_log_lines_dropped_total": (
        "counter",
        "Access-log lines dropped because stdout's reader fell behind.",
    ),
    "nxs_reconciler_rows_checked_total": (
        "counter",
        "Ledger rows the reconciler asked fal about.",
    ),
    "nxs_reconciler_failures_total": ("counter", "Reconciler rounds that failed."),
    "nxs_webhook_deliveries_delivered_total": ("counter", "Webhook deliveries answered 2xx."),
    "nxs_webhook_deliveries_will_retry_total": (
        "counter",
        "Webhook delivery attempts that failed and are retried later.",
    ),
    "nxs_webhook_deliveries_gave_up_total": (
        "counter",
        "Webhook deliveries given up after the last retry.",
    ),
}
HELP: Final = {
    "nxs_build_info": "The running NXS: version and Python, value 1.",
    "nxs_requests_total": "HTTP requests answered, by route and status.",
    "nxs_request_duration_seconds": "Time to answer a request, by route and status class.",
    "nxs_upstream_attempts_total": "Calls to fal, by upstream key name and outcome.",
    "nxs_upstream_latency_seconds": "Time to fal's response headers, by key and outcome.",
    "nxs_run_queue_waiting": "Runs waiting for a free upstream slot now.",
    "nxs_run_wait_seconds": "Time runs waited for a free upstream slot.",
    "nxs_auth_store_lookups_total": "Store lookups of keys newer than the snapshot.",
    "nxs_auth_lookups_skipped_total": "Unknown keys answered 401 without a store lookup.",
    "nxs_upstream_keys": "Upstream keys by state.",
    "nxs_upstream_keys_usable": "Upstream keys a call may use now.",
    "nxs_upstream_in_flight": "Calls in flight per upstream key.",
    "nxs_upstream_outstanding": "Queued requests per upstream key not yet finished at fal.",
    **{name: text for name, (_, text) in FIGURES.items()},
}


class Histograms:
    """Histograms of one family, one per label tuple: bucket counts, sum and count."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.series: dict[tuple[str, ...], list[float]] = {}  # buckets…, +Inf, sum

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0.0] * (len(self.bounds) + 2)
        series[bisect_left(self.bounds, seconds)] += 1
        series[-1] += seconds

    def absorb(self, data: list[list[Any]]) -> None:
        """Add `[[labels…], [counts…]]` pairs (from `dump`)."""
        for labels, counts in data:
            series = self.series.setdefault(tuple(labels), [0.0] * (len(self.bounds) + 2))
            for index, count in enumerate(counts):
                series[index] += count

    def dump(self) -> list[list[Any]]:
        return [[list(labels), series] for labels, series in self.series.items()]

    def lines(self, name: str, label_names: tuple[str, ...]) -> list[str]:
        lines = []
        for labels, series in sorted(self.series.items()):
            pairs = ",".join(f'{k}="{_label(v)}"' for k, v in zip(label_names, labels, strict=True))
            running = 0
            for bound, count in zip(self.bounds, series, strict=False):
                running += int(count)
                lines.append(f'{name}_bucket{{{pairs},le="{bound}"}} {running}')
            total = int(sum(series[:-1]))
            lines.append(f'{name}_bucket{{{pairs},le="+Inf"}} {total}')
            lines.append(f"{name}_sum{{{pairs}}} {series[-1]:.6f}")
            lines.append(f"{name}_count{{{pairs}}} {total}")
        return lines


class Metrics:
    """The gateway's counters and the upstream latency histogram."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()  # (key name, outcome)
        self.key_lookups: Counter[str] = Counter()  # gateway/key_lookup.py's outcomes
        self.durations = Histograms(DURATION_BUCKETS)  # (route, status class)
        self.latencies = Histograms(LATENCY_BUCKETS)  # (key name, outcome class)
        self.figures: Counter[str] = Counter()  # FIGURES, read as this worker publishes
        self.readings: list[Callable[[], dict[str, int]]] = []  # where FIGURES come from
        self.waiting = 0  # runs waiting for a free upstream slot now (gateway/scheduler.py)
        self._waits = [0] * (len(WAIT_BUCKETS) + 1)
        self._wait_sum = 0.0

    def observe_wait(self, seconds: float) -> None:
        self._waits[bisect_left(WAIT_BUCKETS, seconds)] += 1
        self._wait_sum += seconds

    def observe_request(self, route: str, status: int, seconds: float = 0.0) -> None:
        self.requests[(route, status)] += 1
        self.durations.observe((route, STATUS_CLASSES[status // 100 % 10]), seconds)

    def observe_upstream(self, key_name: str, outcome: str, seconds: float) -> None:
        self.attempts[(key_name, outcome)] += 1
        kind = f"{outcome[0]}xx" if outcome.isdigit() else outcome
        self.latencies.observe((key_name, kind), seconds)

    def snapshot(self, pool: KeyPool) -> dict[str, Any]:
        """This worker's counters and its calls in flight per upstream key, as JSON data."""
        self.read_figures()
        return {
            "requests": [[route, status, n] for (route, status), n in self.requests.items()],
            "attempts": [[name, outcome, n] for (name, outcome), n in self.attempts.items()],
            "durations": self.durations.dump(),
            "latencies": self.latencies.dump(),
            "figures": dict(self.figures),
            "key_lookups": dict(self.key_lookups),
            "in_flight": {entry.name: entry.in_flight for entry in pool.entries()},
            "waiting": self.waiting,
            "waits": self._waits,
            "wait_sum": self._wait_sum,
        }

    def read_figures(self) -> None:
        """Take this worker's FIGURES from their sources."""
        for reading in self.readings:
            for name, value in reading().items():
                self.figures[name] = value  # a reading is a total: it replaces

    def absorb(self, snapshot: dict[str, Any]) -> None:
        """Add another worker's counters (from `snapshot()`) to these."""
        for route, status, count in snapshot["requests"]:
            self.requests[(route, status)] += count
        for name, outcome, count in snapshot["attempts"]:
            self.attempts[(name, outcome)] += count
        self.durations.absorb(snapshot.get("durations", []))
        self.latencies.absorb(snapshot.get("latencies", []))
        self.figures.update(snapshot.get("figures", {}))
        self.key_lookups.update(snapshot["key_lookups"])
        if "waits" in snapshot:
            self.waiting += snapshot["waiting"]
            self._waits = [a + b for a, b in zip(self._waits, snapshot["waits"], strict=True)]
            self._wait_sum += snapshot["wait_sum"]

    def render(self, pool: KeyPool, in_flight: Counter[str] | None = None) -> bytes:
        """The Prometheus text; `in_flight` (calls per key name, summed over workers)
        replaces this worker's own counts when given."""
        lines = [
            "# TYPE nxs_build_info gauge",
            f'nxs_build_info{{version="{__version__}",python="{platform.python_version()}"}} 1',
            "# TYPE nxs_requests_total counter",
        ]
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'nxs_requests_total{{route="{route}",status="{status}"}} {count}')
        lines.append("# TYPE nxs_upstream_attempts_total counter")
        for (name, outcome), count in sorted(self.attempts.items()):
            labels = f'key="{_label(name)}",outcome="{outcome}"'
            lines.append(f"nxs_upstream_attempts_total{{{labels}}} {count}")
        lines.append("# TYPE nxs_request_duration_seconds histogram")
        lines.extend(
            self.durations.lines("nxs_request_duration_seconds", ("route", "status_class"))
        )
        lines.append("# TYPE nxs_upstream_latency_seconds histogram")
        lines.extend(self.latencies.lines("nxs_upstream_latency_seconds", ("key", "outcome")))
        lines.extend(self._wait_lines())
        lines.extend(self._lookup_lines())
        lines.extend(_pool_lines(pool, in_flight))
        lines.extend(self._figure_lines())
        return ("\n".join(_with_help(lines)) + "\n").encode()

    def _figure_lines(self) -> list[str]:
        lines = []
        for name, (kind, _) in FIGURES.items():
            lines += [f"# TYPE {name} {kind}", f"{name} {self.figures[name]:g}"]
        return lines

    def _wait_lines(self) -> list[str]:
        lines = ["# TYPE nxs_run_queue_waiting gauge", f"nxs_run_queue_waiting {self.waiting}"]
        name = "nxs_run_wait_seconds"
        lines.append(f"# TYPE {name} histogram")
        running = 0
        for bound, count in zip(WAIT_BUCKETS, self._waits, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {sum(self._waits)}')
        lines.append(f"{name}_sum {self._wait_sum:.6f}")
        lines.append(f"{name}_count {sum(self._waits)}")
        return lines

    def _lookup_lines(self) -> list[str]:
        lines = ["# TYPE nxs_auth_store_lookups_total counter"]
        for result in LOOKUP_RESULTS:
            count = self.key_lookups[result]
            lines.append(f'nxs_auth_store_lookups_total{{result="{result}"}} {count}')
        lines.append("# TYPE nxs_auth_lookups_skipped_total counter")
        for reason in LOOKUP_SKIPS:
            count = self.key_lookups[reason]
            lines.append(f'nxs_auth_lookups_skipped_total{{reason="{reason}"}} {count}')
        return lines


def _pool_lines(pool: KeyPool, in_flight: Counter[str] | None) -> list[str]:
    entries = pool.entries()
    lines = ["# TYPE nxs_upstream_keys gauge"]
    for state in STATES:
        count = sum(1 for entry in entries if entry.state == state)
        lines.append(f'nxs_upstream_keys{{state="{state}"}} {count}')
    lines.append("# TYPE nxs_upstream_keys_usable gauge")
    lines.append(f"nxs_upstream_keys_usable {pool.usable()}")
    lines.append("# TYPE nxs_upstream_in_flight gauge")
    for entry in entries:
        count = entry.in_flight if in_flight is None else in_flight[entry.name]
        lines.append(f'nxs_upstream_in_flight{{key="{_label(entry.name)}"}} {count}')
    lines.append("# TYPE nxs_upstream_outstanding gauge")  # queued at fal, not yet finished
    for entry in entries:
        lines.append(f'nxs_upstream_outstanding{{key="{_label(entry.name)}"}} {entry.outstanding}')
    return lines


def _with_help(lines: list[str]) -> list[str]:
    """`# HELP` before each `# TYPE` line (the text from `HELP`)."""
    out = []
    for line in lines:
        if line.startswith("# TYPE "):
            name = line.split()[2]
            out.append(f"# HELP {name} {HELP.get(name, name.replace('_', ' '))}")
        out.append(line)
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
