"""Two replicas share each upstream key's slots through Redis: between them they never send
a key more runs than its concurrency. Two `nxs serve --workers 2` on one PostgreSQL
database and one Redis, in front of an emulator that would let the account run 8 at once
(so its peak shows what NXS sent, not what fal refused).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.servers import RunningServer, free_port, start_emulator, start_nxs

ADMIN_TOKEN = "scheduler-replicas-admin-token-0123456789"
RUN = "/fal-ai/fast-sdxl"  # 0.5 s of fal's work, 0.125 s here


@pytest.fixture(scope="module")
def roomy_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    flags = ("--time-scale", "0.25", "--concurrency", "8")
    server = start_emulator(tmp_path_factory.mktemp("scheduler-replicas-fal"), *flags)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    postgres: PostgresServer,
    redis_server: RedisServer,
    roomy_fal: RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[RunningServer]]:
    folder = tmp_path_factory.mktemp("scheduler-replicas")
    env = {
        "NXS_DATABASE_URL": postgres.url(postgres.create_database()),
        "NXS_SECRET_KEY": secrets.token_urlsafe(32),
        "NXS_REDIS_URL": redis_server.url,
        "NXS_UPSTREAM_URL": roomy_fal.url,
        "NXS_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    started: list[RunningServer] = []
    try:
        for _ in range(2):  # the first migrates the blank database
            port = free_port()
            args = ["serve", "--port", str(port), "--workers", "2"]
            log = folder / f"replica-{port}.log"
            started.append(start_nxs(args, port=port, log_path=log, env=env, timeout=30))
        yield started
    finally:
        for server in started:
            server.stop()


def admin(server: RunningServer, method: str, path: str, body: dict[str, object]) -> object:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = httpx.request(method, f"{server.url}/admin/v1{path}", headers=headers, json=body)
    assert answer.is_success, answer.text
    return answer.json()


def test_two_replicas_never_send_a_key_more_runs_than_its_concurrency(
    replicas: list[RunningServer], roomy_fal: RunningServer
) -> None:
    account = f"shared-{secrets.token_hex(4)}"
    a = replicas[0]
    admin(a, "POST", "/upstream-keys", {"name": "main", "secret": f"{account}:s", "concurrency": 2})
    admin(a, "POST", "/customers", {"name": "acme"})
    key = admin(a, "POST", "/customers/acme/keys", {})["key"]  # type: ignore[index]

    def run(index: int) -> int:
        server = replicas[index % 2]  # a new connection each: both workers of each replica
        headers = {"Authorization": f"Key {key}", "Connection": "close"}
        body = {"prompt": f"run {index}"}
        return httpx.post(server.url + RUN, headers=headers, json=body, timeout=60).status_code

    with ThreadPoolExecutor(16) as threads:
        codes = list(threads.map(run, range(16)))
    assert codes == [200] * 16
    found = httpx.get(f"{roomy_fal.url}/_emulator/accounts", timeout=10).json()["accounts"]
    assert found[account]["peak_in_progress"] == 2
