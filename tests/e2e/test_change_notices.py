"""On PostgreSQL a change reaches every worker as soon as it commits (LISTEN/NOTIFY), not at
the next version poll: here the poll is every 30 s, yet a revoked key and a suspended
customer are refused by both workers of a replica within a second."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.servers import (
    RunningServer,
    eventually,
    free_port,
    run_nxs,
    start_nxs,
)

STATUS = "/fal-ai/flux/requests/00000000-0000-0000-0000-000000000000/status"  # no such id


@pytest.fixture
def replica(
    postgres: PostgresServer,
    redis_server: RedisServer,
    emulator: RunningServer,
    tmp_path: Path,
) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    name = postgres.create_database()
    env = {
        "NXS_DATABASE_URL": postgres.url(name),
        "NXS_SECRET_KEY": secrets.token_urlsafe(32),
        "NXS_REDIS_URL": redis_server.url,
        "NXS_UPSTREAM_URL": emulator.url,
        "NXS_REFRESH_SECONDS": "30",
    }
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", "2"]
    server = start_nxs(args, port=port, log_path=tmp_path / "gateway.log", env=env)
    yield server, env
    server.stop()
    postgres.drop_database(name)


def nxs(env: dict[str, str], *args: str) -> str:
    done = run_nxs(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def statuses(server: RunningServer, key: str, count: int = 20) -> dict[str, set[int]]:
    """Worker (its request-id prefix) → the statuses it answered, each call on a new
    connection so that both workers answer some."""
    seen: dict[str, set[int]] = {}
    for _ in range(count):
        answer = httpx.get(server.url + STATUS, headers={"Authorization": f"Key {key}"})
        seen.setdefault(answer.headers["x-nxs-request-id"][:8], set()).add(answer.status_code)
    return seen


def test_a_revoked_key_and_a_suspended_customer_are_refused_at_once(
    replica: tuple[RunningServer, dict[str, str]],
) -> None:
    server, env = replica
    nxs(env, "customers", "create", "acme")
    first = nxs(env, "keys", "create", "acme").strip().splitlines()
    key, key_id = first[-1], next(w for w in first[0].split() if w.startswith("key_"))
    other = nxs(env, "keys", "create", "acme").strip().splitlines()[-1]
    assert sorted(statuses(server, key).values()) == [{404}, {404}]  # both workers know it

    nxs(env, "keys", "revoke", key_id)
    assert eventually(lambda: sorted(statuses(server, key).values()) == [{401}, {401}], 1.0)

    assert sorted(statuses(server, other).values()) == [{404}, {404}]
    nxs(env, "customers", "suspend", "acme")
    assert eventually(lambda: sorted(statuses(server, other).values()) == [{402}, {402}], 1.0)
