"""Plans, credit and usage set up over the admin API take effect in the running gateway:
a prepaid customer is refused until granted credit, and the usage report (JSON and CSV)
adds up to what its balance was charged."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.api import conftest_admin
from tests.api.conftest_admin import FAL_KEY, AdminGateway, eventually

admin_gateway = conftest_admin.admin_gateway  # the fixture these tests use
ENDPOINT = "fal-ai/flux/dev"
SCHNELL = "fal-ai/flux/schnell"


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def run(gateway: AdminGateway, key: str, endpoint: str = ENDPOINT) -> httpx.Response:
    headers = {"Authorization": f"Key {key}"}
    return gateway.client.post(
        f"{gateway.server.url}/{endpoint}", headers=headers, json={"prompt": "a lighthouse"}
    )


def new_customer(gateway: AdminGateway, name: str, plan: str | None = None) -> str:
    """A customer (on `plan`) with one key the gateway already knows; returns the key."""
    ok(gateway.admin("POST", "/customers", json={"name": name}), 201)
    if plan is not None:
        ok(gateway.admin("PUT", f"/customers/{name}/subscription", json={"plan": plan}))
    key = str(ok(gateway.admin("POST", f"/customers/{name}/keys"), 201)["key"])
    assert eventually(lambda: gateway.key_works(key) != 401)
    return key


@pytest.fixture(scope="module")
def priced(admin_gateway: AdminGateway) -> AdminGateway:
    """The gateway with an upstream key, flux priced per image, and a prepaid plan."""
    ok(admin_gateway.admin("POST", "/upstream-keys", json={"name": "main", "secret": FAL_KEY}), 201)
    price = {"pattern": "fal-ai/flux/*", "unit": "image", "unit_price": "0.03"}
    ok(admin_gateway.admin("PUT", "/prices", json=price))
    ok(admin_gateway.admin("POST", "/plans", json={"name": "prepaid", "prepaid": True}), 201)
    return admin_gateway


def test_prepaid_customer_is_refused_until_granted_credit(priced: AdminGateway) -> None:
    key = new_customer(priced, "starter", plan="prepaid")
    refused = run(priced, key)
    assert (refused.status_code, refused.json()["detail"]) == (402, "Insufficient credit")
    ok(priced.admin("POST", "/customers/starter/credits", json={"amount": "1.00"}), 201)
    assert run(priced, key).status_code == 200
    balance = ok(priced.admin("GET", "/customers/starter/balance"))
    [total] = ok(priced.admin("GET", "/usage", params={"customer": "starter"}))
    assert (total["group"], total["requests"], total["settled"]) == ("starter", 1, 1)
    charged = Decimal(total["cost"])
    assert charged > 0 and Decimal(balance["available"]) == Decimal("1.00") - charged


def test_usage_by_key_endpoint_and_day_with_csv(priced: AdminGateway) -> None:
    first = new_customer(priced, "reporter")
    second = ok(priced.admin("POST", "/customers/reporter/keys"), 201)
    assert eventually(lambda: priced.key_works(second["key"]) != 401)
    for key, endpoint in ((first, ENDPOINT), (first, ENDPOINT), (second["key"], SCHNELL)):
        assert run(priced, key, endpoint).status_code == 200

    def grouped(by: str) -> list[tuple[str, int]]:
        query = {"customer": "reporter", "group_by": by}
        return [
            (t["group"], t["requests"]) for t in ok(priced.admin("GET", "/usage", params=query))
        ]

    assert grouped("endpoint") == [(ENDPOINT, 2), (SCHNELL, 1)]
    assert (second["id"], 1) in grouped("key")
    assert grouped("day") == [(datetime.now(UTC).date().isoformat(), 3)]
    exported = priced.admin(
        "GET", "/usage.csv", params={"customer": "reporter", "group_by": "endpoint"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["group"], r["requests"]) for r in rows] == [(ENDPOINT, "2"), (SCHNELL, "1")]


def test_billable_requests_are_listed_and_exported(priced: AdminGateway) -> None:
    key = new_customer(priced, "itemized")
    assert run(priced, key).status_code == 200
    [row] = ok(priced.admin("GET", "/usage/requests", params={"customer": "itemized"}))
    assert (row["customer"], row["endpoint"], row["status"], row["unit"]) == (
        "itemized",
        ENDPOINT,
        "settled",
        "image",
    )
    exported = priced.admin("GET", "/usage/requests.csv", params={"customer": "itemized"})
    [line] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (line["id"], line["cost"], line["unit_price"]) == (row["id"], row["cost"], "0.03")


def test_usage_filters_and_bad_queries(priced: AdminGateway) -> None:
    key = new_customer(priced, "filtered")
    assert run(priced, key).status_code == 200
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = {"customer": "filtered", "since": tomorrow}
    assert ok(priced.admin("GET", "/usage", params=later)) == []
    earlier = {"customer": "filtered", "until": tomorrow}
    assert [t["requests"] for t in ok(priced.admin("GET", "/usage", params=earlier))] == [1]
    assert priced.admin("GET", "/usage", params={"customer": "ghost"}).status_code == 404
    for path, params, field in (
        ("/usage.csv", {"group_by": "week"}, "group_by"),
        ("/usage", {"since": "soon"}, "since"),
        ("/usage/requests", {"until": "2026-13-01"}, "until"),
        ("/usage/requests.csv", {"limit": "0"}, "limit"),
    ):
        response = priced.admin("GET", path, params=params)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", field]


def test_changing_the_default_plan_reaches_customers_without_a_subscription(
    priced: AdminGateway,
) -> None:
    key = new_customer(priced, "newcomer")
    try:
        ok(priced.admin("PUT", "/plans/default", json={"rpm": 1}))
        assert eventually(lambda: run(priced, key).status_code == 429)
        limited = run(priced, key)
        assert (limited.status_code, limited.json()["detail"]) == (429, "Rate limit exceeded")
        assert int(limited.headers["Retry-After"]) >= 1
        ok(priced.admin("PUT", "/plans/default", json={"prepaid": True}))
        latecomer = new_customer(priced, "latecomer")
        assert eventually(lambda: run(priced, latecomer).status_code == 402)
        assert run(priced, latecomer).json()["detail"] == "Insufficient credit"
    finally:
        ok(priced.admin("PUT", "/plans/default", json={}))
    assert eventually(lambda: run(priced, key).status_code == 200)


def test_usage_adds_up_the_same_by_every_grouping_and_in_the_cli_export(
    priced: AdminGateway,
) -> None:
    first = new_customer(priced, "auditor")
    second = ok(priced.admin("POST", "/customers/auditor/keys"), 201)["key"]
    assert eventually(lambda: priced.key_works(second) != 401)
    for key, endpoint in ((first, ENDPOINT), (second, SCHNELL), (second, ENDPOINT)):
        assert run(priced, key, endpoint).status_code == 200
    query = {"customer": "auditor"}
    rows = ok(priced.admin("GET", "/usage/requests", params=query))
    charged = sum(Decimal(row["cost"]) for row in rows)
    assert len(rows) == 3 and charged > 0
    for by in ("customer", "key", "endpoint", "day"):
        totals = ok(priced.admin("GET", "/usage", params={**query, "group_by": by}))
        assert sum(Decimal(t["cost"]) for t in totals) == charged, by
        assert sum(t["requests"] for t in totals) == 3, by
    exported = priced.nxs("usage", "--customer", "auditor", "--csv")
    assert exported.returncode == 0, exported.stderr
    lines = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert sorted(line["id"] for line in lines) == sorted(row["id"] for row in rows)
    assert sum(Decimal(line["cost"]) for line in lines) == charged


def test_an_endpoint_priced_per_image_is_charged_per_image(priced: AdminGateway) -> None:
    key = new_customer(priced, "imager")
    assert run(priced, key).status_code == 200  # one 1024×768 image
    [row] = ok(priced.admin("GET", "/usage/requests", params={"customer": "imager"}))
    assert (row["unit"], Decimal(row["units"]), Decimal(row["cost"])) == (
        "image",
        1,
        Decimal("0.03"),
    )
