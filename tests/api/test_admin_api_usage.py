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
    [line] = ok(priced.admin("GET", "/usage", params={"customer": "starter"}))
    assert (line["customer"], line["requests"], line["settled"]) == ("starter", 1, 1)
    charged = Decimal(line["cost"])
    assert charged > 0 and Decimal(balance["available"]) == Decimal("1.00") - charged


def test_usage_by_key_endpoint_and_day_with_csv(priced: AdminGateway) -> None:
    first = new_customer(priced, "reporter")
    second = str(ok(priced.admin("POST", "/customers/reporter/keys"), 201)["key"])
    assert eventually(lambda: priced.key_works(second) != 401)
    for key, endpoint in ((first, ENDPOINT), (first, ENDPOINT), (second, "fal-ai/flux/schnell")):
        assert run(priced, key, endpoint).status_code == 200
    query = {"customer": "reporter", "group_by": "key,endpoint,day"}
    lines = ok(priced.admin("GET", "/usage", params=query))
    today = datetime.now(UTC).date().isoformat()
    assert sorted((line["endpoint"], line["requests"], line["day"]) for line in lines) == [
        (ENDPOINT, 2, today),
        ("fal-ai/flux/schnell", 1, today),
    ]
    exported = priced.admin("GET", "/usage.csv", params=query)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["endpoint"], r["requests"], r["cost"]) for r in rows] == [
        (line["endpoint"], str(line["requests"]), line["cost"]) for line in lines
    ]


def test_usage_filters_and_bad_queries(priced: AdminGateway) -> None:
    key = new_customer(priced, "filtered")
    assert run(priced, key).status_code == 200
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = {"customer": "filtered", "since": tomorrow}
    assert ok(priced.admin("GET", "/usage", params=later)) == []
    earlier = {"customer": "filtered", "until": tomorrow, "group_by": ""}
    [total] = ok(priced.admin("GET", "/usage", params=earlier))
    assert (total["customer"], total["requests"]) == (None, 1)
    assert priced.admin("GET", "/usage", params={"customer": "ghost"}).status_code == 404
    for params, field in (({"group_by": "week"}, "group_by"), ({"since": "soon"}, "since")):
        response = priced.admin("GET", "/usage.csv", params=params)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", field]
