"""Prometheus text for `/metrics`: requests by route and status, upstream latency, pool
state, and the store lookups of keys newer than the snapshot.

Hand-rolled: counters are plain dicts bumped on the hot path, rendered only when scraped.
Each worker's counters travel as a `snapshot()`; `/metrics` renders the sum over the
workers of its replica (`nxs.gateway.metrics_share`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import Any, Final

from nxs.gateway.pool import KeyPool

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATES: Final = ("active", "invalid", "suspended")
LOOKUP_RESULTS: Final = ("found", "missing", "error")  # a store query was made
LOOKUP_SKIPS: Final = ("known_miss", "rate_limited")  # answered 401 without a query


class Metrics:
    """The gateway's counters and the upstream latency histogram."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()  # (key name, outcome)
        self.key_lookups: Counter[str] = Counter()  # gateway/key_lookup.py's outcomes
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0

    def observe_request(self, route: str, status: int) -> None:
        self.requests[(route, status)] += 1

    def observe_upstream(self, key_name: str, outcome: str, seconds: float) -> None:
        self.attempts[(key_name, outcome)] += 1
        self._buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def snapshot(self, pool: KeyPool) -> dict[str, Any]:
        """This worker's counters and its calls in flight per upstream key, as JSON data."""
        return {
            "requests": [[route, status, n] for (route, status), n in self.requests.items()],
            "attempts": [[name, outcome, n] for (name, outcome), n in self.attempts.items()],
            "buckets": self._buckets,
            "latency_sum": self._latency_sum,
            "latency_count": self._latency_count,
            "key_lookups": dict(self.key_lookups),
            "in_flight": {entry.name: entry.in_flight for entry in pool.entries()},
        }

    def absorb(self, snapshot: dict[str, Any]) -> None:
        """Add another worker's counters (from `snapshot()`) to these."""
        for route, status, count in snapshot["requests"]:
            self.requests[(route, status)] += count
        for name, outcome, count in snapshot["attempts"]:
            self.attempts[(name, outcome)] += count
        self._buckets = [a + b for a, b in zip(self._buckets, snapshot["buckets"], strict=True)]
        self._latency_sum += snapshot["latency_sum"]
        self._latency_count += snapshot["latency_count"]
        self.key_lookups.update(snapshot["key_lookups"])

    def render(self, pool: KeyPool, in_flight: Counter[str] | None = None) -> bytes:
        """The Prometheus text; `in_flight` (calls per key name, summed over workers)
        replaces this worker's own counts when given."""
        lines = ["# TYPE nxs_requests_total counter"]
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'nxs_requests_total{{route="{route}",status="{status}"}} {count}')
        lines.append("# TYPE nxs_upstream_attempts_total counter")
        for (name, outcome), count in sorted(self.attempts.items()):
            labels = f'key="{_label(name)}",outcome="{outcome}"'
            lines.append(f"nxs_upstream_attempts_total{{{labels}}} {count}")
        lines.extend(self._histogram())
        lines.extend(self._lookup_lines())
        lines.extend(_pool_lines(pool, in_flight))
        return ("\n".join(lines) + "\n").encode()

    def _histogram(self) -> list[str]:
        name = "nxs_upstream_latency_seconds"
        lines = [f"# TYPE {name} histogram"]
        running = 0
        for bound, count in zip(LATENCY_BUCKETS, self._buckets, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self._latency_count}')
        lines.append(f"{name}_sum {self._latency_sum:.6f}")
        lines.append(f"{name}_count {self._latency_count}")
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
    lines.append(f"nxs_upstream_keys_usable {pool.usable()}")
    lines.append("# TYPE nxs_upstream_in_flight gauge")
    for entry in entries:
        count = entry.in_flight if in_flight is None else in_flight[entry.name]
        lines.append(f'nxs_upstream_in_flight{{key="{_label(entry.name)}"}} {count}')
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
