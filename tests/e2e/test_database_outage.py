"""PostgreSQL goes away under a running gateway: a call that needs the database before
anything reaches fal (a prepaid hold), and every billable call once the gateway knows the
ledger is unreachable, is refused at once with fal's 503 shape — no hang, nothing
forwarded, nothing charged; the row of a call fal answered meanwhile — a metered row, or
the settlement of a prepaid hold taken before the outage — is held and written when the
database is back; service comes back by itself."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.postgres_server import PostgresServer, start_postgres
from tests.support.redis_server import RedisServer
from tests.support.servers import (
    RunningServer,
    eventually,
    free_port,
    run_nxs,
    start_emulator,
    start_nxs,
)

SDXL = "fal-ai/fast-sdxl"
UPSTREAM = "acct-outage:secret-outage-0001"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this module's own: the test stops and restarts it."""
    server = start_postgres()
    yield server
    server.stop()


def nxs(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = run_nxs(*args, env=env, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def slow_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An emulator whose fast-sdxl run takes 2 s: long enough to stop the database under it."""
    server = start_emulator(tmp_path_factory.mktemp("slow-emulator"), "--time-scale", "4")
    yield server
    server.stop()


@pytest.fixture
def deployment(
    own_postgres: PostgresServer,
    redis_server: RedisServer,
    emulator: RunningServer,
    tmp_path: Path,
) -> Iterator[tuple[RunningServer, dict[str, str], str]]:
    yield from deploy(own_postgres, redis_server, emulator, tmp_path)


def deploy(
    own_postgres: PostgresServer, redis_server: RedisServer, emulator: RunningServer, tmp_path: Path
) -> Iterator[tuple[RunningServer, dict[str, str], str]]:
    env = {
        "NXS_DATABASE_URL": own_postgres.url(own_postgres.create_database()),
        "NXS_SECRET_KEY": secrets.token_urlsafe(32),
        "NXS_REDIS_URL": redis_server.url,
        "NXS_UPSTREAM_URL": emulator.url,
        "NXS_REFRESH_SECONDS": "0.5",
    }
    nxs(env, "upstream", "add", "main", stdin=UPSTREAM + "\n")
    nxs(env, "pricing", "set", SDXL, "image", "0.01")
    nxs(env, "plans", "create", "prepaid", "--prepaid")
    nxs(env, "customers", "create", "acme")
    nxs(env, "subscriptions", "set", "acme", "prepaid")
    nxs(env, "credits", "grant", "acme", "1")
    key = nxs(env, "keys", "create", "acme").strip().splitlines()[-1]
    port = free_port()
    server = start_nxs(
        ["serve", "--port", str(port)], port=port, log_path=tmp_path / "gw.log", env=env
    )
    yield server, env, key
    server.stop()


def run(server: RunningServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/{SDXL}",
        headers={"Authorization": f"Key {key}"},
        json={"prompt": "a harbour at dusk"},
        timeout=15,  # a hang would raise here
    )


def runs_reaching_fal(emulator: RunningServer) -> int:
    found = httpx.get(f"{emulator.url}/_emulator/received", timeout=10).json()
    entries = found["received"] if isinstance(found, dict) else found
    account = UPSTREAM.split(":")[0]
    return sum(1 for e in entries if e["account_id"] == account and e["method"] == "POST")


def test_calls_during_an_outage_are_refused_or_held_and_nothing_is_lost(
    deployment: tuple[RunningServer, dict[str, str], str],
    own_postgres: PostgresServer,
    emulator: RunningServer,
) -> None:
    server, env, prepaid_key = deployment
    nxs(env, "customers", "create", "metered")  # the default plan: no hold before fal
    metered_key = nxs(env, "keys", "create", "metered").strip().splitlines()[-1]
    assert run(server, prepaid_key).status_code == 200
    assert run(server, metered_key).status_code == 200
    forwarded = runs_reaching_fal(emulator)

    own_postgres.pause()
    try:
        answered = run(server, metered_key)  # not known to be down yet: fal answers it
        refused = [run(server, metered_key), run(server, prepaid_key), run(server, prepaid_key)]
    finally:
        own_postgres.resume()
    assert answered.status_code == 200
    assert [(r.status_code, r.json()) for r in refused] == [
        (503, {"detail": "Database unavailable", "error_type": "database_unavailable"})
    ] * 3
    assert runs_reaching_fal(emulator) == forwarded + 1

    assert eventually(lambda: run(server, prepaid_key).status_code == 200, 15)
    [balance] = json.loads(nxs(env, "credits", "show", "acme", "--json"))
    assert (balance["available"], balance["reserved"]) == ("0.98", "0.00")
    rows = json.loads(nxs(env, "usage", "--json", "--customer", "metered"))
    assert [row["status"] for row in rows] == ["settled", "settled"]  # the held row too


@pytest.fixture
def slow_deployment(
    own_postgres: PostgresServer,
    redis_server: RedisServer,
    slow_fal: RunningServer,
    tmp_path: Path,
) -> Iterator[tuple[RunningServer, dict[str, str], str]]:
    yield from deploy(own_postgres, redis_server, slow_fal, tmp_path)


def test_a_prepaid_run_fal_answers_during_an_outage_is_charged_when_the_database_returns(
    slow_deployment: tuple[RunningServer, dict[str, str], str], own_postgres: PostgresServer
) -> None:
    server, env, key = slow_deployment
    answers: list[httpx.Response] = []
    call = threading.Thread(target=lambda: answers.append(run(server, key)))
    call.start()  # held (PostgreSQL up), then 2 s at fal
    time.sleep(0.8)
    own_postgres.pause()
    try:
        call.join(timeout=15)
        assert [a.status_code for a in answers] == [200]  # fal's image, not a 503
    finally:
        own_postgres.resume()

    def settled() -> bool:
        [balance] = json.loads(nxs(env, "credits", "show", "acme", "--json"))
        return (balance["available"], balance["reserved"]) == ("0.99", "0.00")

    assert eventually(settled, 15)  # charged one image: not refunded as a stranded hold
    rows = json.loads(nxs(env, "usage", "--json", "--customer", "acme"))
    assert [(row["status"], row["cost"]) for row in rows] == [("settled", "0.01")]
