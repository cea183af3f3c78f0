"""Two replicas behave as one gateway: two `nxs serve --workers 2` processes on one
PostgreSQL database and one Redis, in front of one real `nxs emulator`. Every call goes
on a new connection (so the kernel spreads them over both workers of a replica) and the
calls alternate between the replicas explicitly.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Customer, balance_of, closed_ledger_rows, eventually, ledger_rows
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.servers import RunningServer, free_port, start_emulator, start_nxs

SDXL = "fal-ai/fast-sdxl"  # at --time-scale 2: 0.3 s IN_QUEUE + 1 s IN_PROGRESS
KLING = "fal-ai/kling-video/v2/master/text-to-video"  # 2.4 s of work: still running when cancelled
UPSTREAM = "acct-replicas:secret-replicas-0001"
DOOMED_UPSTREAM = "acct-doomed:secret-doomed-0001"  # the SIGKILL test's own fal account
ADMIN_TOKEN = "replicas-admin-token-0123456789abcdef"
FAL_FLAGS = ("--time-scale", "2", "--concurrency", "16")
IMAGE_PRICE = Decimal("0.01")
RATE_LIMITED = {"detail": "Rate limit exceeded", "error_type": "rate_limited"}
NO_CREDIT = {"detail": "Insufficient credit", "error_type": "insufficient_credit"}


@dataclass
class Replica:
    """One `nxs serve --workers 2`; each call on a connection of its own."""

    server: RunningServer

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        if key is not None:
            headers["Authorization"] = f"Key {key}"
        url = self.server.url + path
        return httpx.request(method, url, headers=headers, timeout=30, **kwargs)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        answer = self.call(method, f"/admin/v1{path}", headers=headers, json=body)
        assert answer.is_success, answer.text
        return answer.json()

    def submit(self, endpoint: str, key: str, prompt: str = "a lighthouse") -> httpx.Response:
        return self.call("POST", f"/queue/{endpoint}", key, json={"prompt": prompt})

    def run(self, key: str) -> httpx.Response:
        return self.call("POST", f"/{SDXL}", key, json={"prompt": "a lighthouse"})

    def status(self, app: str, request_id: str, key: str) -> httpx.Response:
        return self.call("GET", f"/queue/{app}/requests/{request_id}/status", key)

    def completed(self, app: str, request_id: str, key: str) -> bool:
        answer = self.status(app, request_id, key)
        return answer.status_code == 200 and answer.json()["status"] == "COMPLETED"


@dataclass
class Cluster:
    """Replicas A and B of one deployment; customers are set up through A's admin API."""

    a: Replica
    b: Replica
    fal: RunningServer
    upstream: str = UPSTREAM
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def both(self) -> tuple[Replica, Replica]:
        return self.a, self.b

    def alternate(self, index: int) -> Replica:
        return self.both[index % 2]

    def customer(self, prefix: str, plan: str | None = None, credit: str | None = None) -> Customer:
        """A new customer (on `plan`, with `credit` USD) and its key, created last."""
        self.counter[0] += 1
        name = f"{prefix}-{self.counter[0]}"
        self.a.admin("POST", "/customers", {"name": name})
        if plan is not None:
            self.a.admin("PUT", f"/customers/{name}/subscription", {"plan": plan})
        if credit is not None:
            self.a.admin("POST", f"/customers/{name}/credits", {"amount": credit})
        created = self.a.admin("POST", f"/customers/{name}/keys")
        return Customer(name, created["key"], created["id"])

    def fetch(self, index: int, request_id: str, key: str) -> int:
        """Poll SDXL request `request_id` on one replica until it completes, then fetch
        its result on the other (which by `index`); the result's HTTP status."""
        poller, fetcher = self.alternate(index), self.alternate(index + 1)
        assert eventually(lambda: poller.completed(SDXL, request_id, key))
        return fetcher.call("GET", f"/queue/{SDXL}/requests/{request_id}", key).status_code

    def rows(self, customer: Customer) -> list[dict[str, Any]]:
        return ledger_rows(self.b.admin, customer)

    def closed_rows(self, customer: Customer, count: int) -> list[dict[str, Any]]:
        return closed_ledger_rows(self.b.admin, customer, count)

    def balance(self, customer: Customer) -> tuple[str, str]:
        return balance_of(self.b.admin, customer)

    def runs_reaching_fal(self) -> int:
        found = httpx.get(f"{self.fal.url}/_emulator/received", timeout=10).json()
        entries = found["received"] if isinstance(found, dict) else found
        account = self.upstream.split(":")[0]
        run = f"/fal.run/{SDXL}"
        return sum(1 for e in entries if e["account_id"] == account and e["path"] == run)


def serve(env: dict[str, str], folder: Path, *, new_session: bool = False) -> Replica:
    port = free_port()
    server = start_nxs(
        ["serve", "--port", str(port), "--workers", "2"],
        port=port,
        log_path=folder / f"replica-{port}.log",
        env=env,
        timeout=30,
        new_session=new_session,
    )
    return Replica(server)


def deployment_env(
    postgres: PostgresServer, redis: RedisServer, fal: RunningServer
) -> dict[str, str]:
    """A fresh database on the session's cluster, shared by every replica started on it."""
    return {
        "NXS_DATABASE_URL": postgres.url(postgres.create_database()),
        "NXS_SECRET_KEY": secrets.token_urlsafe(32),
        "NXS_REDIS_URL": redis.url,
        "NXS_UPSTREAM_URL": fal.url,
        "NXS_ADMIN_TOKEN": ADMIN_TOKEN,
        "NXS_REFRESH_SECONDS": "1",  # the poll is only the fallback of LISTEN/NOTIFY
        "NXS_RECONCILE_AFTER_SECONDS": "3600",  # the tests poll and fetch themselves
    }


def configure(replica: Replica, upstream: str = UPSTREAM) -> None:
    """The fal key, SDXL's price per image and the plans, through the admin API."""
    key = {"name": "main", "secret": upstream, "weight": 1, "concurrency": 16}  # fal's 16 here
    replica.admin("POST", "/upstream-keys", key)
    price = {"pattern": SDXL, "unit": "image", "unit_price": str(IMAGE_PRICE)}
    replica.admin("PUT", "/prices", price)
    replica.admin("POST", "/plans", {"name": "prepaid", "prepaid": True})
    replica.admin("POST", "/plans", {"name": "rpm10", "rpm": 10})
    replica.admin("POST", "/plans", {"name": "two-at-once", "max_in_flight": 2})
    replica.admin("POST", "/plans", {"name": "three-prepaid", "prepaid": True, "max_in_flight": 3})


@pytest.fixture(scope="module")
def fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_emulator(tmp_path_factory.mktemp("replicas-emulator"), *FAL_FLAGS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(
    postgres: PostgresServer,
    redis_server: RedisServer,
    fal: RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("replicas")
    env = deployment_env(postgres, redis_server, fal)
    started: list[Replica] = []
    try:
        started.append(serve(env, folder))  # first: it migrates the blank database
        started.append(serve(env, folder))
        configure(started[0])
        yield Cluster(started[0], started[1], fal)
    finally:
        for replica in started:
            replica.server.stop()


def in_parallel(calls: Sequence[Callable[[], httpx.Response]], width: int) -> list[httpx.Response]:
    """Fire `calls` from `width` threads: the first `width` released together by a
    barrier, the others as threads free up."""
    barrier = threading.Barrier(min(width, len(calls)))

    def fire(index: int) -> httpx.Response:
        if index < width:
            barrier.wait(timeout=10)
        return calls[index]()

    with ThreadPoolExecutor(width) as pool:
        return list(pool.map(fire, range(len(calls))))


def test_a_request_submitted_through_a_is_polled_and_fetched_through_b(cluster: Cluster) -> None:
    customer = cluster.customer("crossing")
    submitted = cluster.a.submit(SDXL, customer.key)
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    assert eventually(lambda: cluster.b.completed(SDXL, request_id, customer.key))
    result = cluster.b.call("GET", f"/queue/{SDXL}/requests/{request_id}", customer.key)
    assert result.status_code == 200, result.text
    assert len(result.json()["images"]) == 1


def test_a_running_request_submitted_through_a_is_cancelled_through_b(cluster: Cluster) -> None:
    customer = cluster.customer("cancel")
    submitted = cluster.a.submit(KLING, customer.key, prompt="a long take")
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    path = f"/queue/fal-ai/kling-video/requests/{request_id}"
    cancel = cluster.b.call("PUT", f"{path}/cancel", customer.key)
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert eventually(lambda: cluster.a.completed("fal-ai/kling-video", request_id, customer.key))
    ended = cluster.a.status("fal-ai/kling-video", request_id, customer.key).json()
    assert ended["error_type"] == "client_cancelled"


def test_rpm_10_admits_exactly_10_of_40_calls_over_both_replicas(cluster: Cluster) -> None:
    customer = cluster.customer("rpm", plan="rpm10")
    # A queue submit answers in milliseconds: the 40 calls end long before the bucket
    # (10 a minute: one token every 6 s) could refill a single token.
    calls = [partial(cluster.alternate(i).submit, SDXL, customer.key) for i in range(40)]
    answers = in_parallel(calls, 8)
    assert sorted(answer.status_code for answer in answers) == [200] * 10 + [429] * 30
    refused = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.json() == RATE_LIMITED for answer in refused)
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in refused)


def test_max_in_flight_2_holds_across_both_replicas(cluster: Cluster) -> None:
    customer = cluster.customer("inflight", plan="two-at-once")
    calls = [partial(cluster.alternate(i).run, customer.key) for i in range(8)]
    answers = in_parallel(calls, 8)  # each run takes 1.3 s at fal: all 8 overlap
    assert sorted(answer.status_code for answer in answers) == [200] * 2 + [429] * 6
    assert [answer.json() for answer in answers if answer.status_code == 429] == [RATE_LIMITED] * 6
    assert [replica.run(customer.key).status_code for replica in cluster.both] == [200, 200]


def test_prepaid_credit_for_10_images_admits_exactly_10_of_100_concurrent_submits(
    cluster: Cluster,
) -> None:
    credit = 10 * IMAGE_PRICE
    customer = cluster.customer("ten", plan="prepaid", credit=str(credit))
    calls = [partial(cluster.alternate(i).submit, SDXL, customer.key) for i in range(100)]
    answers = in_parallel(calls, 25)
    assert sorted(answer.status_code for answer in answers) == [200] * 10 + [402] * 90
    assert [answer.json() for answer in answers if answer.status_code == 402] == [NO_CREDIT] * 90
    accepted = [answer.json()["request_id"] for answer in answers if answer.status_code == 200]
    fetched = [cluster.fetch(index, rid, customer.key) for index, rid in enumerate(accepted)]
    assert fetched == [200] * 10
    rows = cluster.closed_rows(customer, 10)
    assert sorted(row["request_id"] for row in rows) == sorted(accepted)
    assert sum(Decimal(row["cost"]) for row in rows) == credit
    assert cluster.balance(customer) == ("0.00", "0.00")


def test_a_key_created_through_a_works_through_b_at_once_and_revoked_through_b_fails_on_a(
    cluster: Cluster,
) -> None:
    cluster.a.admin("POST", "/customers", {"name": "keyed"})
    created = cluster.a.admin("POST", "/customers/keyed/keys")
    key = created["key"]
    answers = [cluster.b.submit(SDXL, key) for _ in range(4)]  # no wait: B looks it up
    assert [answer.status_code for answer in answers] == [200] * 4
    request_id = answers[0].json()["request_id"]
    assert eventually(lambda: cluster.a.completed(SDXL, request_id, key))
    cluster.b.admin("POST", f"/keys/{created['id']}/revoke")
    # The promise is one second (a PostgreSQL NOTIFY reloads every worker at once; the
    # 1 s poll is the fallback); 1.5 leaves room for this loaded 2-core machine's own
    # round trips, and each check is a new connection, so it reaches either worker of A.
    refused = lambda: cluster.a.status(SDXL, request_id, key).status_code == 401  # noqa: E731
    assert eventually(refused, 1.5)
    assert [cluster.a.status(SDXL, request_id, key).status_code for _ in range(6)] == [401] * 6


@pytest.fixture
def doomed(
    postgres: PostgresServer, redis_server: RedisServer, fal: RunningServer, tmp_path: Path
) -> Iterator[Cluster]:
    """Replicas of a deployment of their own: B starts first, so its reconciler holds the
    cluster's stranded-holds job, and it releases holds 3 s old (longer than its own runs
    last); A leads a process group of its own, so the test can SIGKILL it whole."""
    env = deployment_env(postgres, redis_server, fal)
    b = serve({**env, "NXS_RESERVATION_TTL_SECONDS": "3"}, tmp_path)
    try:
        configure(b, DOOMED_UPSTREAM)
        a = serve(env, tmp_path, new_session=True)
        try:
            yield Cluster(a, b, fal, DOOMED_UPSTREAM)
        finally:
            kill(a)
    finally:
        b.server.stop()


def kill(replica: Replica) -> None:
    """SIGKILL the replica's supervisor and its workers at once (its process group)."""
    if replica.server.process.poll() is None:
        os.killpg(replica.server.process.pid, signal.SIGKILL)
        replica.server.process.wait(timeout=10)


Seen = tuple[int | str, str | None]  # what a client saw: HTTP status or "cut", fal's id


def attempt(call: Callable[[], httpx.Response]) -> Seen:
    """The call's status and fal's request id, or "cut" when the connection died unanswered."""
    try:
        answer = call()
    except httpx.TransportError:
        return "cut", None
    return answer.status_code, answer.headers.get("x-fal-request-id")


def test_sigkill_of_replica_a_under_load_loses_nothing_and_b_keeps_serving(
    doomed: Cluster,
) -> None:
    cluster, a, b = doomed, doomed.a, doomed.b
    capped = cluster.customer("capped", plan="three-prepaid", credit="1")  # 3 in flight
    steady = cluster.customer("steady", plan="prepaid", credit="1")
    queued = a.submit(SDXL, capped.key)
    assert queued.status_code == 200, queued.text
    queued_id = queued.json()["request_id"]
    with ThreadPoolExecutor(5) as pool:
        on_a = [pool.submit(attempt, lambda: a.run(capped.key)) for _ in range(2)]
        on_b = [pool.submit(attempt, lambda: b.run(steady.key)) for _ in range(3)]
        assert eventually(lambda: cluster.runs_reaching_fal() == 5, 5)  # all 5 at fal
        full = b.run(capped.key).status_code  # A holds all 3 of capped's permits
        kill(a)
        seen = [f.result() for f in on_a + on_b]
    after = attempt(lambda: b.run(steady.key))
    # B sees A's queued request end: it frees A's permit (the killed runs' leases stay)
    assert eventually(lambda: b.completed(SDXL, queued_id, capped.key))
    assert b.call("GET", f"/queue/{SDXL}/requests/{queued_id}", capped.key).status_code == 200
    freed = attempt(lambda: b.run(capped.key))
    assert full == 429
    assert [status for status, _ in seen] == ["cut", "cut", 200, 200, 200]
    assert (after[0], freed[0]) == (200, 200)

    rows = cluster.closed_rows(capped, 4) + cluster.closed_rows(steady, 4)
    answered = [queued_id] + [fal_id for _, fal_id in (*seen[2:], after, freed)]
    # one row per admitted request: each answered one under its fal id, and the two runs
    # cut by the kill (their fal id never reached NXS) once each, none doubled
    assert Counter(row["request_id"] for row in rows) == Counter(
        {**dict.fromkeys(answered, 1), None: 2}
    )
    refunded = [row for row in rows if row["status"] == "refunded"]
    assert [(row["kind"], row["request_id"]) for row in refunded] == [("run", None)] * 2
    assert b.server.log().count("released stranded hold") == 2  # by B, once each
    assert {row["cost"] for row in rows if row["status"] == "settled"} == {"0.01"}
    assert cluster.balance(capped) == ("0.98", "0.00")  # the queued request and the new run
    assert cluster.balance(steady) == ("0.96", "0.00")  # 3 runs during the kill, 1 after
