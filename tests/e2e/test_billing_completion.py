"""How a queued request ends decides what it costs, and only fal's verdict decides: a
cancel fal accepted sends the reconciler to ask fal at once (refunded if the job never ran,
charged if fal's app finished it anyway); a result fal answers 4xx for the request (499
client_cancelled) settles it; an id fal no longer knows (404) keeps the hold until the
reconciler gives up and leaves it to the operator; fal's webhook settles with nobody
fetching the result, once; the reconciler refunds an unfetched ERROR and charges an
unfetched success. Real `nxs emulator` (one job at a time per account, at real speed, so a
second submit waits IN_QUEUE) and real `nxs serve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import (
    Customer,
    DatabaseEnv,
    Deployment,
    Gateway,
    balance_of,
    closed_ledger_rows,
    eventually,
    ledger_rows,
)
from tests.support.receiver import WebhookReceiver
from tests.support.servers import RunningServer, free_port, start_emulator, start_nxs

FAL_FLAGS = ("--time-scale", "1", "--concurrency", "1")

SECRET = "acct-completion:secret-completion-0001"  # the deployment's one fal key
SDXL = "fal-ai/fast-sdxl"  # 0.15 s IN_QUEUE + 0.5 s IN_PROGRESS; priced 0.01 per image here
KLING = "fal-ai/kling-video/v2/master/text-to-video"  # 1.2 s of work: the blocker
VISION = "fal-ai/realistic-vision"  # priced 0.05 per request: fal's count is in that unit
ADMIN_TOKEN = "completion-admin-token-0123456789abcdef"
CREDIT = "1"
SUBMITS = 60


@pytest.fixture(scope="module")
def fal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The emulator at real speed with one request in progress per account."""
    server = start_emulator(tmp_path_factory.mktemp("completion-emulator"), *FAL_FLAGS)
    yield server
    server.stop()


def serve(deployment: Deployment, port: int, **env: str) -> Gateway:
    server = start_nxs(
        ["serve", "--port", str(port)],
        port=port,
        log_path=deployment.folder / f"gateway-{port}.log",
        env={**deployment.env, **env},
    )
    return Gateway(server, deployment, httpx.Client(timeout=30))


@dataclass
class Site:
    """One deployment in front of one emulator, with one or more gateways on its database.
    The first relays fal's webhooks and leaves reconciling for an hour."""

    fal: RunningServer
    gateways: tuple[Gateway, ...]
    upstream: httpx.Client  # straight to `fal` with the deployment's fal key
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def relayed(self) -> Gateway:
        return self.gateways[0]

    @property
    def reconciling(self) -> Gateway:
        """The second gateway: it asks fal about an unfetched submit after 1.5 s."""
        return self.gateways[1]

    def close(self) -> None:
        self.upstream.close()
        for gateway in self.gateways:
            gateway.client.close()
            gateway.server.stop()

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.relayed.request(
            method, f"/admin/v1{path}", ADMIN_TOKEN, scheme="Bearer", json=body
        )
        assert answer.is_success, answer.text
        return answer.json()

    def prepaid(self, prefix: str) -> Customer:
        """A customer on the prepaid plan with `CREDIT` USD, known to every gateway."""
        self.counter[0] += 1
        name = f"{prefix}-{self.counter[0]}"
        self.admin("POST", "/customers", {"name": name})
        self.admin("PUT", f"/customers/{name}/subscription", {"plan": "prepaid"})
        self.admin("POST", f"/customers/{name}/credits", {"amount": CREDIT})
        created = self.admin("POST", f"/customers/{name}/keys")  # last: a gateway that
        customer = Customer(name, created["key"], created["id"])  # knows the key has the plan
        for gateway in self.gateways:
            assert eventually(lambda: gateway.knows(customer.key))  # noqa: B023
        return customer

    def rows(self, customer: Customer) -> list[dict[str, Any]]:
        return ledger_rows(self.admin, customer)

    def closed_rows(self, customer: Customer, count: int) -> list[dict[str, Any]]:
        return closed_ledger_rows(self.admin, customer, count)

    def balance(self, customer: Customer) -> tuple[str, str]:
        """(available, reserved) in USD."""
        return balance_of(self.admin, customer)

    def fal_status(self, app: str, request_id: str) -> dict[str, Any]:
        """The request's status asked straight at fal, behind NXS's back."""
        answer = self.upstream.get(f"/queue.fal.run/{app}/requests/{request_id}/status")
        assert answer.status_code in (200, 202), answer.text
        return dict(answer.json())

    def status_checks(self, app: str, request_id: str) -> int:
        """How many status GETs about `request_id` reached fal (the client's and NXS's)."""
        path = f"GET /queue.fal.run/{app}/requests/{request_id}/status"
        return self.fal_saw(request_id).count(path)

    def fal_saw(self, request_id: str) -> list[str]:
        """The status/result/cancel calls fal received about `request_id` (from anyone)."""
        found = httpx.get(f"{self.fal.url}/_emulator/received", timeout=10).json()
        entries = found["received"] if isinstance(found, dict) else found
        return [f"{e['method']} {e['path']}" for e in entries if request_id in e["path"]]

    @contextmanager
    def blocker(self) -> Iterator[str]:
        """A long job holding the account's one slot (sent straight to fal), so a submit
        waits IN_QUEUE behind it until the block ends; then it is cancelled."""
        answer = self.upstream.post(f"/queue.fal.run/{KLING}", json={"prompt": "a long take"})
        assert answer.status_code == 200, answer.text
        request_id = answer.json()["request_id"]
        running = lambda: self.fal_status("fal-ai/kling-video", request_id)["status"]  # noqa: E731
        assert eventually(lambda: running() == "IN_PROGRESS")
        try:
            yield request_id
        finally:
            self.upstream.put(f"/queue.fal.run/fal-ai/kling-video/requests/{request_id}/cancel")


def open_site(
    folder: Path, fal: RunningServer, store: dict[str, str], *gateways: dict[str, str]
) -> Site:
    """A deployment on `fal` configured through the admin API: the fal key, SDXL's price
    and the prepaid plan; one gateway per environment override in `gateways`."""
    ports = [free_port() for _ in gateways]
    env = {
        **store,  # the `--backend`'s (tests/e2e/conftest.py `database_env`)
        "NXS_UPSTREAM_URL": fal.url,
        "NXS_REFRESH_SECONDS": "0.2",
        "NXS_ADMIN_TOKEN": ADMIN_TOKEN,
        "NXS_RECONCILE_AFTER_SECONDS": "3600",
        "NXS_RECONCILE_BACKOFF_SECONDS": "0.5",
        "NXS_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
        "NXS_WEBHOOK_ALLOW_PRIVATE": "true",
        "NXS_WEBHOOK_RETRY_DELAYS": "0.5,0.5,1",
    }
    deployment = Deployment(folder, env, fal)
    pairs = zip(ports, gateways, strict=True)
    started = tuple(serve(deployment, port, **extra) for port, extra in pairs)
    upstream = httpx.Client(base_url=fal.url, headers={"Authorization": f"Key {SECRET}"})
    site = Site(fal, started, upstream)
    site.admin("POST", "/upstream-keys", {"name": "main", "secret": SECRET, "weight": 1})
    site.admin("PUT", "/prices", {"pattern": SDXL, "unit": "image", "unit_price": "0.01"})
    site.admin("PUT", "/prices", {"pattern": VISION, "unit": "request", "unit_price": "0.05"})
    site.admin("POST", "/plans", {"name": "prepaid", "prepaid": True})
    return site


@pytest.fixture(scope="module")
def site(
    fal: RunningServer, tmp_path_factory: pytest.TempPathFactory, database_env: DatabaseEnv
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("completion")
    reconciling = {"NXS_RECONCILE_AFTER_SECONDS": "1.5"}
    site = open_site(folder, fal, database_env(folder), {}, reconciling)
    yield site
    site.close()


@pytest.fixture(scope="module")
def instant(
    instant_fal: RunningServer, tmp_path_factory: pytest.TempPathFactory, database_env: DatabaseEnv
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("instant")
    site = open_site(folder, instant_fal, database_env(folder), {})
    yield site
    site.close()


def request_url(submitted: dict[str, Any], suffix: str = "") -> str:
    return f"/queue/fal-ai/fast-sdxl/requests/{submitted['request_id']}{suffix}"


def test_cancel_accepted_while_in_queue_refunds_the_whole_reservation(site: Site) -> None:
    customer, gateway = site.prepaid("queued"), site.relayed
    with site.blocker():
        submitted = gateway.submit(SDXL, customer.key)
        status = gateway.request("GET", request_url(submitted, "/status"), customer.key)
        assert status.json()["status"] == "IN_QUEUE"
        assert site.balance(customer) == ("0.99", "0.01")
        cancel = gateway.request("PUT", request_url(submitted, "/cancel"), customer.key)
        assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
        (row,) = site.closed_rows(customer, 1)  # nobody polls: NXS asked fal itself
        never_ran = site.fal_status("fal-ai/fast-sdxl", submitted["request_id"])
    assert (never_ran["error_type"], never_ran["metrics"]["inference_time"]) == (
        "client_cancelled",
        None,
    )
    assert site.status_checks("fal-ai/fast-sdxl", submitted["request_id"]) >= 2
    assert row["request_id"] == submitted["request_id"]
    assert (row["status"], row["reserved"], row["cost"]) == ("refunded", "0.01", "0.00")
    assert site.balance(customer) == ("1.00", "0.00")


def test_cancel_refused_as_already_completed_is_charged_normally(site: Site) -> None:
    customer, gateway = site.prepaid("late"), site.relayed
    with site.blocker():
        submitted = gateway.submit(SDXL, customer.key)
        status = gateway.request("GET", request_url(submitted, "/status"), customer.key)
        assert status.json()["status"] == "IN_QUEUE"  # the last state NXS saw
    rid = submitted["request_id"]
    assert eventually(lambda: site.fal_status("fal-ai/fast-sdxl", rid)["status"] == "COMPLETED")
    cancel = gateway.request("PUT", request_url(submitted, "/cancel"), customer.key)
    assert (cancel.status_code, cancel.json()) == (400, {"status": "ALREADY_COMPLETED"})
    assert [row["status"] for row in site.rows(customer)] == ["pending"]
    assert site.balance(customer) == ("0.99", "0.01")
    result = gateway.request("GET", request_url(submitted), customer.key)
    assert result.status_code == 200 and len(result.json()["images"]) == 1
    (row,) = site.closed_rows(customer, 1)
    assert (row["status"], row["units"], row["units_source"], row["cost"]) == (
        "settled",
        "1",
        "body",  # priced per image, never synced: fal's unit unknown, the result counts
        "0.01",
    )
    assert site.balance(customer) == ("0.99", "0.00")


def test_cancel_while_in_progress_refunds_once_fal_says_the_app_stopped(site: Site) -> None:
    customer, gateway = site.prepaid("running"), site.relayed
    submitted = gateway.submit(SDXL, customer.key)

    def state() -> str:
        answer = gateway.request("GET", request_url(submitted, "/status"), customer.key)
        return str(answer.json()["status"])

    assert eventually(lambda: state() == "IN_PROGRESS")
    cancel = gateway.request("PUT", request_url(submitted, "/cancel"), customer.key)
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    # fal signals the runner; the emulator's app stops: an ERROR that bills 0 units
    ended = gateway.request("GET", request_url(submitted, "/status"), customer.key).json()
    assert (ended["status"], ended["error_type"]) == ("COMPLETED", "client_cancelled")
    (row,) = site.closed_rows(customer, 1)
    assert (row["status"], row["cost"]) == ("refunded", "0.00")
    assert site.balance(customer) == ("1.00", "0.00")


def test_fal_webhook_settles_at_the_billable_units_and_a_later_fetch_charges_nothing(
    site: Site,
) -> None:
    customer, gateway = site.prepaid("hooked"), site.relayed
    with WebhookReceiver() as receiver:
        body = {"prompt": "two lighthouses", "num_images": 2}
        path = f"/queue/{SDXL}?fal_webhook={receiver.url}"
        submitted = gateway.request("POST", path, customer.key, json=body).json()
        rid = submitted["request_id"]
        assert site.balance(customer) == ("0.98", "0.02")
        (row,) = site.closed_rows(customer, 1)  # nobody polls or fetches: only the webhook
        assert eventually(lambda: bool(receiver.seen(rid)))
    assert site.fal_saw(rid) == []  # not one status or result call reached fal
    assert receiver.seen(rid)[0]["status"] == "OK"
    assert (row["status"], row["units"], row["units_source"], row["cost"]) == (
        "settled",
        "2",
        "body",
        "0.02",
    )
    assert site.balance(customer) == ("0.98", "0.00")
    for fetcher in site.gateways:  # the relaying process, and another one on the database
        result = fetcher.request("GET", request_url(submitted), customer.key)
        assert result.status_code == 200 and len(result.json()["images"]) == 2
        assert result.headers["x-fal-billable-units"] == row["units"]
    assert site.rows(customer) == [row]  # the fetches settled nothing more
    assert site.balance(customer) == ("0.98", "0.00")


def test_fal_error_webhook_is_refunded_once_nxs_reads_fals_result(site: Site) -> None:
    customer, gateway = site.prepaid("hooked-fail"), site.relayed
    with WebhookReceiver() as receiver:
        path = f"/queue/{SDXL}?fal_webhook={receiver.url}"
        body = {"prompt": "[fail] a lighthouse"}
        rid = gateway.request("POST", path, customer.key, json=body).json()["request_id"]
        assert site.balance(customer) == ("0.99", "0.01")
        (row,) = site.closed_rows(customer, 1)
        assert eventually(lambda: bool(receiver.seen(rid)))
    # the webhook names no billed units: NXS asked fal (status, then the 500 result)
    asked = site.fal_saw(rid)
    assert [line.rsplit("/", 1)[-1] for line in asked] == ["status", rid]
    assert receiver.seen(rid)[0]["status"] == "ERROR"
    assert (row["request_id"], row["status"], row["cost"]) == (rid, "refunded", "0.00")
    assert site.balance(customer) == ("1.00", "0.00")


def test_webhooks_that_beat_the_submits_ledger_write_still_settle_every_request(
    instant: Site,
) -> None:
    site = instant
    customer, gateway = site.prepaid("instant"), site.relayed
    with WebhookReceiver() as receiver:
        path = f"/queue/{SDXL}?fal_webhook={receiver.url}"
        body = {"prompt": "a dot", "image_size": {"width": 64, "height": 64}}

        def submit(_: int) -> str:  # each job ends within its own submit's round trip
            answer = gateway.request("POST", path, customer.key, json=body)
            assert answer.status_code == 200, answer.text
            return str(answer.json()["request_id"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            submitted = set(pool.map(submit, range(SUBMITS)))
        rows = site.closed_rows(customer, SUBMITS)  # nobody polls or fetches
        assert eventually(lambda: all(receiver.seen(rid) for rid in submitted))
    assert {row["request_id"] for row in rows} == submitted
    settled = {(row["status"], row["units_source"], row["cost"]) for row in rows}
    assert settled == {("settled", "body", "0.01")}
    assert site.balance(customer) == ("0.40", "0.00")


def test_reconciler_refunds_an_unfetched_error_and_charges_an_unfetched_success(
    site: Site,
) -> None:
    customer, gateway = site.prepaid("walkaway"), site.reconciling
    failed = gateway.submit(SDXL, customer.key, prompt="[fail] a broken fox")["request_id"]
    done = gateway.submit(SDXL, customer.key, prompt="a fox")["request_id"]
    assert site.balance(customer) == ("0.98", "0.02")
    rows = {row["request_id"]: row for row in site.closed_rows(customer, 2)}
    assert (rows[failed]["status"], rows[failed]["cost"]) == ("refunded", "0.00")
    assert (rows[done]["status"], rows[done]["units_source"], rows[done]["cost"]) == (
        "settled",
        "body",
        "0.01",
    )
    assert site.balance(customer) == ("0.99", "0.00")
    assert f"GET /queue.fal.run/fal-ai/fast-sdxl/requests/{done}" in site.fal_saw(done)


@pytest.mark.parametrize(
    ("prompt", "code", "settled"),
    [
        ("[fail-billed] a harbour", 422, ("settled", "1", "body", "0.05")),  # the app's own
        ("[fail] a harbour", 500, ("refunded", "0", "none", "0.00")),  # a crash bills nothing
    ],
)
def test_status_completed_with_an_error_is_priced_from_the_result_nxs_fetches(
    site: Site, prompt: str, code: int, settled: tuple[str, ...]
) -> None:
    customer, gateway = site.prepaid("errored"), site.relayed
    rid = gateway.submit(VISION, customer.key, prompt=prompt)["request_id"]
    ended = gateway.wait_completed("fal-ai/realistic-vision", rid, customer.key)
    assert ended["error"]  # all the client learns; it never fetches the result
    (row,) = site.closed_rows(customer, 1)  # NXS fetched it: fal's answer priced it
    assert (row["status"], row["units"], row["units_source"], row["cost"]) == settled
    assert f"GET /queue.fal.run/fal-ai/realistic-vision/requests/{rid}" in site.fal_saw(rid)
    result = gateway.request("GET", f"/queue/fal-ai/realistic-vision/requests/{rid}", customer.key)
    assert (result.status_code, result.headers["x-fal-billable-units"]) == (code, settled[1])
    assert site.rows(customer) == [row]  # a later fetch settles nothing more
    assert site.balance(customer) == (str(1 - Decimal(row["cost"])), "0.00")


def test_cancel_accepted_after_the_job_started_behind_our_back_is_charged_when_fal_finishes_it(
    site: Site,
) -> None:
    customer, gateway = site.prepaid("started"), site.relayed
    with site.blocker():
        submitted = gateway.submit(SDXL, customer.key, prompt="[ignore-cancel] a harbour")
        status = gateway.request("GET", request_url(submitted, "/status"), customer.key)
        assert status.json()["status"] == "IN_QUEUE"  # the last state NXS saw
    rid = submitted["request_id"]
    assert eventually(lambda: site.fal_status("fal-ai/fast-sdxl", rid)["status"] == "IN_PROGRESS")
    cancel = gateway.request("PUT", request_url(submitted, "/cancel"), customer.key)
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    (row,) = site.closed_rows(customer, 1)  # fal's app finished it anyway: fal bills it
    assert (row["status"], row["units"], row["cost"]) == ("settled", "1", "0.01")
    assert site.balance(customer) == ("0.99", "0.00")
    finished = site.fal_status("fal-ai/fast-sdxl", rid)
    assert (finished["status"], finished.get("error")) == ("COMPLETED", None)


def test_result_fal_answers_499_client_cancelled_refunds_from_that_answer_alone(
    site: Site,
) -> None:
    customer, gateway = site.prepaid("cancelled-at-fal"), site.relayed
    with site.blocker():
        submitted = gateway.submit(SDXL, customer.key)
        rid = submitted["request_id"]
        site.upstream.put(f"/queue.fal.run/fal-ai/fast-sdxl/requests/{rid}/cancel")  # not via NXS
        assert eventually(lambda: site.fal_status("fal-ai/fast-sdxl", rid)["status"] == "COMPLETED")
    assert site.balance(customer) == ("0.99", "0.01")
    result = gateway.request("GET", request_url(submitted), customer.key)
    assert (result.status_code, result.json()["error_type"]) == (499, "client_cancelled")
    assert result.headers["x-fal-billable-units"] == "0"
    (row,) = site.closed_rows(customer, 1)  # no status poll, no reconciler: the 499 settled it
    assert (row["status"], row["cost"]) == ("refunded", "0.00")
    assert site.balance(customer) == ("1.00", "0.00")


@pytest.fixture
def forgetful(
    tmp_path_factory: pytest.TempPathFactory, database_env: DatabaseEnv
) -> Iterator[Site]:
    """A deployment on its own slow emulator (a job waits 15 s IN_QUEUE), which a test may
    restart on the same port: fal then answers 404 for every id it had accepted. Its
    gateway polls 0.3 s after a submit, backs off 0.1 s, and gives up after 3 checks."""
    folder = tmp_path_factory.mktemp("forgetful")
    fal = start_emulator(folder, "--time-scale", "100", "--concurrency", "1")
    env = {
        "NXS_RECONCILE_AFTER_SECONDS": "0.3",
        "NXS_RECONCILE_BACKOFF_SECONDS": "0.1",
        "NXS_RECONCILE_MAX_CHECKS": "3",
    }
    try:
        site = open_site(folder, fal, database_env(folder), env)
    except BaseException:
        fal.stop()
        raise
    yield site
    site.close()
    site.fal.stop()


def forget_everything(site: Site) -> None:
    """Restart `site`'s emulator on the same port: it no longer knows any request id."""
    old = site.fal
    old.stop()
    args = ["emulator", "--port", str(old.port), "--time-scale", "100", "--concurrency", "1"]
    log_path = old.log_path.with_name("emulator-restarted.log")
    site.fal = start_nxs(args, port=old.port, log_path=log_path)


def test_request_fal_no_longer_knows_keeps_its_hold_until_the_operator_settles_it(
    forgetful: Site,
) -> None:
    site = forgetful
    customer, gateway = site.prepaid("forgotten"), site.relayed
    submitted = gateway.submit(SDXL, customer.key)
    rid = submitted["request_id"]
    forget_everything(site)
    lost = site.upstream.get(f"/queue.fal.run/fal-ai/fast-sdxl/requests/{rid}/status")
    assert lost.status_code == 404  # fal itself no longer knows the id
    asked = gateway.request("GET", request_url(submitted, "/status"), customer.key)
    assert asked.status_code == 404  # the client's own poll: fal's 404, relayed, refunds nothing
    before = site.status_checks("fal-ai/fast-sdxl", rid)
    gave_up = f"reconciler gave up on request {rid}"
    assert eventually(lambda: gave_up in gateway.server.log(), 20), gateway.server.log()
    assert site.status_checks("fal-ai/fast-sdxl", rid) <= before + 3  # NXS asked 3 times at most
    assert [row["status"] for row in site.rows(customer)] == ["pending"]
    assert site.balance(customer) == ("0.99", "0.01")  # held: fal may have billed it


def test_an_app_error_fal_bills_is_charged_when_only_its_error_webhook_arrives(
    site: Site,
) -> None:
    customer, gateway = site.prepaid("hooked-billed"), site.relayed
    with WebhookReceiver() as receiver:
        path = f"/queue/{VISION}?fal_webhook={receiver.url}"
        body = {"prompt": "[fail-billed] a harbour"}
        rid = gateway.request("POST", path, customer.key, json=body).json()["request_id"]
        (row,) = site.closed_rows(customer, 1)
        assert eventually(lambda: bool(receiver.seen(rid)))
    assert receiver.seen(rid)[0]["status"] == "ERROR"  # the client learns nothing else
    # fal billed it (x-fal-billable-units 1); per request, a request is one request
    assert (row["status"], row["units"], row["units_source"], row["cost"]) == (
        "settled",
        "1",
        "body",
        "0.05",
    )
    assert site.balance(customer) == ("0.95", "0.00")
