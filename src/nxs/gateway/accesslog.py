"""One structured JSON line per request on stdout, written in small batches.

Each line carries the request id the client also gets (`x-nxs-request-id`), the client's
address (always an IP address: `Edge.admit` takes nothing else), the route, status,
duration, customer and upstream key *names*; never a key, never a body or query. Lines
are collected on the event loop and handed every few milliseconds to a `LineWriter`
thread: a stalled reader of stdout never blocks a request, and lines of several workers
never interleave. Flushed at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Final

from nxs.gateway.exchange import Exchange
from nxs.ops.linewriter import LineWriter

FLUSH_SECONDS: Final = 0.02
STDOUT: Final = 1
CLOSE_SECONDS: Final = 2.0  # longest wait for stdout's reader at shutdown


class AccessLog:
    """Collects access lines when enabled and writes them to a file descriptor."""

    def __init__(self, enabled: bool, fd: int = STDOUT) -> None:
        self.enabled = enabled
        self._writer = LineWriter(fd, "nxs-access-log") if enabled else None
        self._lines: list[str] = []
        self._scheduled = False

    @property
    def dropped(self) -> int:
        """Lines dropped because stdout's reader fell behind."""
        return self._writer.dropped if self._writer is not None else 0

    def write(self, ex: Exchange, seconds: float) -> None:
        if not self.enabled:
            return
        customer = json.dumps(ex.customer) if ex.customer else "null"
        upstream = json.dumps(ex.upstream) if ex.upstream else "null"
        self._lines.append(
            f'{{"ts":{time.time():.3f},"request_id":"{ex.request_id}",'
            f'"client":"{ex.client}","method":"{ex.method}",'
            f'"path":{json.dumps(ex.path)},"route":"{ex.route}","status":{ex.status},'
            f'"ms":{seconds * 1000:.2f},"customer":{customer},"upstream":{upstream}}}\n'
        )
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the collected lines to the writer thread (never waits)."""
        self._scheduled = False
        if not self._lines or self._writer is None:
            return
        data = "".join(self._lines).encode("utf-8", "replace")
        self._lines.clear()
        self._writer.submit(data)

    def close(self) -> None:
        """Flush, and give stdout's reader up to CLOSE_SECONDS to take every line."""
        self.flush()
        if self._writer is not None:
            self._writer.close(CLOSE_SECONDS)
