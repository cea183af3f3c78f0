"""One structured JSON line per request on stdout, written in small batches.

Each line carries the request id the client also gets (`x-nxs-request-id`), the route,
status, duration, customer and upstream key *names*; never a key, never a body or query.
Lines are collected and written together every few milliseconds (cheaper than `logging`
on the hot path) and flushed at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Final

from nxs.gateway.exchange import Exchange

FLUSH_SECONDS: Final = 0.02
STDOUT: Final = 1


class AccessLog:
    """Collects access lines when enabled and writes them to a file descriptor."""

    def __init__(self, enabled: bool, fd: int = STDOUT) -> None:
        self.enabled = enabled
        self._fd = fd
        self._lines: list[str] = []
        self._scheduled = False

    def write(self, ex: Exchange, seconds: float) -> None:
        if not self.enabled:
            return
        customer = json.dumps(ex.customer) if ex.customer else "null"
        upstream = json.dumps(ex.upstream) if ex.upstream else "null"
        self._lines.append(
            f'{{"ts":{time.time():.3f},"request_id":"{ex.request_id}","method":"{ex.method}",'
            f'"path":{json.dumps(ex.path)},"route":"{ex.route}","status":{ex.status},'
            f'"ms":{seconds * 1000:.2f},"customer":{customer},"upstream":{upstream}}}\n'
        )
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        data = "".join(self._lines).encode("utf-8", "replace")
        self._lines.clear()
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except BlockingIOError:
            pass  # a stalled log reader never blocks the gateway: the rest is dropped
        except OSError:
            self.enabled = False
