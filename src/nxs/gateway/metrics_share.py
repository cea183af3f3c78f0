"""Metrics summed over the workers of one replica: each worker writes its counters to
`<folder>/<pid>.json` every second and when it answers a scrape; `/metrics` adds up every
worker's file, so one scrape target per replica sees the whole replica (Prometheus's
convention). A dead worker's counters still count (counters never go back); its calls
in flight do not. `nxs serve` gives its workers a fresh folder (`NXS_METRICS_DIR`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Final

from nxs.gateway.metrics import Metrics
from nxs.gateway.pool import KeyPool

PUBLISH_SECONDS: Final = 1.0  # how stale another worker's counters may be in a scrape


class SharedMetrics:
    """This worker's `Metrics`, published to the replica's folder and summed when read."""

    def __init__(self, metrics: Metrics, folder: Path | None) -> None:
        self.metrics = metrics
        self._folder = folder
        self._pid = os.getpid()

    def publish(self, pool: KeyPool) -> None:
        """Write this worker's snapshot (atomically: readers never see half a file)."""
        if self._folder is None:
            return
        path = self._folder / f"{self._pid}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.metrics.snapshot(pool)))
        os.replace(temporary, path)

    def render(self, pool: KeyPool) -> bytes:
        """The Prometheus text for every worker of this replica (this one's counters fresh,
        the others' as of their last publication)."""
        if self._folder is None:
            self.metrics.read_figures()
            return self.metrics.render(pool)
        self.publish(pool)
        total = Metrics()
        in_flight: Counter[str] = Counter()
        for pid, snapshot in self._snapshots():
            total.absorb(snapshot)
            if pid == self._pid or _alive(pid):
                in_flight.update(snapshot["in_flight"])
        return total.render(pool, in_flight)

    def _snapshots(self) -> list[tuple[int, dict[str, Any]]]:
        assert self._folder is not None
        found = []
        for path in self._folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                found.append((int(path.stem), json.loads(path.read_text())))
        return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
