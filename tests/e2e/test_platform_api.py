"""fal's Platform API (`/v1/…`) answered by a real gateway for its customers: prices at
the plan's multiplier, estimates, usage, billing events, requests, balance, keys — each
customer sees only its own, another's ids answer 404, bad input is fal's 400."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import GOOD_KEY, Customer, Deployment, Gateway, eventually, launch

SDXL = "fal-ai/fast-sdxl"
TWO_IMAGES = {"prompt": "a quay", "num_images": 2}


@dataclass(frozen=True)
class Site:
    gateway: Gateway
    alice: Customer  # plan "pro" (× 1.5), 5 USD granted; two runs of 2 images, one failed
    bob: Customer  # the default plan; one run
    alice_runs: tuple[str, ...]  # request ids, oldest first
    alice_failed: str
    bob_run: str

    def get(self, path: str, who: Customer | None, **params: Any) -> httpx.Response:
        return self.gateway.request("GET", path, who.key if who else None, params=params)


def _run(gateway: Gateway, who: Customer, body: dict[str, Any], status: int = 200) -> str:
    answer = gateway.request("POST", f"/{SDXL}", who.key, json=body)
    assert answer.status_code == status, answer.text
    return answer.headers["x-fal-request-id"]


@pytest.fixture(scope="module")
def site(make_deployment: Callable[[], Deployment], tls_files: dict[str, Path]) -> Iterator[Site]:
    deployment = make_deployment()
    deployment.add_upstream("main", GOOD_KEY)
    deployment.nxs("pricing", "set", SDXL, "image", "0.01")
    deployment.nxs("plans", "create", "pro", "--multiplier", "1.5")
    gateway = launch(deployment, tls_files)
    try:
        alice, bob = gateway.customer("alice"), gateway.customer("bob")
        deployment.nxs("subscriptions", "set", alice.name, "pro")
        deployment.nxs("credits", "grant", alice.name, "5")
        assert eventually(lambda: _priced_at(gateway, alice, 0.015))
        runs = (_run(gateway, alice, TWO_IMAGES), _run(gateway, alice, TWO_IMAGES))
        failed = _run(gateway, alice, {"prompt": "[fail] a wreck"}, 500)
        yield Site(gateway, alice, bob, runs, failed, _run(gateway, bob, {"prompt": "a dune"}))
    finally:
        gateway.client.close()
        gateway.server.stop()


def _priced_at(gateway: Gateway, who: Customer, price: float) -> bool:
    answer = gateway.request("GET", "/v1/models/pricing", who.key, params={"endpoint_id": SDXL})
    return bool(answer.json()["prices"][0]["unit_price"] == price)


def _error(answer: httpx.Response) -> tuple[int, str]:
    body = answer.json()["error"]
    assert set(body) == {"type", "message", "docs_url", "request_id"}, body
    return answer.status_code, body["type"]


def test_prices_are_the_operators_times_the_customers_plan_multiplier(site: Site) -> None:
    for who, price in ((site.alice, 0.015), (site.bob, 0.01)):
        answer = site.get("/v1/models/pricing", who, endpoint_id=SDXL)
        assert answer.status_code == 200
        assert answer.json() == {
            "prices": [
                {"endpoint_id": SDXL, "unit_price": price, "unit": "image", "currency": "USD"}
            ],
            "next_cursor": None,
            "has_more": False,
        }


def test_prices_of_several_endpoints_comma_separated_or_repeated(site: Site) -> None:
    path = f"/v1/models/pricing?endpoint_id={SDXL},fal-ai/x&endpoint_id=fal-ai/y"
    answer = site.gateway.request("GET", path, site.bob.key)
    rows = [(p["endpoint_id"], p["unit"], p["unit_price"]) for p in answer.json()["prices"]]
    assert rows == [(SDXL, "image", 0.01), ("fal-ai/x", "request", 0), ("fal-ai/y", "request", 0)]


def test_estimates_by_unit_price_and_by_the_customers_own_history(site: Site) -> None:
    units = {"estimate_type": "unit_price", "endpoints": {SDXL: {"unit_quantity": 10}}}
    calls = {"estimate_type": "historical_api_price", "endpoints": {SDXL: {"call_quantity": 10}}}
    answers = [
        site.gateway.request("POST", "/v1/models/pricing/estimate", site.alice.key, json=body)
        for body in (units, calls)
    ]
    assert [a.json() for a in answers] == [
        {"estimate_type": "unit_price", "total_cost": 0.15, "currency": "USD"},
        {"estimate_type": "historical_api_price", "total_cost": 0.3, "currency": "USD"},
    ]


def test_usage_summary_and_daily_series_hold_only_the_customers_charged_runs(site: Site) -> None:
    answer = site.get("/v1/models/usage", site.alice, expand="summary,time_series", timeframe="day")
    body = answer.json()
    line = {
        "endpoint_id": SDXL,
        "unit": "image",
        "quantity": 4,
        "unit_price": 0.015,
        "percent_discount": None,
        "cost_subtotal": 0.06,
        "cost_discount": 0,
        "cost_total": 0.06,
        "cost": 0.06,
        "currency": "USD",
    }
    assert body["summary"] == [line]
    assert [bucket["results"] for bucket in body["time_series"]] == [[line]]
    assert body["time_series"][0]["bucket"].endswith("T00:00:00+00:00")
    assert (body["next_cursor"], body["has_more"]) == (None, False)


def test_usage_by_key_names_the_key(site: Site) -> None:
    answer = site.get("/v1/models/usage", site.bob, expand="summary,auth_method_structured")
    (line,) = answer.json()["summary"]
    assert line["auth_method_structured"]["api_key_id"] == site.bob.key_id


def test_billing_events_page_newest_first_with_fals_cursor(site: Site) -> None:
    first = site.get("/v1/models/billing-events", site.alice, limit=1).json()
    assert (first["has_more"], first["next_cursor"]) == (True, "Mg==")
    second = site.get("/v1/models/billing-events", site.alice, limit=1, cursor="Mg==").json()
    assert (second["has_more"], second["next_cursor"]) == (False, None)
    events = first["billing_events"] + second["billing_events"]
    assert [e["request_id"] for e in events] == list(reversed(site.alice_runs))
    assert {
        (e["output_units"], e["unit_price"], e["cost_total"], e["cost_estimate_nano_usd"])
        for e in events
    } == {(2, 0.015, 0.03, 30_000_000)}


def test_requests_by_endpoint_with_status_and_duration(site: Site) -> None:
    answer = site.get("/v1/models/requests/by-endpoint", site.alice, endpoint_id=SDXL)
    items = answer.json()["items"]
    codes = {item["request_id"]: item["status_code"] for item in items}
    assert codes == {site.alice_runs[0]: 200, site.alice_runs[1]: 200, site.alice_failed: 500}
    assert all(item["duration"] >= 0 and item["ended_at"] for item in items)
    errors = site.get(
        "/v1/models/requests/by-endpoint", site.alice, endpoint_id=SDXL, status="error"
    )
    assert [item["request_id"] for item in errors.json()["items"]] == [site.alice_failed]


def test_account_billing_shows_balance_and_plan(site: Site) -> None:
    body = site.get("/v1/account/billing", site.alice, expand="credits").json()
    assert body["username"] == site.alice.name
    assert body["credits"] == {"current_balance": 5, "currency": "USD"}
    assert (body["plan"]["name"], body["plan"]["active"]) == ("pro", True)
    assert "credits" not in site.get("/v1/account/billing", site.bob).json()


def test_a_key_made_with_an_alias_works_is_listed_and_revoked(site: Site) -> None:
    made = site.gateway.request("POST", "/v1/keys", site.bob.key, json={"alias": "CI runner"})
    assert made.status_code == 201
    key_id, secret = made.json()["key_id"], made.json()["key"]
    mine = Customer(site.bob.name, secret, key_id)
    assert eventually(lambda: site.get("/v1/keys", mine).status_code == 200)
    listed = {
        k["key_id"]: (k["alias"], k["scope"]) for k in site.get("/v1/keys", mine).json()["keys"]
    }
    assert listed[key_id] == ("CI runner", "API")
    assert site.gateway.request("DELETE", f"/v1/keys/{key_id}", site.bob.key).status_code == 204
    assert eventually(lambda: site.get("/v1/keys", mine).status_code == 401)
    assert key_id not in {k["key_id"] for k in site.get("/v1/keys", site.bob).json()["keys"]}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/billing-events?request_id={run}",
        "/v1/models/requests/by-endpoint?endpoint_id=" + SDXL + "&request_id={run}",
        "/v1/models/usage?api_key_id={key}",
        "/v1/models/billing-events?api_key_id={key}",
    ],
)
def test_another_customers_ids_are_404(site: Site, path: str) -> None:
    url = path.format(run=site.alice_runs[0], key=site.alice.key_id)
    assert _error(site.gateway.request("GET", url, site.bob.key)) == (404, "not_found")


def test_another_customers_key_cannot_be_revoked(site: Site) -> None:
    answer = site.gateway.request("DELETE", f"/v1/keys/{site.alice.key_id}", site.bob.key)
    assert _error(answer) == (404, "not_found")
    assert site.get("/v1/keys", site.alice).status_code == 200


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/v1/models/pricing", None),
        ("GET", "/v1/models/pricing?endpoint_id=" + ",".join(f"e/{n}" for n in range(51)), None),
        ("GET", "/v1/models/usage?start=yesterday", None),
        ("GET", "/v1/models/usage?start=2026-02-30", None),
        ("GET", "/v1/models/usage?end=0001-01-01", None),
        ("GET", "/v1/models/usage?start=9999-12-31T23:59:59-05:00&timeframe=month", None),
        ("GET", "/v1/models/usage?start=2026-12-02&end=2026-12-01", None),
        ("GET", "/v1/models/usage?expand=auth_method", None),
        ("GET", "/v1/models/usage?timezone=Mars/Olympus", None),
        ("GET", "/v1/models/billing-events?limit=0", None),
        ("GET", "/v1/models/billing-events?cursor=%21%21", None),
        ("GET", "/v1/models/billing-events?start=2026-01-01&end=2026-06-01", None),
        ("GET", "/v1/models/requests/by-endpoint", None),
        ("GET", "/v1/models/requests/by-endpoint?endpoint_id=a&sort_by=cost", None),
        ("POST", "/v1/models/pricing/estimate", b"{not json"),
        ("POST", "/v1/models/pricing/estimate", b'{"estimate_type": "guess", "endpoints": {}}'),
        (
            "POST",
            "/v1/models/pricing/estimate",
            b'{"estimate_type": "unit_price", "endpoints": {"a/b": {"unit_quantity": -1}}}',
        ),
        ("POST", "/v1/keys", b'{"alias": ""}'),
        ("POST", "/v1/keys", b"[]"),
    ],
)
def test_bad_input_is_fals_400_validation_error(
    site: Site, method: str, path: str, body: bytes | None
) -> None:
    answer = site.gateway.request(method, path, site.bob.key, content=body)
    assert _error(answer) == (400, "validation_error")


def test_without_a_valid_key_it_is_401_and_unknown_paths_404(site: Site) -> None:
    assert _error(site.get("/v1/keys", None)) == (401, "authorization_error")
    bad = site.gateway.request("GET", "/v1/keys", "nxs_" + "x" * 40)
    assert _error(bad) == (401, "authorization_error")
    assert _error(site.get("/v1/serverless/apps", site.bob)) == (404, "not_found")


def test_a_suspended_customer_is_refused_as_fal_refuses_a_locked_account(site: Site) -> None:
    carol = site.gateway.customer("carol")
    site.gateway.deployment.nxs("customers", "suspend", carol.name)
    assert eventually(lambda: site.get("/v1/account/billing", carol).status_code == 402)
    assert _error(site.get("/v1/account/billing", carol)) == (402, "authorization_error")


def test_a_method_the_path_does_not_take_is_405(site: Site) -> None:
    answer = site.gateway.request("PUT", "/v1/models/pricing", site.bob.key)
    assert _error(answer) == (405, "not_implemented")
