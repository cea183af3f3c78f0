"""Gateway fixtures: a real `nxs serve` on a fresh database (SQLite, or PostgreSQL + Redis
under `--backend postgres`: `database_env`) in front of the real `nxs emulator`, with
customers, keys and upstream keys created through the real CLI.
"""

from __future__ import annotations

import itertools
import json
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page
from tests.support import fake_stripe
from tests.support.browser import chromium
from tests.support.fake_stripe import FakeStripe
from tests.support.servers import RunningServer, free_port, run_nxs, start_emulator, start_nxs
from tests.support.servers import eventually as eventually

from nxs.store.database import Row, parse_url
from nxs.store.store import connect

GOOD_KEY = "acct-main:secret-main-0001"
TIME_SCALE = "0.05"
METRICS_TOKEN = "metrics-token-for-tests"  # /metrics on the customer port wants it


@dataclass(frozen=True)
class Customer:
    name: str
    key: str
    key_id: str


@dataclass
class Deployment:
    """A database plus the environment every `nxs` process of one deployment shares."""

    folder: Path
    env: dict[str, str]
    emulator: RunningServer
    counter: list[int] = field(default_factory=lambda: [0])

    def nxs(self, *args: str, stdin: str | None = None) -> str:
        """Run an admin command; returns its stdout (fails the test on a non-zero exit)."""
        done = run_nxs(*args, env=self.env, stdin=stdin)
        assert done.returncode == 0, f"nxs {' '.join(args)}: {done.stderr}"
        return done.stdout

    def customer(self, prefix: str = "cust") -> Customer:
        self.counter[0] += 1
        name = f"{prefix}-{self.counter[0]}"
        self.nxs("customers", "create", name)
        return self.new_key(name)

    def new_key(self, customer: str) -> Customer:
        lines = self.nxs("keys", "create", customer).strip().splitlines()
        key_id = next(word for word in lines[0].split() if word.startswith("key_"))
        return Customer(customer, lines[-1].strip(), key_id)

    def add_upstream(self, name: str, secret: str, weight: int = 1) -> None:
        self.nxs("upstream", "add", name, "--weight", str(weight), stdin=secret + "\n")

    def upstream_states(self) -> dict[str, str]:
        rows = json.loads(self.nxs("upstream", "list", "--json"))
        return {row["name"]: row["state"] for row in rows}

    def rows(self, sql: str, *params: Any) -> list[Row]:
        """Rows of a query on this deployment's database, whichever the backend (`?`
        placeholders; opened and closed per call, beside the running gateways)."""
        database = connect(parse_url(self.env["NXS_DATABASE_URL"]), 1)
        try:
            return database.fetch_all(sql, params)
        finally:
            database.close()

    def received(self, account: str | None = None) -> list[dict[str, Any]]:
        """What reached the emulator so far (method, path, account_id), for one account
        if given (the emulator is shared by every deployment of the session)."""
        response = httpx.get(f"{self.emulator.url}/_emulator/received", timeout=10)
        data = response.json()
        entries = list(data["received"] if isinstance(data, dict) else data)
        return [e for e in entries if account is None or e["account_id"] == account]


@dataclass
class Gateway:
    """A running `nxs serve` and an HTTP client for it."""

    server: RunningServer
    deployment: Deployment
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def request(
        self, method: str, path: str, key: str | None = None, scheme: str = "Key", **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"{scheme} {key}"
        return self.client.request(method, self.url + path, headers=headers, **kwargs)

    def metrics(self) -> str:
        """The Prometheus text of `/metrics` (with the deployment's metrics token)."""
        response = self.request("GET", "/metrics", METRICS_TOKEN, "Bearer")
        assert response.status_code == 200, response.text
        return response.text

    def customer(self, prefix: str = "cust") -> Customer:
        """A new customer with a key, once this running gateway has picked it up."""
        customer = self.deployment.customer(prefix)
        assert eventually(lambda: self.knows(customer.key)), "new key never reached the gateway"
        return customer

    def knows(self, key: str) -> bool:
        return self.request("GET", "/fal-ai/x/requests/unknown/status", key).status_code != 401

    def submit(self, endpoint: str, key: str, prompt: str = "a lighthouse") -> dict[str, Any]:
        response = self.request("POST", f"/queue/{endpoint}", key, json={"prompt": prompt})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_completed(self, app: str, request_id: str, key: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self.request("GET", f"/queue/{app}/requests/{request_id}/status", key)
            assert status.status_code in (200, 202), status.text
            if status.json()["status"] == "COMPLETED":
                return dict(status.json())
            time.sleep(0.1)
        raise AssertionError(f"request {request_id} did not complete")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The e2e emulator: time-scaled so queued requests complete in a blink, and with
    room for 8 requests per account, so a direct run is never refused with fal's
    concurrency 429 because an earlier test's queued jobs still hold the account."""
    flags = ("--time-scale", TIME_SCALE, "--concurrency", "8")
    server = start_emulator(tmp_path_factory.mktemp("e2e-emulator"), *flags)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instant_fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An emulator whose jobs end as soon as they are submitted (one per module)."""
    flags = ("--time-scale", "0", "--concurrency", "8")
    server = start_emulator(tmp_path_factory.mktemp("instant-emulator"), *flags)
    yield server
    server.stop()


Admin = Callable[..., Any]  # (method, path[, body]) → the admin API's JSON answer


def ledger_rows(admin: Admin, customer: Customer) -> list[dict[str, Any]]:
    """The customer's ledger rows, through the admin API."""
    return list(admin("GET", f"/usage/requests?customer={customer.name}"))


def closed_ledger_rows(admin: Admin, customer: Customer, count: int) -> list[dict[str, Any]]:
    """The customer's `count` ledger rows once every one is settled or refunded."""

    def closed() -> bool:
        rows = ledger_rows(admin, customer)
        return len(rows) == count and all(r["status"] in ("settled", "refunded") for r in rows)

    assert eventually(closed, 20), ledger_rows(admin, customer)
    return ledger_rows(admin, customer)


def balance_of(admin: Admin, customer: Customer) -> tuple[str, str]:
    """(available, reserved) in USD."""
    found = admin("GET", f"/customers/{customer.name}/balance")
    return found["available"], found["reserved"]


def python_client_env(gateway: Gateway, key: str, ca: Path) -> dict[str, str]:
    """The environment that points the official `fal-client` at a TLS gateway: NXS's key,
    the gateway as fal's run and queue hosts, and the CA that signed it."""
    host = f"127.0.0.1:{gateway.server.port}"
    return {
        "FAL_KEY": key,
        "FAL_RUN_HOST": host,
        "FAL_QUEUE_RUN_HOST": f"{host}/queue",
        "SSL_CERT_FILE": str(ca),
    }


def admin(gateway: Gateway, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The admin API's JSON answer, with the deployment's `NXS_ADMIN_TOKEN` (a failure
    fails the test)."""
    token = gateway.deployment.env["NXS_ADMIN_TOKEN"]
    answer = gateway.request(method, f"/admin/v1{path}", token, scheme="Bearer", json=body)
    assert answer.is_success, answer.text
    return answer.json()


def prepaid_customer(
    gateway: Gateway,
    name: str,
    upstream: str,
    *,
    price: tuple[str, str] = ("fal-ai/fast-sdxl", "image"),
    credit: str = "1",
) -> Customer:
    """Through the admin API: the upstream key `upstream`, `price` (endpoint pattern,
    unit) at 0.01, a prepaid plan and customer `name` with `credit` USD, its key known to
    `gateway`."""
    pattern, unit = price
    admin(gateway, "POST", "/upstream-keys", {"name": "main", "secret": upstream, "weight": 1})
    admin(gateway, "PUT", "/prices", {"pattern": pattern, "unit": unit, "unit_price": "0.01"})
    admin(gateway, "POST", "/plans", {"name": "prepaid", "prepaid": True})
    admin(gateway, "POST", "/customers", {"name": name})
    admin(gateway, "PUT", f"/customers/{name}/subscription", {"plan": "prepaid"})
    admin(gateway, "POST", f"/customers/{name}/credits", {"amount": credit})
    created = admin(gateway, "POST", f"/customers/{name}/keys")
    customer = Customer(name, created["key"], created["id"])
    assert eventually(lambda: gateway.knows(customer.key))
    return customer


DatabaseEnv = Callable[[Path], dict[str, str]]


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """`--backend`: "sqlite", or "postgres" (PostgreSQL + Redis)."""
    return str(request.config.getoption("--backend"))


@pytest.fixture(scope="session")
def database_env(request: pytest.FixtureRequest, backend: str) -> DatabaseEnv:
    """The store settings of a new deployment in `folder`, by `--backend`: a SQLite file,
    or a fresh PostgreSQL database (a clone of the migrated template, ~0.15 s) with a
    secret of its own and the session's Redis (a logical database of its own, 1–15 in
    turn; ids are random, so deployments sharing a number after the wrap never meet)."""
    if backend == "sqlite":
        return lambda folder: {
            "NXS_DATABASE_URL": f"sqlite:///{folder / 'nxs.db'}",
            "NXS_SECRET_KEY_FILE": str(folder / "nxs.secret"),
        }
    postgres = request.getfixturevalue("postgres")
    template = request.getfixturevalue("postgres_template")
    redis = request.getfixturevalue("redis_server")
    numbers = itertools.cycle(range(1, 16))

    def on_postgres(folder: Path) -> dict[str, str]:
        return {
            "NXS_DATABASE_URL": postgres.url(postgres.create_database(template=template)),
            "NXS_SECRET_KEY": secrets.token_urlsafe(32),
            "NXS_REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{next(numbers)}",
        }

    return on_postgres


@pytest.fixture(scope="session")
def make_deployment(
    tmp_path_factory: pytest.TempPathFactory, emulator: RunningServer, database_env: DatabaseEnv
) -> Callable[[], Deployment]:
    def make() -> Deployment:
        folder = tmp_path_factory.mktemp("deployment")
        env = {
            **database_env(folder),
            "NXS_UPSTREAM_URL": emulator.url,
            "NXS_REFRESH_SECONDS": "0.2",
            "NXS_PROBE_SECONDS": "0.5",
            "NXS_RECONCILE_AFTER_SECONDS": "3600",  # billing's own tests poll sooner
            "NXS_METRICS_TOKEN": METRICS_TOKEN,
        }
        return Deployment(folder, env, emulator)

    return make


def launch(
    deployment: Deployment,
    tls_files: dict[str, Path],
    *,
    tls: bool = False,
    workers: int = 1,
    new_session: bool = False,
) -> Gateway:
    """Start `nxs serve` for a deployment (optionally over TLS, or leading a process group
    of its own: `start_nxs`) and wait until it answers."""
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", str(workers)]
    context: ssl.SSLContext | None = None
    if tls:
        args += ["--ssl-certfile", str(tls_files["cert"]), "--ssl-keyfile", str(tls_files["key"])]
        context = ssl.create_default_context(cafile=str(tls_files["ca"]))
    server = start_nxs(
        args,
        port=port,
        log_path=deployment.folder / f"gateway-{port}.log",
        env=deployment.env,
        scheme="https" if tls else "http",
        ssl_context=context,
        new_session=new_session,
    )
    verify: ssl.SSLContext | bool = context if context is not None else True
    return Gateway(server, deployment, httpx.Client(timeout=30, verify=verify))


def _launcher(tls_files: dict[str, Path]) -> Iterator[Callable[..., Gateway]]:
    """`start(deployment, **options)` for a fixture; what it started stops at teardown."""
    running: list[Gateway] = []

    def start(deployment: Deployment, **options: Any) -> Gateway:
        running.append(launch(deployment, tls_files, **options))
        return running[-1]

    yield start
    for gateway in running:
        gateway.client.close()
        gateway.server.stop()


@pytest.fixture(scope="session")
def start_gateway(tls_files: dict[str, Path]) -> Iterator[Callable[..., Gateway]]:
    """Gateways that live for the whole session."""
    yield from _launcher(tls_files)


@pytest.fixture
def fresh_gateway(tls_files: dict[str, Path]) -> Iterator[Callable[..., Gateway]]:
    """Gateways for one test, stopped when it ends (their pool probes stop with them)."""
    yield from _launcher(tls_files)


@pytest.fixture(scope="session")
def shared(make_deployment: Callable[[], Deployment]) -> Deployment:
    """One deployment for most tests: a single good upstream key."""
    deployment = make_deployment()
    deployment.add_upstream("main", GOOD_KEY)
    return deployment


@pytest.fixture(scope="session")
def gateway(shared: Deployment, start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway(shared)


@pytest.fixture(scope="session")
def alice(gateway: Gateway) -> Customer:
    return gateway.customer("alice")


@pytest.fixture(scope="session")
def bob(gateway: Gateway) -> Customer:
    return gateway.customer("bob")


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    """A stand-in for Stripe's API (an external service) on a loopback port."""
    fake = fake_stripe.start_fake_stripe()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one per module (page tests)."""
    with chromium() as found:
        yield found


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own: no cookie outlives its test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
