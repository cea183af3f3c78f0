"""Whole lines to a file descriptor from a thread of their own, so a slow or stalled
reader (a full pipe, a paused terminal) never blocks the event loop that logs.

Writes are cut at line boundaries into pieces of at most `PIPE_BUF` bytes: on a pipe such
a write is atomic, so the lines of several worker processes sharing one stdout never
interleave mid-line. Past `limit` bytes waiting, new lines are dropped and counted.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Final

PIPE_BUF: Final = select.PIPE_BUF  # 4096 on Linux: the atomic write size of a pipe
DEFAULT_LIMIT: Final = 4 * 1024 * 1024  # bytes waiting before lines are dropped


class LineWriter:
    """A queue of byte batches (each a run of `\\n`-terminated lines) and the daemon
    thread that writes them to `fd`."""

    def __init__(self, fd: int, name: str, limit: int = DEFAULT_LIMIT) -> None:
        self._fd = fd
        self._limit = limit
        self._pending: deque[bytes] = deque()
        self._size = 0  # bytes submitted and not yet written
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0  # lines refused because the reader fell `limit` bytes behind
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, data: bytes) -> bool:
        """Queue `data` without waiting; False (and the lines counted) when dropped."""
        with self._cond:
            if self._closed or self._size + len(data) > self._limit:
                self.dropped += data.count(b"\n")
                return False
            self._pending.append(data)
            self._size += len(data)
            self._cond.notify()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every queued line to be written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._size and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return self._size == 0

    def close(self, timeout: float) -> None:
        """Write what is queued (up to `timeout` seconds), then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                data = b"".join(self._pending)
                self._pending.clear()
            ok = write_lines(self._fd, data)
            with self._cond:
                self._size -= len(data)
                if not ok:  # the descriptor is gone (EPIPE, EBADF): stop writing
                    self._closed = True
                self._cond.notify_all()


def write_lines(fd: int, data: bytes) -> bool:
    """Write `data` in `pieces`; False when the descriptor fails."""
    return all(_write_all(fd, piece) for piece in pieces(data))


def pieces(data: bytes) -> Iterator[memoryview]:
    """`data` cut into runs of whole lines of at most PIPE_BUF bytes (a longer line goes
    alone): each is one atomic write on a pipe."""
    start = 0
    while start < len(data):
        end = len(data) if len(data) - start <= PIPE_BUF else _cut(data, start)
        yield memoryview(data)[start:end]
        start = end


def _cut(data: bytes, start: int) -> int:
    """End of the longest run of whole lines from `start` within PIPE_BUF bytes (or of
    the first line when it alone is longer)."""
    end = data.rfind(b"\n", start, start + PIPE_BUF)
    if end < 0:
        end = data.find(b"\n", start + PIPE_BUF)
        return len(data) if end < 0 else end + 1
    return end + 1


def _write_all(fd: int, view: memoryview) -> bool:
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # someone set O_NONBLOCK on a shared descriptor
            select.select([], [fd], [], 1.0)
        except InterruptedError:
            continue
        except OSError:
            return False
    return True
