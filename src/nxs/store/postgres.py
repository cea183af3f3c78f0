"""The PostgreSQL backend of `Database`: psycopg 3 over a `psycopg_pool.ConnectionPool`.

Statements autocommit on a connection borrowed from the pool for that one statement;
`transaction()` binds one connection to the calling thread until it ends, so nested
`with db.transaction()` (and every statement inside) joins it, as on SQLite. The `?`
placeholders of the portable SQL become `$1, $2, …` once per statement text (cached) and
run on psycopg's `RawCursor`, which sends them as they are: psycopg does not parse the
statement again on each call (it caches its own parse only below 50 parameters, and a
group-committed multi-row ledger INSERT has hundreds). A
PostgreSQL that is down answers `DatabaseError` within seconds (`CONNECT_TIMEOUT_SECONDS`
to connect, `CHECKOUT_TIMEOUT_SECONDS` to wait for a pooled connection, then at once
while it stays down), never a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from nxs.store.database import DatabaseError, IntegrityViolation, Params, Row, redact

CONNECT_TIMEOUT_SECONDS: Final = 3
CHECKOUT_TIMEOUT_SECONDS: Final = 3.0
FAST_FAIL_SECONDS: Final = 0.05  # the checkout timeout while the server is known to be down
DOWN_SECONDS: Final = 2.0  # how long a timed-out checkout marks the server as down
DEFAULT_POOL_SIZE: Final = 10
CACHED_STATEMENTS: Final = 2048  # distinct statement texts whose translation is kept

Connection = psycopg.Connection[Row]


class PostgresDatabase:
    """A `Database` over a pool of PostgreSQL connections (thread-safe; transactions nest)."""

    dialect = "postgresql"

    def __init__(self, pool: ConnectionPool[Connection], label: str, password: str | None) -> None:
        self._pool = pool
        self._label = label
        self._password = password
        self._local = threading.local()  # .connection and .depth of this thread's transaction
        self._sql: dict[str, str] = {}
        self._down_until = 0.0  # monotonic time until which checkouts fail fast

    @classmethod
    def open(cls, url: str, pool_size: int = DEFAULT_POOL_SIZE) -> PostgresDatabase:
        """Connect to `url` (`postgresql://user:password@host:port/db`); a server that is
        down or refuses the login is a `DatabaseError` naming the URL without its password."""
        label = redact(url)
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        database = cls(_pool(url, pool_size), label, str(password) if password else None)
        try:
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()  # clear errors
            database._pool.open(wait=True, timeout=CHECKOUT_TIMEOUT_SECONDS)
        except (psycopg.Error, PoolTimeout) as exc:
            database._pool.close()
            raise DatabaseError(f"Cannot connect to {label}: {database._scrub(exc)}") from exc
        return database

    def execute(self, sql: str, params: Params = ()) -> int:
        with self._cursor() as cursor:
            cursor.execute(self._translated_sql(sql), tuple(params))
            return cursor.rowcount

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        with self._cursor() as cursor:
            cursor.executemany(self._translated_sql(sql), [tuple(row) for row in rows])

    def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        with self._cursor() as cursor:
            cursor.execute(self._translated_sql(sql), tuple(params))
            return cursor.fetchone()

    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        with self._cursor() as cursor:
            cursor.execute(self._translated_sql(sql), tuple(params))
            return cursor.fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        local = self._local
        if getattr(local, "connection", None) is not None:
            yield  # joins the transaction this thread already holds
            return
        with self._borrowed() as connection:
            local.connection = connection
            try:
                with self._errors(), connection.transaction():
                    yield
            finally:
                local.connection = None

    def offload_checkpoints(self) -> None:
        """Nothing to do: PostgreSQL's checkpointer is a server process of its own."""

    def close(self) -> None:
        self._pool.close()

    # -- plumbing ---------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.RawCursor[Row]]:
        """A cursor on this thread's transaction, else on a connection borrowed for one
        statement (autocommit)."""
        held: Connection | None = getattr(self._local, "connection", None)
        if held is not None:
            with self._errors(), psycopg.RawCursor(held) as cursor:
                yield cursor
            return
        with (
            self._borrowed() as connection,
            self._errors(),
            psycopg.RawCursor(connection) as cursor,
        ):
            yield cursor

    @contextmanager
    def _borrowed(self) -> Iterator[Connection]:
        """A pooled connection within `CHECKOUT_TIMEOUT_SECONDS`; for `DOWN_SECONDS` after
        a checkout timed out, within `FAST_FAIL_SECONDS`: while the server is known to be
        down, each call fails at once instead of waiting seconds again (the gateway makes
        several calls per request), and the pool's background reconnection still gets the
        first free connection to the next caller."""
        down = time.monotonic() < self._down_until
        timeout = FAST_FAIL_SECONDS if down else CHECKOUT_TIMEOUT_SECONDS
        try:
            with self._pool.connection(timeout=timeout) as connection:
                self._down_until = 0.0
                yield connection
        except PoolTimeout as exc:
            self._down_until = time.monotonic() + DOWN_SECONDS
            raise DatabaseError(
                f"Database unavailable ({self._label}): no connection within {timeout:g} s"
            ) from exc

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate psycopg's exceptions into the backend-neutral ones."""
        try:
            yield
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityViolation(self._scrub(exc)) from exc
        except psycopg.Error as exc:
            raise DatabaseError(f"Database error ({self._label}): {self._scrub(exc)}") from exc

    def _scrub(self, exc: BaseException) -> str:
        """The driver's message on one line (libpq adds a tab-indented hint), no password."""
        text = " ".join(str(exc).split())
        return text.replace(self._password, "***") if self._password else text

    def _translated_sql(self, sql: str) -> str:
        translated = self._sql.get(sql)
        if translated is None:
            if len(self._sql) >= CACHED_STATEMENTS:
                self._sql.clear()
            translated = self._sql[sql] = translate_placeholders(sql)
        return translated


def translate_placeholders(sql: str) -> str:
    """`?` → `$1`, `$2`, … outside quoted strings and identifiers (a `?` inside a literal
    stays); nothing else changes (`RawCursor` reads no `%`)."""
    out: list[str] = []
    quote: str | None = None
    number = 0
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None  # a doubled quote closes and reopens: same result
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


def _pool(url: str, size: int) -> ConnectionPool[Connection]:
    return ConnectionPool(
        url,
        min_size=1,
        max_size=max(1, size),
        open=False,
        name="nxs",
        timeout=CHECKOUT_TIMEOUT_SECONDS,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        },
        configure=_configure,
    )


def _configure(connection: psycopg.Connection[Any]) -> None:
    """Values as the repositories get them from SQLite: True/False stored as 1/0, and the
    NUMERIC of `SUM(integer)` read back as an int (a float if it has a fraction)."""
    connection.adapters.register_dumper(bool, _BoolAsInt)
    connection.adapters.register_loader("numeric", _NumberLoader)


class _BoolAsInt(Dumper):
    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _NumberLoader(Loader):
    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return float(text) if "." in text or "e" in text.lower() else int(text)
