"""The `nxs` command on PostgreSQL (every kind of admin command, as real subprocesses),
and `nxs db upgrade` / `nxs db status` / the refusal of a newer schema on both backends."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.servers import ROOT, RunningServer, free_port, nxs_command, start_nxs

from nxs.store.database import parse_url
from nxs.store.migrations import MIGRATIONS, Migration, migrate
from nxs.store.store import connect

FAL_KEY = "fal-id-4242:an-upstream-secret-on-postgres"
LATEST = len(MIGRATIONS)
Nxs = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=["sqlite", "postgres"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database NXS never opened: a SQLite path, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nxs.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


def runner(url: str, folder: Path) -> Nxs:
    env = {**os.environ, "NXS_DATABASE_URL": url, "NXS_SECRET_KEY_FILE": str(folder / "secret")}
    env.pop("NXS_SECRET_KEY", None)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            nxs_command(*args), input=stdin, capture_output=True, text=True, env=env, cwd=ROOT,
            timeout=60,
        )  # fmt: skip

    return run


def ok(nxs: Nxs, *args: str, stdin: str = "") -> str:
    result = nxs(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_kind_of_admin_command_works_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    nxs = runner(pg_url, tmp_path)
    ok(nxs, "customers", "create", "acme")
    created = ok(nxs, "keys", "create", "acme")
    ok(nxs, "upstream", "add", "main", stdin=FAL_KEY + "\n")
    ok(nxs, "plans", "create", "pro", "--prepaid", "--rpm", "10")
    ok(nxs, "subscriptions", "set", "acme", "pro")
    ok(nxs, "credits", "grant", "acme", "12.50")
    [customer] = json.loads(ok(nxs, "customers", "list", "--json"))
    [key] = json.loads(ok(nxs, "keys", "list", "--json"))
    [upstream] = json.loads(ok(nxs, "upstream", "list", "--json"))
    [balance] = json.loads(ok(nxs, "credits", "show", "acme", "--json"))
    assert (customer["name"], customer["status"]) == ("acme", "active")
    assert key["customer"] == "acme" and key["prefix"] in created
    assert (upstream["name"], upstream["state"]) == ("main", "active")
    assert FAL_KEY not in json.dumps(upstream)
    assert balance["available"] == "12.50"
    assert json.loads(ok(nxs, "usage", "--json")) == []


def test_postgresql_without_a_secret_is_refused_in_one_line(pg_url: str) -> None:
    env = {**os.environ, "NXS_DATABASE_URL": pg_url}
    env.pop("NXS_SECRET_KEY", None)
    env.pop("NXS_SECRET_KEY_FILE", None)
    result = subprocess.run(
        nxs_command("customers", "list"), capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == (
        "nxs: With PostgreSQL set NXS_SECRET_KEY or NXS_SECRET_KEY_FILE: there is no database"
        " folder to keep the secret key file in\n"
    )


def test_upgrade_migrates_a_new_database_then_has_nothing_to_do(
    blank_url: str, tmp_path: Path
) -> None:
    nxs = runner(blank_url, tmp_path)
    behind = nxs("db", "status")
    assert behind.returncode == 2
    assert behind.stdout == f"schema version: 0\nthis NXS knows: {LATEST}\n"
    assert behind.stderr == (
        f"nxs: database schema is version 0, this NXS needs {LATEST}: run `nxs db upgrade`\n"
    )
    versions = ", ".join(str(migration.version) for migration in MIGRATIONS)
    assert ok(nxs, "db", "upgrade") == (
        f"Upgraded the database schema to version {LATEST} (applied {versions}).\n"
    )
    assert (
        ok(nxs, "db", "upgrade") == f"The database schema is at version {LATEST}: nothing to do.\n"
    )
    assert ok(nxs, "db", "status") == (
        f"schema version: {LATEST}\nthis NXS knows: {LATEST}\nup to date\n"
    )


def test_a_newer_schema_is_refused_by_every_command(blank_url: str, tmp_path: Path) -> None:
    future = Migration(LATEST + 1, "from a newer NXS", ("CREATE TABLE future (id TEXT)",))
    database = connect(parse_url(blank_url))
    migrate(database, (*MIGRATIONS, future))
    database.close()
    nxs = runner(blank_url, tmp_path)
    refusal = (
        f"nxs: database schema is version {LATEST + 1}, this NXS knows up to {LATEST}:"
        " upgrade NXS\n"
    )
    for args in (("db", "upgrade"), ("db", "status"), ("customers", "list")):
        result = nxs(*args)
        assert (result.returncode, result.stderr) == (2, refusal), args


def test_an_installation_copied_from_sqlite_to_postgresql_serves_its_customers(
    pg_url: str,
    tmp_path: Path,
    emulator: RunningServer,
    redis_server: RedisServer,
) -> None:
    old = runner(f"sqlite:///{tmp_path / 'nxs.db'}", tmp_path)
    ok(old, "customers", "create", "acme")
    key = ok(old, "keys", "create", "acme").strip().splitlines()[-1]
    ok(old, "upstream", "add", "main", stdin="acct-moved:secret-moved\n")
    ok(old, "credits", "grant", "acme", "3.25")
    copied = ok(old, "db", "copy", "--to", pg_url)
    assert "  customers: 1\n" in copied and "  upstream_keys: 1\n" in copied

    new = runner(pg_url, tmp_path)  # the same secret file: the sealed fal key opens
    [balance] = json.loads(ok(new, "credits", "show", "acme", "--json"))
    assert balance["available"] == "3.25"
    env = {
        "NXS_DATABASE_URL": pg_url,
        "NXS_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "NXS_REDIS_URL": redis_server.url,
        "NXS_UPSTREAM_URL": emulator.url,
    }
    port = free_port()
    log = tmp_path / "gateway.log"
    gateway = start_nxs(["serve", "--port", str(port)], port=port, log_path=log, env=env)
    try:
        answer = httpx.post(
            f"{gateway.url}/fal-ai/flux/schnell",
            headers={"Authorization": f"Key {key}"},
            json={"prompt": "a moved lighthouse"},
            timeout=30,
        )
    finally:
        gateway.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["images"][0]["url"]


def test_a_copy_into_a_database_in_use_is_refused(pg_url: str, tmp_path: Path) -> None:
    old = runner(f"sqlite:///{tmp_path / 'nxs.db'}", tmp_path)
    ok(old, "customers", "create", "acme")
    ok(old, "db", "copy", "--to", pg_url)
    again = old("db", "copy", "--to", pg_url)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "nxs: The target database already has rows in customers: copy into a new, empty one"
    )
