"""Bad input to the admin API: fal-shaped errors naming the field, secrets never echoed,
nothing half-written (no record, no audit entry)."""

from __future__ import annotations

from typing import Any

from tests.api import conftest_admin
from tests.api.conftest_admin import AdminGateway

admin_gateway = conftest_admin.admin_gateway  # the fixtures these tests use


def locations(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.json()["error_type"] == "validation_error"
    return [problem["loc"] for problem in response.json()["detail"]]


def audit_count(gateway: AdminGateway) -> int:
    return len(gateway.admin("GET", "/audit", params={"limit": 1000}).json())


def test_invalid_customer_name_is_a_422_naming_the_field(admin_gateway: AdminGateway) -> None:
    before = audit_count(admin_gateway)
    response = admin_gateway.admin("POST", "/customers", json={"name": "no spaces please"})
    assert locations(response) == [["body", "name"]]
    assert admin_gateway.admin("GET", "/customers/no spaces please").status_code == 404
    assert audit_count(admin_gateway) == before


def test_missing_and_unknown_fields_are_named(admin_gateway: AdminGateway) -> None:
    assert locations(admin_gateway.admin("POST", "/customers", json={})) == [["body", "name"]]
    response = admin_gateway.admin("POST", "/customers", json={"name": "x1", "plan": "gold"})
    assert locations(response) == [["body", "plan"]]


def test_a_body_that_is_not_json_is_a_422(admin_gateway: AdminGateway) -> None:
    response = admin_gateway.admin("POST", "/customers", content=b"name=acme")
    assert locations(response) == [["body"]]
    assert "JSON" in response.json()["detail"][0]["msg"]


def test_bad_upstream_input_is_refused_without_echoing_the_secret(
    admin_gateway: AdminGateway,
) -> None:
    secret = "fal-id-77:two words-secret-value"
    response = admin_gateway.admin("POST", "/upstream-keys", json={"name": "u1", "secret": secret})
    assert locations(response) == [["body", "secret"]]
    assert "words-secret" not in response.text
    body = {"name": "u1", "secret": "fal-id-77:ok-secret-value", "weight": 0}
    assert locations(admin_gateway.admin("POST", "/upstream-keys", json=body)) == [
        ["body", "weight"]
    ]
    assert admin_gateway.admin("GET", "/upstream-keys/u1").status_code == 404


def test_duplicate_customer_is_409_and_audited_once(admin_gateway: AdminGateway) -> None:
    assert admin_gateway.admin("POST", "/customers", json={"name": "twice"}).status_code == 201
    again = admin_gateway.admin("POST", "/customers", json={"name": "twice"})
    assert again.status_code == 409
    assert again.json() == {"detail": "Customer 'twice' already exists", "error_type": "conflict"}
    entries = admin_gateway.admin("GET", "/audit", params={"target": "twice"}).json()
    assert [entry["action"] for entry in entries] == ["customers.create"]


def test_unknown_records_are_404_and_write_nothing(admin_gateway: AdminGateway) -> None:
    before = audit_count(admin_gateway)
    for method, path in (
        ("GET", "/customers/nobody"),
        ("POST", "/customers/nobody/keys"),
        ("POST", "/customers/nobody/suspend"),
        ("POST", "/keys/key_000000000000/revoke"),
        ("DELETE", "/upstream-keys/nothing"),
        ("POST", "/upstream-keys/nothing/enable"),
    ):
        response = admin_gateway.admin(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error_type"] == "not_found"
    assert audit_count(admin_gateway) == before


def test_unknown_admin_route_and_bad_query_are_fal_shaped(admin_gateway: AdminGateway) -> None:
    missing = admin_gateway.admin("GET", "/no-such-thing")
    assert missing.status_code == 404 and missing.json()["detail"] == "Not Found"
    assert locations(admin_gateway.admin("GET", "/audit?since=yesterday")) == [["query", "since"]]
    assert locations(admin_gateway.admin("GET", "/audit?limit=0")) == [["query", "limit"]]


def test_a_body_without_the_token_is_refused_unread_and_an_oversized_one_is_a_413(
    admin_gateway: AdminGateway,
) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    stranger = admin_gateway.admin("POST", "/customers", token=None, content=big)
    assert (stranger.status_code, stranger.json()["error_type"]) == (401, "invalid_admin_token")
    assert stranger.headers["www-authenticate"] == "Bearer"
    wrong = admin_gateway.admin("POST", "/customers", token="not-the-token", json={"name": "a"})
    assert wrong.status_code == 401
    oversized = admin_gateway.admin(
        "POST", "/customers", content=big, headers={"Content-Type": "application/json"}
    )
    assert (oversized.status_code, oversized.json()) == (
        413,
        {"detail": "Request body too large (max 1MB)", "error_type": "payload_too_large"},
    )
    assert admin_gateway.admin("GET", "/customers/" + "x" * 20).status_code == 404
