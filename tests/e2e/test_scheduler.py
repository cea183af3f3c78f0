"""The pool as a scheduler: runs wait in NXS for a free upstream slot (fair across
customers, 429 with Retry-After past the deadline), never more than a key's concurrency
at fal, and bad keys in the pool cost no client a failure.

One emulator per module with fal's starting concurrency of 2 per account; each test uses
account ids of its own, so the emulator's per-account peaks belong to that test.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Deployment, Gateway, eventually
from tests.support.clients import JS_DIR, run_node
from tests.support.servers import RunningServer, start_emulator

from nxs.config import Settings
from nxs.store.store import Store

RUN = "/fal-ai/flux/dev"
VIDEO = "fal-ai/kling-video/v2/master/text-to-video"
SMALL = {"image_size": {"width": 64, "height": 48}}


@pytest.fixture(scope="module")
def fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """fal with its starting concurrency (2 per account), work at a quarter of real time."""
    flags = ("--time-scale", "0.25", "--concurrency", "2")
    server = start_emulator(tmp_path_factory.mktemp("scheduler-emulator"), *flags)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def roomy_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """fal letting each account run 8 at once: only NXS keeps its keys at 2, so the
    emulator's peaks show what NXS sent."""
    flags = ("--time-scale", "0.25", "--concurrency", "8")
    server = start_emulator(tmp_path_factory.mktemp("roomy-emulator"), *flags)
    yield server
    server.stop()


Pool = Callable[..., tuple[Deployment, Gateway, dict[str, str]]]


@pytest.fixture
def pool_of(
    make_deployment: Callable[[], Deployment], fal: RunningServer, fresh_gateway: Any
) -> Pool:
    """A deployment on `fal` with the given upstream keys (concurrency 2) and customers,
    written to its store directly (quicker than a CLI process each), and its gateway."""

    def build(
        keys: dict[str, str],
        customers: tuple[str, ...] = ("alice",),
        on: RunningServer | None = None,
        **env: str,
    ) -> tuple[Deployment, Gateway, dict[str, str]]:
        deployment = make_deployment()
        deployment.emulator = on or fal
        deployment.env.update({"NXS_UPSTREAM_URL": deployment.emulator.url, **env})
        plaintexts = {}
        with Store.open(Settings.from_env(deployment.env)) as store:
            for name, secret in keys.items():
                store.add_upstream(name, secret, concurrency=2)
            for name in customers:
                store.create_customer(name)
                plaintexts[name] = store.create_key(name)[1]
        return deployment, fresh_gateway(deployment), plaintexts

    return build


def peaks(fal: RunningServer, accounts: list[str]) -> dict[str, int]:
    """The most requests each account ever had in progress at once, per the emulator."""
    found = httpx.get(f"{fal.url}/_emulator/accounts", timeout=10).json()["accounts"]
    return {name: found.get(name, {}).get("peak_in_progress", 0) for name in accounts}


def tag() -> str:
    return secrets.token_hex(4)


def queued_call(client: httpx.Client, gateway: Gateway, key: str, prompt: str) -> int:
    """Submit, poll the status until COMPLETED, fetch the result: its status code, or the
    first failing answer's."""
    headers = {"Authorization": f"Key {key}"}
    body = {"prompt": prompt, **SMALL}
    submit = client.post(f"{gateway.url}/queue{RUN}", headers=headers, json=body)
    if submit.status_code != 200:
        return submit.status_code
    status_url, result_url = submit.json()["status_url"], submit.json()["response_url"]
    while True:
        status = client.get(status_url, headers=headers)
        if status.status_code not in (200, 202):
            return status.status_code
        if status.json()["status"] == "COMPLETED":
            return client.get(result_url, headers=headers).status_code
        time.sleep(0.1)


def test_a_pool_of_four_bad_keys_and_one_good_answers_every_call(
    pool_of: Pool,
) -> None:
    t = tag()
    keys = {
        "invalid": f"invalid-{t}:s",
        "locked": f"locked-{t}:s",
        "limited": f"limited-{t}:s",
        "flaky": f"flaky-{t}:s",
        "good": f"good-{t}:s",
    }
    deployment, gateway, customers = pool_of(keys)

    def client_calls(index: int) -> list[int]:
        codes = []
        with httpx.Client(timeout=90) as client:
            for call in range(5):
                prompt = f"client {index} call {call}"
                if (index + call) % 2:
                    codes.append(queued_call(client, gateway, customers["alice"], prompt))
                else:
                    body = {"prompt": prompt, **SMALL}
                    headers = {"Authorization": f"Key {customers['alice']}"}
                    codes.append(
                        client.post(gateway.url + RUN, headers=headers, json=body).status_code
                    )
        return codes

    with ThreadPoolExecutor(8) as threads:
        codes = [code for codes in threads.map(client_calls, range(8)) for code in codes]
    assert codes == [200] * 40
    assert peaks(deployment.emulator, [f"good-{t}", f"flaky-{t}"]) == {
        f"good-{t}": 2,
        f"flaky-{t}": 2,
    }


def test_twelve_runs_on_three_keys_of_two_run_six_at_once_and_never_three_on_one(
    pool_of: Pool, roomy_fal: RunningServer
) -> None:
    t = tag()
    accounts = [f"trio-{t}-{n}" for n in range(3)]
    keys = {name: f"{name}:s" for name in accounts}
    deployment, gateway, customers = pool_of(keys, on=roomy_fal)

    async def twelve() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            headers = {"Authorization": f"Key {customers['alice']}"}
            calls = [
                client.post(gateway.url + RUN, headers=headers, json={"prompt": f"{n}", **SMALL})
                for n in range(12)
            ]
            return [response.status_code for response in await asyncio.gather(*calls)]

    assert asyncio.run(twelve()) == [200] * 12
    assert peaks(deployment.emulator, accounts) == dict.fromkeys(accounts, 2)


def test_one_customers_hundred_runs_do_not_hold_back_anothers_single_run(
    pool_of: Pool,
) -> None:
    t = tag()
    keys = {f"fair-{n}": f"fair-{t}-{n}:s" for n in range(3)}
    _, gateway, customers = pool_of(keys, ("alice", "bob"))

    async def race() -> tuple[int, int, list[int]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            finished: list[str] = []

            async def run(who: str, key: str) -> int:
                headers = {"Authorization": f"Key {key}"}
                body = {"prompt": who, **SMALL}
                response = await client.post(gateway.url + RUN, headers=headers, json=body)
                finished.append(who)
                return response.status_code

            burst = [asyncio.create_task(run("alice", customers["alice"])) for _ in range(100)]
            while waiting(gateway) < 60:  # most of alice's runs wait in NXS now
                await asyncio.sleep(0.02)
            before = len(finished)
            bob_code = await run("bob", customers["bob"])
            alice_meanwhile = len(finished) - 1 - before
            return bob_code, alice_meanwhile, list(await asyncio.gather(*burst))

    bob_code, alice_meanwhile, alice_codes = asyncio.run(race())
    assert (bob_code, alice_codes) == (200, [200] * 100)
    # Bob's run took the next free slot: while he waited and ran, alice's runs in progress
    # (six slots) and at most one more round of six ended, not her sixty-odd waiting ones.
    assert alice_meanwhile <= 12


def test_a_run_past_the_wait_deadline_gets_429_and_the_js_client_retries_to_its_image(
    pool_of: Pool,
) -> None:
    t = tag()
    deployment, gateway, customers = pool_of(
        {"only": f"deadline-{t}:s"}, NXS_RUN_WAIT_SECONDS="0.05"
    )
    with ThreadPoolExecutor(2) as threads:
        slow = [threads.submit(slow_run, gateway, customers["alice"]) for _ in range(2)]
        assert eventually(lambda: in_flight(gateway, "only") == 2, 10)
        refused = gateway.request("POST", RUN, customers["alice"], json={"prompt": "late", **SMALL})
        assert [future.result() for future in slow] == [200, 200]
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "All upstream keys are busy — retry shortly",
        "error_type": "rate_limited",
    }
    assert refused.headers["Retry-After"] == "1"
    with ThreadPoolExecutor(2) as threads:
        slow = [threads.submit(slow_run, gateway, customers["alice"]) for _ in range(2)]
        assert eventually(lambda: in_flight(gateway, "only") == 2, 10)
        image = run_node(JS_DIR / "e2e" / "scheduler-retry.mjs", gateway.url, customers["alice"])
        assert [future.result() for future in slow] == [200, 200]
    assert image == {"width": 64, "height": 48, "content_type": "image/jpeg"}
    assert peaks(deployment.emulator, [f"deadline-{t}"]) == {f"deadline-{t}": 2}


def test_a_run_whose_client_leaves_while_it_waits_never_reaches_fal(pool_of: Pool) -> None:
    account = f"leaving-{tag()}"
    deployment, gateway, customers = pool_of({"only": f"{account}:s"})
    key = customers["alice"]
    with ThreadPoolExecutor(2) as threads:
        slow = [threads.submit(slow_run, gateway, key) for _ in range(2)]
        assert eventually(lambda: in_flight(gateway, "only") == 2, 10)
        with pytest.raises(httpx.ReadTimeout):  # the client gives up while its run waits
            headers = {"Authorization": f"Key {key}"}
            httpx.post(gateway.url + RUN, headers=headers, json={"prompt": "x"}, timeout=0.2)
        assert [future.result() for future in slow] == [200, 200]
    time.sleep(0.5)  # a run still waiting would have had its slot by now
    runs = [e for e in deployment.received(account) if e["path"].startswith("/fal.run/")]
    assert (len(runs), waiting(gateway)) == (2, 0)


def slow_run(gateway: Gateway, key: str) -> int:
    """A video run: 1.2 s of fal's time (0.3 s here), holding one slot meanwhile."""
    body = {"prompt": "a slow river"}
    return gateway.request("POST", f"/{VIDEO}", key, json=body).status_code


def in_flight(gateway: Gateway, key_name: str) -> int:
    prefix = f'nxs_upstream_in_flight{{key="{key_name}"}} '
    for line in gateway.metrics().splitlines():
        if line.startswith(prefix):
            return int(float(line[len(prefix) :]))
    return 0


def waiting(gateway: Gateway) -> int:
    for line in gateway.metrics().splitlines():
        if line.startswith("nxs_run_queue_waiting "):
            return int(float(line.split()[1]))
    return 0
