"""A throw-away PostgreSQL cluster for the tests: `initdb` in a temporary folder, a free
loopback port, the socket in that folder, stopped and removed at the end.

PostgreSQL refuses to run as root, so as root `initdb` and `pg_ctl` run as the
`postgres` user (the folder is handed to it). The storage contract
tests share one migrated database that `reset` puts back to the template's rows before
each test (~5 ms; a `CREATE DATABASE … TEMPLATE` clone costs ~300 ms, a checkpoint and a
file copy); tests that need a blank or cloned database of their own create one.
Durability is off (`fsync=off`): the cluster dies with the test run anyway.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.support.servers import free_port

USER = "nxs"
PASSWORD = "nxs-test-password"
SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300")


class PostgresUnavailable(RuntimeError):
    """The cluster could not be created or started (the tests must fail, not skip)."""


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bin_dir: Path
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _seeds: dict[str, dict[str, list[tuple[Any, ...]]]] = field(default_factory=dict)
    start_options: str = ""  # `pg_ctl -o`, kept for `resume`

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type]

    def create_database(self, template: str | None = None) -> str:
        """A new, empty (or `template`-cloned) database; returns its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        clone = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.admin(f"CREATE DATABASE {name}{clone}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def reset(self, name: str, template: str) -> None:
        """Put database `name` (a clone of `template`) back to the template's rows: end
        every other session on it, drop tables a test created, delete every row
        (children first) and insert the template's rows again."""
        if template not in self._seeds:
            with psycopg.connect(self.url(template)) as source:
                self._seeds[template] = {
                    table: source.execute(f"SELECT * FROM {table}").fetchall()  # type: ignore[arg-type]
                    for table in _tables(source)
                }
        seeds = self._seeds[template]
        tables = list(seeds)
        with psycopg.connect(self.url(name), autocommit=True) as target, target.transaction():
            target.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            for extra in set(_tables(target)) - set(tables):
                target.execute(f"DROP TABLE {extra} CASCADE")  # type: ignore[arg-type]
            for table in reversed(tables):
                target.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
            for table in tables:
                _insert(target, table, seeds[table])
            target.execute("ALTER TABLE audit_log ALTER COLUMN id RESTART")

    def pause(self) -> None:
        """Stop the server, keeping its data (an outage, for the failure tests)."""
        _run_as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"])

    def resume(self) -> None:
        """Start it again on the same port, with the same data."""
        pg_ctl = [
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "log"),
        ]
        command = [*pg_ctl, "-o", self.start_options, "-w", "-t", "30", "start"]
        _run_as_owner(command, log=self.folder / "log")

    def stop(self) -> None:
        _run_as_owner(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.folder / "data"


def start_postgres(settings: tuple[str, ...] = ()) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port, with `SETTINGS` and then `settings`
    (e.g. the bench's `shared_preload_libraries=pg_stat_statements`);
    `PostgresUnavailable` if it can't."""
    bin_dir = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="nxs-pg-"))
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
    server = PostgresServer(folder, free_port(), bin_dir)
    _run_as_owner(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(server.data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    options = " ".join(
        [f"-p {server.port}", f"-k {folder}", "-c listen_addresses=127.0.0.1"]
        + [f"-c {setting}" for setting in (*SETTINGS, *settings)]
    )
    server.start_options = options
    server.resume()
    return server


def _bin_dir() -> Path:
    """The folder of `initdb` and `pg_ctl`: Debian keeps them under /usr/lib/postgresql."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresUnavailable("PostgreSQL is not installed (no pg_ctl): run scripts/setup")


def _run_as_owner(command: list[str], log: Path | None = None) -> None:
    """Run a PostgreSQL tool, as the `postgres` user when we are root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        raise PostgresUnavailable(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            f"{server_log}"
        )


def _tables(connection: psycopg.Connection[Any]) -> list[str]:
    """The tables of the public schema, parents before children (by foreign keys)."""
    rows = connection.execute(
        "SELECT c.relname, COALESCE(array_agg(p.relname) FILTER (WHERE p.relname IS NOT NULL),"
        " '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'"
        " LEFT JOIN pg_class p ON p.oid = k.confrelid"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY c.relname ORDER BY c.relname"
    ).fetchall()
    parents = {name: set(refs) - {name} for name, refs in rows}
    ordered: list[str] = []
    while parents:
        ready = sorted(name for name, refs in parents.items() if refs <= set(ordered))
        ordered += ready
        for name in ready:
            del parents[name]
    return ordered


def _insert(connection: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        marks = ", ".join(["%s"] * len(rows[0]))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # type: ignore[arg-type]
