"""A throw-away PostgreSQL cluster for the tests: `initdb` in a temporary folder, a free
loopback port, the socket in that folder, stopped and removed at the end.

PostgreSQL refuses to run as root, so as root `initdb` and `pg_ctl` run as the
`postgres` user (the folder is handed to it). Each test gets a database of its own,
cloned from a migrated template (`CREATE DATABASE … TEMPLATE`: a file copy, ~10 ms).
Durability is off (`fsync=off`): the cluster dies with the test run anyway.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

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

    def stop(self) -> None:
        _run_as_owner(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.folder / "data"


def start_postgres() -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; `PostgresUnavailable` if it can't."""
    bin_dir = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="nxs-pg-"))
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
    server = PostgresServer(folder, _free_port(), bin_dir)
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
        + [f"-c {setting}" for setting in SETTINGS]
    )
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(server.data), "-l", str(folder / "log")]
    _run_as_owner([*pg_ctl, "-o", options, "-w", "-t", "30", "start"], log=folder / "log")
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
