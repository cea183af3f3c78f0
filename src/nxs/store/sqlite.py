"""The SQLite backend of `Database`: stdlib sqlite3, WAL, busy timeout, foreign keys.

One connection per process, shared by threads under a lock. Statements autocommit;
`transaction()` takes the write lock at once (`BEGIN IMMEDIATE`) so several processes
(gateway workers, the CLI) never deadlock upgrading a read lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nxs.store.database import DatabaseError, IntegrityViolation, Params, Row

BUSY_TIMEOUT_SECONDS = 10.0
CHECKPOINT_SECONDS = 1.0  # how often the gateway's WAL is checkpointed (offload_checkpoints)
BACKSTOP_PAGES = 10_000  # ~40 MB: the commits checkpoint only if the thread falls behind


class SqliteDatabase:
    """A `Database` over one sqlite3 connection (thread-safe; transactions may nest)."""

    dialect = "sqlite"

    def __init__(
        self, connection: sqlite3.Connection, label: str, busy_seconds: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self._connection = connection
        self._label = label
        self._busy_seconds = busy_seconds
        self._lock = threading.RLock()
        self._depth = 0
        self._checkpointer: _Checkpointer | None = None

    @classmethod
    def open(cls, path: Path | None, busy_seconds: float = BUSY_TIMEOUT_SECONDS) -> SqliteDatabase:
        """Open (creating if needed) the file at `path`, or an in-memory database; a write
        waits up to `busy_seconds` for another process's lock, then fails."""
        label = ":memory:" if path is None else str(path)
        if path is not None and not path.parent.is_dir():
            raise DatabaseError(
                f"Cannot open database {label}: directory {path.parent} does not exist"
            )
        if path is not None:
            _create_private(path)
        try:
            connection = sqlite3.connect(
                label, timeout=busy_seconds, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise DatabaseError(f"Cannot open database {label}: {exc}") from exc
        connection.row_factory = _dict_row
        database = cls(connection, label, busy_seconds)
        try:
            database._configure(in_memory=path is None)
        except DatabaseError:
            connection.close()
            raise
        return database

    def _configure(self, *, in_memory: bool) -> None:
        self.execute(f"PRAGMA busy_timeout = {int(self._busy_seconds * 1000)}")
        self.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            self._enable_wal()
        self.execute("PRAGMA synchronous = NORMAL")

    def _enable_wal(self) -> None:
        """Switch to WAL; a concurrent opener may hold the lock for a moment, so retry."""
        deadline = time.monotonic() + max(self._busy_seconds, BUSY_TIMEOUT_SECONDS)
        while True:
            try:
                row = self._connection.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise DatabaseError(f"Cannot open database {self._label}: {exc}") from exc
                time.sleep(0.02)
                continue
            if row and str(row["journal_mode"]).lower() == "wal":
                return
            raise DatabaseError(f"Cannot switch database {self._label} to WAL mode")

    def execute(self, sql: str, params: Params = ()) -> int:
        with self._lock:  # the hot path (ledger writes): no context-manager generator
            try:
                return self._connection.execute(sql, tuple(params)).rowcount
            except sqlite3.Error as exc:
                raise self._translated(exc) from exc

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        with self._lock:
            try:
                self._connection.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise self._translated(exc) from exc

    def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        with self._lock, self._errors():
            row: Row | None = self._connection.execute(sql, tuple(params)).fetchone()
            return row

    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock, self._errors():
            return list(self._connection.execute(sql, tuple(params)).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                yield
                return
            self.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                self.execute("COMMIT")
            except BaseException:
                self._connection.rollback()
                raise
            finally:
                self._depth = 0

    def offload_checkpoints(self) -> None:
        """Checkpoint the WAL from a thread with a connection of its own instead of inside
        this connection's commits: the gateway commits on its event loop, and a checkpoint
        (copying ~1000 pages, then fsync) held every request for ~3 ms. The commits keep
        a far threshold (`BACKSTOP_PAGES`): a PASSIVE checkpoint that keeps meeting new
        commits never lets the WAL restart, so without it the WAL would grow for ever.
        """
        if self._label == ":memory:" or self._checkpointer is not None:
            return
        connection = sqlite3.connect(
            self._label, timeout=0.1, isolation_level=None, check_same_thread=False
        )
        self.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        self._checkpointer = _Checkpointer(connection, CHECKPOINT_SECONDS)
        self._checkpointer.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._connection.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate sqlite3's exceptions into the backend-neutral ones."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translated(exc) from exc

    def _translated(self, exc: sqlite3.Error) -> Exception:
        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityViolation(str(exc))
        return DatabaseError(f"Database error ({self._label}): {exc}")


class _Checkpointer(threading.Thread):
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` every `every` seconds on its own connection
    (PASSIVE never waits for readers or writers; a busy database is tried next time)."""

    def __init__(self, connection: sqlite3.Connection, every: float) -> None:
        super().__init__(name="nxs-wal-checkpoint", daemon=True)
        self._connection, self._every = connection, every
        self._stopping = threading.Event()

    def run(self) -> None:
        connection = self._connection
        try:
            while not self._stopping.wait(self._every):
                with contextlib.suppress(sqlite3.Error):  # busy or locked: next time
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _create_private(path: Path) -> None:
    """Create a missing database file readable by its owner only (WAL files follow it)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseError(f"Cannot create database {path}: {exc.strerror}") from exc


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}
