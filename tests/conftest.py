"""Fixtures that start real things: the emulator (plain and TLS) and Redis on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from nxs.store.migrations import migrate
from nxs.store.postgres import PostgresDatabase
from tests.support.postgres_server import PostgresServer, start_postgres
from tests.support.redis_server import RedisServer, start_redis
from tests.support.servers import RunningServer, start_emulator


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the store of the e2e deployments: SQLite, or PostgreSQL + Redis (scripts/test"
        " runs the billing, tenancy, limits, failover, webhook and chores suites a second"
        " time so)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: a test of something only SQLite has, skipped under --backend postgres."
        " Kept short: test_limits_shared's `sqlite` case (limits shared through the state"
        " file beside the SQLite database, which a PostgreSQL deployment does not have; its"
        " `redis` case runs on both)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--backend") == "sqlite":
        return
    skip = pytest.mark.skip(reason="SQLite-only (see the sqlite_only marker)")
    for item in items:
        if item.get_closest_marker("sqlite_only") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A server certificate for 127.0.0.1/localhost and the CA bundle that trusts it."""
    folder = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    paths = {
        "cert": folder / "server.pem",
        "key": folder / "server.key",
        "ca": folder / "ca.pem",
    }
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(paths["cert"]), append=True)
    cert.private_key_pem.write_to_path(str(paths["key"]))
    tls_ca.cert_pem.write_to_path(str(paths["ca"]))
    return paths


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`nxs emulator` over plain HTTP (the JS client reaches it through requestMiddleware)."""
    server = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_emulator(
    tmp_path_factory: pytest.TempPathFactory, tls_files: dict[str, Path]
) -> Iterator[RunningServer]:
    """`nxs emulator` over TLS: the Python client forces https."""
    server = start_emulator(tmp_path_factory.mktemp("tls-emulator"), tls=tls_files)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A throw-away `redis-server` for the session (tests keep to their own key namespace)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this test session on a free loopback port."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    """A database migrated once, which each test's database is cloned from."""
    name = postgres.create_database()
    database = PostgresDatabase.open(postgres.url(name))
    migrate(database)
    database.close()
    return name


@pytest.fixture(scope="session")
def postgres_shared(postgres: PostgresServer, postgres_template: str) -> str:
    """One clone of the template that the storage tests share (`PostgresServer.reset`)."""
    return postgres.create_database(template=postgres_template)
