"""The store's database layer: URLs, migrations, and several processes at once."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.support.postgres_server import PostgresServer
from tests.support.servers import eventually

from nxs.config import Settings
from nxs.store.database import DatabaseError, parse_url
from nxs.store.migrations import MIGRATIONS, Migration, applied_versions, migrate
from nxs.store.postgres import PostgresDatabase
from nxs.store.sqlite import SqliteDatabase
from nxs.store.store import Store


def _url(folder: Path) -> str:
    return f"sqlite:///{folder / 'nxs.db'}"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///nxs.db", Path("nxs.db")),
        ("sqlite:///data/nxs.db", Path("data/nxs.db")),
        ("sqlite:////var/lib/nxs/nxs.db", Path("/var/lib/nxs/nxs.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
    ],
)
def test_sqlite_urls_name_the_documented_file(url: str, path: Path | None) -> None:
    assert parse_url(url).path == path


def test_a_postgresql_that_is_down_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://nxs:hunter2@127.0.0.1:{port}/nxs"
    with pytest.raises(
        DatabaseError, match=r"Cannot connect to postgresql://nxs:\*\*\*@"
    ) as caught:
        Store.open(Settings(database_url=url, secret_key="s"))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql://nxs:pw@db:5432/nxs", "postgres://nxs@db/nxs", "postgresql:///nxs?host=/run"],
)
def test_postgresql_urls_are_accepted(url: str) -> None:
    parsed = parse_url(url)
    assert (parsed.scheme, parsed.path, parsed.url) == ("postgresql", None, url)


def test_a_postgresql_url_without_a_database_is_refused() -> None:
    with pytest.raises(DatabaseError, match="names no database"):
        parse_url("postgresql://nxs:pw@db:5432")


@pytest.mark.parametrize("url", ["mysql://db/nxs", "nxs.db", "sqlite://host/nxs.db"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseError, match="sqlite:///"):
        parse_url(url)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent' / 'nxs.db'}"
    with pytest.raises(DatabaseError, match="does not exist"):
        Store.open(Settings(database_url=url))


def test_migrations_apply_once(tmp_path: Path) -> None:
    for _ in range(2):
        with Store.open(Settings(database_url=_url(tmp_path))):
            pass
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    assert applied_versions(database) == [m.version for m in MIGRATIONS]
    assert migrate(database) == []
    database.close()


def test_a_new_migration_is_applied_on_top(tmp_path: Path) -> None:
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    migrate(database)
    extra = Migration(
        len(MIGRATIONS) + 1, "widgets", ("CREATE TABLE widgets (id TEXT PRIMARY KEY)",)
    )
    assert migrate(database, (*MIGRATIONS, extra)) == [extra.version]
    assert database.fetch_all("SELECT id FROM widgets") == []
    database.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    extra = Migration(len(MIGRATIONS) + 1, "future", ("CREATE TABLE future (id TEXT)",))
    migrate(database, (*MIGRATIONS, extra))
    database.close()
    latest = len(MIGRATIONS)
    refusal = f"database schema is version {latest + 1}, this NXS knows up to {latest}: upgrade NXS"
    with pytest.raises(DatabaseError, match=refusal):
        Store.open(Settings(database_url=_url(tmp_path)))


def test_a_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    broken = Migration(1, "broken", ("CREATE TABLE half (id TEXT)", "NOT SQL"))
    with pytest.raises(DatabaseError):
        migrate(database, (broken,))
    assert database.fetch_one("SELECT name FROM sqlite_master WHERE name = 'half'") is None
    database.close()


def test_database_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = SqliteDatabase.open(tmp_path / "nxs.db")
    assert database.fetch_one("PRAGMA journal_mode") == {"journal_mode": "wal"}
    assert database.fetch_one("PRAGMA foreign_keys") == {"foreign_keys": 1}
    database.close()


WRITER = textwrap.dedent(
    """
    import sys
    from nxs.config import Settings
    from nxs.store.store import Store
    url, prefix = sys.argv[1], sys.argv[2]
    with Store.open(Settings(database_url=url)) as store:
        for i in range(25):
            store.create_customer(f"{prefix}-{i}")
            store.create_key(f"{prefix}-{i}")
    """
)


def test_several_processes_write_at_once(tmp_path: Path) -> None:
    url = _url(tmp_path)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{n}"], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    errors = [writer.communicate(timeout=60)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 4, errors
    with Store.open(Settings(database_url=url)) as store:
        assert len(store.list_customers()) == 100
        assert len(store.grants()) == 100


def test_a_change_by_another_process_shows_in_version_and_grants(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with Store.open(Settings(database_url=url)) as store:
        before = store.version()
        subprocess.run([sys.executable, "-c", WRITER, url, "other"], check=True, timeout=60)
        assert store.version() > before
        assert len(store.grants()) == 25


def test_offloaded_checkpoints_empty_the_wal_without_the_writers_commits(tmp_path: Path) -> None:
    db = SqliteDatabase.open(tmp_path / "nxs.db")
    db.offload_checkpoints()
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    for _ in range(300):  # ~1200 WAL pages: past SQLite's default autocheckpoint (1000)
        with db.transaction():
            db.execute_many("INSERT INTO t (body) VALUES (?)", [("x" * 1000,)] * 4)
    assert db.fetch_one("PRAGMA wal_autocheckpoint") == {"wal_autocheckpoint": 10_000}
    # the writer's commits do not checkpoint below 10,000 pages: the database file grows
    # only because the background checkpointer (every second) copies the WAL into it
    assert eventually(lambda: (tmp_path / "nxs.db").stat().st_size > 1_000_000, seconds=5.0)
    db.close()
    assert not [t for t in threading.enumerate() if t.name == "nxs-wal-checkpoint"]


def test_a_client_sees_503_without_the_operator_message() -> None:
    error = DatabaseError("Cannot connect to postgresql://nxs:***@db.internal:5432/nxs")
    assert error.status == 503
    assert error.body() == {"detail": "Database unavailable", "error_type": "database_unavailable"}
    assert "db.internal" in str(error)  # the CLI and the logs still say what failed


def test_concurrent_openers_of_a_new_postgresql_database_migrate_it_once(
    postgres: PostgresServer,
) -> None:
    name = postgres.create_database()
    openers = [PostgresDatabase.open(postgres.url(name)) for _ in range(4)]
    start = threading.Barrier(len(openers))

    def opener(database: PostgresDatabase) -> list[int]:
        start.wait()
        return migrate(database)

    try:
        with ThreadPoolExecutor(len(openers)) as pool:
            applied = sorted(pool.map(opener, openers), key=len)
        versions = applied_versions(openers[0])
    finally:
        for database in openers:
            database.close()
        postgres.drop_database(name)
    everything = [migration.version for migration in MIGRATIONS]
    assert applied == [[], [], [], everything]
    assert versions == everything
