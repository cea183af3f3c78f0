"""The SQLite backend: limits exact across the workers of one machine without Redis.

`nxs serve --workers N` on SQLite runs N processes that share no memory, so their counters
live in a small SQLite file beside the database (`nxs.db` → `nxs.db-state`): each acquire
is one `BEGIN IMMEDIATE` transaction (the file's write lock makes it atomic across the
processes), taken only for plans that have limits. Why a file of its own: the ledger's
group commits never wait on a limit check nor the reverse, and the store's schema and
migrations stay the store's. Why not shared memory: a lock, a hash table and crash
recovery by hand, for little gain — an uncontended transaction costs tens of µs. The data
is ephemeral (WAL, `synchronous=OFF`): after a power loss every worker restarts anyway.
Times come from one clock the processes share (the wall clock unless a test passes one).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from nxs.errors import SharedStateUnavailable
from nxs.state.keys import IDLE, KeyLoad
from nxs.state.limits import Limit, Permit, Refusal, in_flight_refusal, refilled, rpm_refusal
from nxs.state.notices import Callback, deliver

BUSY_TIMEOUT_MS: Final = 250  # a lock held longer is a 503, never a hang
SETUP_TIMEOUT_MS: Final = 10_000
POLL_SECONDS: Final = 0.1  # how often a subscriber looks for a new notice
PRUNE_EVERY: Final = 1024  # acquires between sweeps of idle buckets
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS buckets (scope TEXT PRIMARY KEY, tokens REAL, stamp REAL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    scope TEXT, lease_id TEXT, expires REAL, PRIMARY KEY (scope, lease_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_id ON leases (lease_id);
CREATE TABLE IF NOT EXISTS cooldowns (key_id TEXT PRIMARY KEY, until REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS markers (name TEXT PRIMARY KEY, expires REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notices (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER,
    version INTEGER);
INSERT OR IGNORE INTO notices VALUES (1, 0, 0);
"""
KEY_SCOPE: Final = "upstream:"


def state_path(database: Path) -> Path:
    """Where the state of the store at `database` lives: beside it."""
    return database.with_name(database.name + "-state")


@dataclass
class SqliteState:
    """`State` in a SQLite file; one object (one connection) per worker process."""

    path: Path
    clock: Callable[[], float] = time.time
    _db: sqlite3.Connection = field(init=False)
    _acquires: int = field(default=0, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {SETUP_TIMEOUT_MS}")  # workers start at once
        with self._locked():
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = OFF")
        with self._transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._db.close()

    # -- limits -----------------------------------------------------------------

    async def acquire(self, limits: Sequence[Limit], lease_id: str, ttl: float) -> Permit | Refusal:
        counted = [limit for limit in limits if not limit.unlimited]
        if not counted:
            return Permit(lease_id)
        now = self.clock()
        with self._transaction():
            tokens: list[float | None] = []
            for limit in counted:
                refusal, left = self._check(limit, now)
                if refusal is not None:
                    return refusal
                tokens.append(left)
            for limit, left in zip(counted, tokens, strict=True):
                self._take(limit, left, lease_id, now + ttl, now)
        self._acquires += 1
        if self._acquires % PRUNE_EVERY == 0:
            self._prune(now)
        return Permit(lease_id)

    def _check(self, limit: Limit, now: float) -> tuple[Refusal | None, float | None]:
        """The refusal of one scope, or None and its tokens left (None: no rpm)."""
        if limit.max_in_flight is not None:
            self._db.execute(
                "DELETE FROM leases WHERE scope = ? AND expires <= ?", (limit.scope, now)
            )
            (held,) = self._db.execute(
                "SELECT COUNT(*) FROM leases WHERE scope = ?", (limit.scope,)
            ).fetchone()
            refusal = in_flight_refusal(limit.scope, held, limit.max_in_flight)
            if refusal is not None:
                return refusal, None
        if limit.rpm is None:
            return None, None
        row = self._db.execute(
            "SELECT tokens, stamp FROM buckets WHERE scope = ?", (limit.scope,)
        ).fetchone()
        left = float(limit.rpm) if row is None else refilled(row[0], row[1], now, limit.rpm)
        return rpm_refusal(limit.scope, left, limit.rpm), left

    def _take(
        self, limit: Limit, left: float | None, lease: str, expires: float, now: float
    ) -> None:
        if left is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (limit.scope, left - 1, now)
            )
        if limit.max_in_flight is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (limit.scope, lease, expires)
            )

    def _prune(self, now: float) -> None:
        """Drop buckets idle for a minute (a fresh one equals them) and expired leases."""
        with self._transaction():
            self._db.execute("DELETE FROM buckets WHERE stamp < ?", (now - 60,))
            self._db.execute("DELETE FROM leases WHERE expires <= ?", (now,))

    async def release(self, lease_id: str) -> None:
        with self._locked():
            self._db.execute(
                "DELETE FROM leases WHERE lease_id = ? AND scope NOT LIKE 'upstream:%'",
                (lease_id,),
            )

    async def renew(self, lease_id: str, ttl: float) -> bool:
        now = self.clock()
        with self._locked():
            renewed = self._db.execute(
                "UPDATE leases SET expires = ? WHERE lease_id = ? AND expires > ?",
                (now + ttl, lease_id, now),
            )
        return renewed.rowcount > 0

    # -- upstream keys ----------------------------------------------------------

    async def cool_down(self, key_id: str, seconds: float) -> None:
        with self._locked():
            self._db.execute(
                "INSERT INTO cooldowns VALUES (?, ?) ON CONFLICT (key_id) "
                "DO UPDATE SET until = max(until, excluded.until)",
                (key_id, self.clock() + seconds),
            )

    async def started(self, key_id: str, lease_id: str, ttl: float) -> None:
        with self._locked():
            self._db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?)",
                (KEY_SCOPE + key_id, lease_id, self.clock() + ttl),
            )

    async def finished(self, key_id: str, lease_id: str) -> None:
        with self._locked():
            self._db.execute(
                "DELETE FROM leases WHERE scope = ? AND lease_id = ?",
                (KEY_SCOPE + key_id, lease_id),
            )

    async def loads(self, key_ids: Sequence[str]) -> dict[str, KeyLoad]:
        now, marks = self.clock(), ",".join("?" * len(key_ids))
        found = dict.fromkeys(key_ids, IDLE)
        if not key_ids:
            return found
        scopes = [KEY_SCOPE + key_id for key_id in key_ids]
        with self._locked():
            calls = dict(
                self._db.execute(
                    f"SELECT scope, COUNT(*) FROM leases WHERE scope IN ({marks}) "
                    "AND expires > ? GROUP BY scope",
                    (*scopes, now),
                ).fetchall()
            )
            cooling = dict(
                self._db.execute(
                    f"SELECT key_id, until FROM cooldowns WHERE key_id IN ({marks}) AND until > ?",
                    (*key_ids, now),
                ).fetchall()
            )
        for key_id, scope in zip(key_ids, scopes, strict=True):
            if scope in calls or key_id in cooling:
                found[key_id] = KeyLoad(calls.get(scope, 0), cooling.get(key_id, now) - now)
        return found

    # -- idempotency markers ----------------------------------------------------

    async def claim(self, name: str, ttl: float) -> bool:
        now = self.clock()
        with self._locked():
            taken = self._db.execute(
                "INSERT INTO markers VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET expires = excluded.expires WHERE markers.expires <= ?",
                (name, now + ttl, now),
            )
        return taken.rowcount > 0

    async def drop(self, name: str) -> None:
        with self._locked():
            self._db.execute("DELETE FROM markers WHERE name = ?", (name,))

    # -- change notices ---------------------------------------------------------

    async def publish(self, version: int) -> None:
        with self._locked():
            self._db.execute(
                "UPDATE notices SET seq = seq + 1, version = ? WHERE id = 1", (version,)
            )

    async def subscribe(self, callback: Callback) -> _Poller:
        """Polls the notices row every `POLL_SECONDS` (one indexed read) in a task."""
        seen = self._notice()[0]
        task = asyncio.create_task(self._poll(callback, seen))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _Poller(task)

    async def _poll(self, callback: Callback, seen: int) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            with contextlib.suppress(SharedStateUnavailable):
                seq, version = self._notice()
                if seq != seen:
                    seen = seq
                    deliver(callback, version)

    def _notice(self) -> tuple[int, int]:
        with self._locked():
            row = self._db.execute("SELECT seq, version FROM notices WHERE id = 1").fetchone()
        return int(row[0]), int(row[1])

    # -- transactions -----------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on an exception or an early return's
        nothing-written path is the same: a refusal wrote nothing)."""
        with self._locked():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """A busy database for longer than the busy timeout is a 503, not a hang."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise SharedStateUnavailable() from exc


@dataclass
class _Poller:
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
