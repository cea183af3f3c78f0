"""The database seam: a small `Database` protocol, URL parsing, and `connect(url)`.

Domain code writes portable SQL with `?` placeholders and talks only to `Database`;
each backend translates the paramstyle and its own errors in one place: SQLite, the
embedded default (`nxs.store.sqlite`), and PostgreSQL (`nxs.store.postgres`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from nxs.errors import NxsError

Row = dict[str, Any]
Params = Sequence[Any]


class DatabaseError(NxsError):
    """The database cannot be opened or used (bad URL, unreadable file, locked too long,
    PostgreSQL down). The message is for the operator (CLI, logs); a client gets 503 with
    a fixed detail that names no host or database."""

    status, error_type, detail = 503, "database_unavailable", "Database unavailable"

    def body(self) -> dict[str, Any]:
        return {"detail": type(self).detail, "error_type": self.error_type}


class IntegrityViolation(Exception):
    """A unique or foreign-key constraint refused a write; repositories map it to Conflict."""


class Database(Protocol):
    """What repositories need from a backend: portable SQL with `?` placeholders."""

    dialect: str

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per row of parameters (a batch of inserts)."""
        ...

    def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...

    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction; nested use (on the same thread) joins it. SQLite takes the
        write lock at once (`BEGIN IMMEDIATE`: one writer at a time); PostgreSQL runs READ
        COMMITTED, so a write that depends on a row's value says so in its WHERE clause
        (`available_micros >= ?`, `status IN (…)`) and checks the rowcount, or locks the
        rows it read (`claims.row_lock`)."""
        ...

    def close(self) -> None: ...

    def offload_checkpoints(self) -> None:
        """Keep journal maintenance out of this connection's commits (no-op if none)."""
        ...


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed `NXS_DATABASE_URL`: `sqlite:///relative.db`, `sqlite:////abs.db`, or
    `postgresql://user:password@host:port/db`."""

    scheme: str  # "sqlite" or "postgresql"
    path: Path | None  # None for an in-memory SQLite database and for PostgreSQL
    url: str = ""  # the PostgreSQL connection URL (with its password: never show it)


def parse_url(url: str) -> DatabaseUrl:
    """Parse a database URL; unsupported schemes and malformed URLs are `DatabaseError`."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise DatabaseError(f"Malformed database URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return _postgresql(url.strip(), parts.path)
    if scheme != "sqlite":
        raise DatabaseError(
            f"Unsupported database URL {redact(url)!r}: expected sqlite:///path/to/nxs.db"
            " or postgresql://user:password@host:port/db"
        )
    if parts.netloc or parts.query or parts.fragment:
        raise DatabaseError(
            f"Malformed SQLite URL {redact(url)!r}: use sqlite:///relative/path.db or sqlite:////abs.db"
        )
    raw = parts.path[1:] if parts.path.startswith("/") else parts.path
    if raw in ("", ":memory:"):
        return DatabaseUrl("sqlite", None)
    return DatabaseUrl("sqlite", Path(raw))


def _postgresql(url: str, path: str) -> DatabaseUrl:
    """A PostgreSQL URL must name its database (libpq reads the rest, `?host=` too)."""
    if path.strip("/") == "":
        raise DatabaseError(
            f"PostgreSQL URL {redact(url)!r} names no database:"
            " use postgresql://user:password@host:port/db"
        )
    return DatabaseUrl("postgresql", None, url)


def redact(url: str) -> str:
    """A URL with any password removed, safe to show in an error."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "password=" in parts.query.lower():  # libpq also reads ?password=
        query = "&".join(
            "password=***" if part.lower().startswith("password=") else part
            for part in parts.query.split("&")
        )
        url = parts._replace(query=query).geturl()
        parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
