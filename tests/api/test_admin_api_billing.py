"""The billing part of the admin API over a real `nxs serve`: plans, subscriptions, credit
grants and prices; bad amounts, plans and dates are 422s naming the field, nothing
half-written, and every change is in the audit log."""

from __future__ import annotations

from typing import Any

from tests.api import conftest_admin
from tests.api.conftest_admin import AdminGateway

admin_gateway = conftest_admin.admin_gateway  # the fixture these tests use


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def field_of(response: Any) -> list[Any]:
    assert response.status_code == 422, response.text
    return [problem["loc"] for problem in response.json()["detail"]]


def customer(gateway: AdminGateway, name: str) -> str:
    ok(gateway.admin("POST", "/customers", json={"name": name}), 201)
    return name


def actions(gateway: AdminGateway, target: str) -> list[str]:
    entries = ok(gateway.admin("GET", "/audit", params={"target": target}))
    return [entry["action"] for entry in reversed(entries)]


def test_plans_are_created_listed_and_redefined(admin_gateway: AdminGateway) -> None:
    body = {"name": "gold", "monthly_credit": "25.5", "rpm": 60, "endpoints": ["fal-ai/flux/*"]}
    body["priority"] = 3
    created = ok(admin_gateway.admin("POST", "/plans", json=body), 201)
    assert created == {
        "name": "gold",
        "mode": "monthly",
        "monthly_credit": "25.50",
        "rpm": 60,
        "max_in_flight": None,
        "endpoints": ["fal-ai/flux/*"],
        "multiplier": "1",
        "priority": 3,
    }
    names = [plan["name"] for plan in ok(admin_gateway.admin("GET", "/plans"))]
    assert {"default", "gold"} <= set(names)
    changed = ok(admin_gateway.admin("PUT", "/plans/gold", json={"prepaid": True, "rpm": 5}))
    assert (changed["mode"], changed["rpm"], changed["endpoints"]) == ("prepaid", 5, [])
    assert ok(admin_gateway.admin("GET", "/plans/gold")) == changed
    assert actions(admin_gateway, "gold") == ["plans.create", "plans.update"]


def test_bad_plans_are_refused_naming_the_field(admin_gateway: AdminGateway) -> None:
    cases = [
        ({"name": "p1", "monthly_credit": "-5"}, "monthly_credit"),
        ({"name": "p1", "monthly_credit": "ten"}, "monthly_credit"),
        ({"name": "p1", "prepaid": True, "monthly_credit": "5"}, "monthly_credit"),
        ({"name": "p1", "rpm": 0}, "rpm"),
        ({"name": "p1", "max_in_flight": True}, "max_in_flight"),
        ({"name": "p1", "multiplier": "-1"}, "multiplier"),
        ({"name": "p1", "priority": 0}, "priority"),
        ({"name": "Not A Name"}, "name"),
    ]
    for body, field in cases:
        assert field_of(admin_gateway.admin("POST", "/plans", json=body)) == [["body", field]]
    assert ok(admin_gateway.admin("GET", "/plans/p1"), 404)["detail"] == "Plan 'p1' not found"
    ok(admin_gateway.admin("POST", "/plans", json={"name": "dup"}), 201)
    assert admin_gateway.admin("POST", "/plans", json={"name": "dup"}).status_code == 409
    assert admin_gateway.admin("PUT", "/plans/nope", json={}).status_code == 404


def test_impossible_plans_are_422s_never_500s_and_write_nothing(
    admin_gateway: AdminGateway,
) -> None:
    plans_before = ok(admin_gateway.admin("GET", "/plans"))
    audit_before = ok(admin_gateway.admin("GET", "/audit", params={"limit": 1000}))
    cases = [
        ({"rpm": 10**23}, "rpm"),  # was a 500 (too large for SQLite)
        ({"max_in_flight": 2**63}, "max_in_flight"),
        ({"multiplier": 0}, "multiplier"),  # every request would be recorded at $0
        ({"multiplier": "0.0"}, "multiplier"),
        ({"monthly_credit": "0"}, "monthly_credit"),
        ({"endpoints": ""}, "endpoints"),  # was a plan allowing every endpoint
        ({"endpoints": [" "]}, "endpoints"),
        ({"endpoints": ["fal-ai/flux/[dev"]}, "endpoints"),  # could never match
        ({"endpoints": ["https://fal.run/fal-ai/flux/dev"]}, "endpoints"),
        ({"prepaid": "yes"}, "prepaid"),  # was taken as true
    ]
    for body, field in cases:
        created = admin_gateway.admin("POST", "/plans", json={"name": "odd", **body})
        assert field_of(created) == [["body", field]], body
        assert field_of(admin_gateway.admin("PUT", "/plans/default", json=body)) == [
            ["body", field]
        ], body
    assert ok(admin_gateway.admin("GET", "/plans")) == plans_before
    assert ok(admin_gateway.admin("GET", "/audit", params={"limit": 1000})) == audit_before


def test_a_new_customer_is_on_the_default_plan(admin_gateway: AdminGateway) -> None:
    name = customer(admin_gateway, "fresh")
    subscription = ok(admin_gateway.admin("GET", f"/customers/{name}/subscription"))
    assert subscription == {
        "customer": "fresh",
        "plan": "default",
        "status": "active",
        "until": None,
        "active": True,
    }


def test_subscriptions_are_set_until_a_date(admin_gateway: AdminGateway) -> None:
    name = customer(admin_gateway, "subscriber")
    ok(admin_gateway.admin("POST", "/plans", json={"name": "silver", "prepaid": True}), 201)
    body = {"plan": "silver", "until": "2099-12-31"}
    set_ = ok(admin_gateway.admin("PUT", f"/customers/{name}/subscription", json=body))
    assert (set_["plan"], set_["until"], set_["active"]) == ("silver", "2100-01-01T00:00:00Z", True)
    lapsed = {"plan": "silver", "status": "past_due"}
    set_ = ok(admin_gateway.admin("PUT", f"/customers/{name}/subscription", json=lapsed))
    assert (set_["status"], set_["active"]) == ("past_due", False)
    assert actions(admin_gateway, name)[-2:] == ["subscriptions.set", "subscriptions.set"]


def test_bad_subscriptions_change_nothing(admin_gateway: AdminGateway) -> None:
    name = customer(admin_gateway, "steady")
    path = f"/customers/{name}/subscription"
    assert admin_gateway.admin("PUT", path, json={"plan": "no-such-plan"}).status_code == 404
    bad_date = {"plan": "default", "until": "31/12/2099"}
    assert field_of(admin_gateway.admin("PUT", path, json=bad_date)) == [["body", "until"]]
    for impossible in ("2026-02-30", "9999-12-31"):  # the second was a 500
        bad_day = {"plan": "default", "until": impossible}
        assert field_of(admin_gateway.admin("PUT", path, json=bad_day)) == [["body", "until"]]
    bad_status = {"plan": "default", "status": "paused"}
    assert field_of(admin_gateway.admin("PUT", path, json=bad_status)) == [["body", "status"]]
    assert ok(admin_gateway.admin("GET", path))["plan"] == "default"
    unknown = admin_gateway.admin("PUT", "/customers/ghost/subscription", json={"plan": "default"})
    assert unknown.status_code == 404
    assert actions(admin_gateway, name) == ["customers.create"]


def test_credit_grants_add_up(admin_gateway: AdminGateway) -> None:
    name = customer(admin_gateway, "payer")
    path = f"/customers/{name}/credits"
    assert ok(admin_gateway.admin("POST", path, json={"amount": "10.50"}), 201)["available"] == (
        "10.50"
    )
    balance = ok(admin_gateway.admin("POST", path, json={"amount": 2, "note": "promo"}), 201)
    assert (balance["available"], balance["reserved"]) == ("12.50", "0.00")
    assert ok(admin_gateway.admin("GET", f"/customers/{name}/balance"))["available"] == "12.50"
    grants = ok(admin_gateway.admin("GET", path))
    assert [(g["amount"], g["note"]) for g in grants] == [("2.00", "promo"), ("10.50", None)]
    entries = ok(admin_gateway.admin("GET", "/audit", params={"target": name}))
    grants = [e["detail"] for e in entries if e["action"] == "credits.grant"]
    assert grants == [{"amount": "2.00", "note": "promo"}, {"amount": "10.50", "note": None}]


def test_bad_amounts_grant_nothing(admin_gateway: AdminGateway) -> None:
    name = customer(admin_gateway, "careful")
    path = f"/customers/{name}/credits"
    for amount in ("-1", "0", "abc", "1e3", True, "0.0000001", "NaN", "1000000001", "١٢"):
        response = admin_gateway.admin("POST", path, json={"amount": amount})
        assert field_of(response) == [["body", "amount"]], amount
    assert admin_gateway.admin(
        "POST", "/customers/ghost/credits", json={"amount": 1}
    ).status_code == (404)
    assert ok(admin_gateway.admin("GET", f"/customers/{name}/balance"))["available"] == "0.00"
    assert actions(admin_gateway, name) == ["customers.create"]


def test_operator_prices_are_listed(admin_gateway: AdminGateway) -> None:
    body = {"pattern": "fal-ai/flux/*", "unit": "image", "unit_price": "0.025"}
    assert ok(admin_gateway.admin("PUT", "/prices", json=body)) == {**body, "source": "operator"}
    assert body | {"source": "operator"} in ok(admin_gateway.admin("GET", "/prices"))
    bad = {"pattern": "fal-ai/x", "unit": "liters", "unit_price": "1"}
    assert field_of(admin_gateway.admin("PUT", "/prices", json=bad)) == [["body", "unit"]]
    for pattern in (" ", "fal ai/x", "https://fal.run/fal-ai/x"):  # " " was stored as ""
        bad = {"pattern": pattern, "unit": "image", "unit_price": "1"}
        assert field_of(admin_gateway.admin("PUT", "/prices", json=bad)) == [["body", "pattern"]]
    assert [p["pattern"] for p in ok(admin_gateway.admin("GET", "/prices"))] == ["fal-ai/flux/*"]
    assert actions(admin_gateway, "fal-ai/flux/*") == ["pricing.set"]


def test_unknown_endpoint_policy_round_trip(admin_gateway: AdminGateway) -> None:
    path = "/prices/unknown-endpoints"
    charged = {"refuse": False, "request_price": "0.005"}
    assert ok(admin_gateway.admin("PUT", path, json=charged)) == charged
    assert ok(admin_gateway.admin("GET", path)) == charged
    refuse = ok(admin_gateway.admin("PUT", path, json={"refuse": True}))
    assert refuse == {"refuse": True, "request_price": "0"}
    bad = {"refuse": False, "request_price": "-1"}
    assert field_of(admin_gateway.admin("PUT", path, json=bad)) == [["body", "request_price"]]
    assert ok(admin_gateway.admin("GET", path))["refuse"] is True
    entries = ok(admin_gateway.admin("GET", "/audit", params={"action": "pricing.unknown"}))
    assert [e["detail"]["policy"] for e in entries] == ["refuse", "request:0.005"]
