"""The admin HTTP API over a real `nxs serve`: auth, docs, customers, keys, upstream keys,
errors in fal's shape, and the audit log of what was done."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api import conftest_admin
from tests.api.conftest_admin import FAL_KEY, TOKEN, AdminGateway, eventually

from nxs.admin import audit
from nxs.config import Settings
from nxs.store.store import Store

admin_gateway = conftest_admin.admin_gateway  # the fixtures these tests use
disabled_gateway = conftest_admin.disabled_gateway


def create_customer(gateway: AdminGateway, name: str) -> dict[str, Any]:
    response = gateway.admin("POST", "/customers", json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_key(gateway: AdminGateway, customer: str) -> dict[str, Any]:
    response = gateway.admin("POST", f"/customers/{customer}/keys")
    assert response.status_code == 201, response.text
    return dict(response.json())


def audit_of(gateway: AdminGateway, target: str) -> list[tuple[str, str]]:
    response = gateway.admin("GET", "/audit", params={"target": target})
    assert response.status_code == 200, response.text
    return [(entry["actor"], entry["action"]) for entry in reversed(response.json())]


def test_openapi_document_and_docs_page_are_served(admin_gateway: AdminGateway) -> None:
    document = admin_gateway.get("/admin/openapi.json").json()
    assert {"/admin/v1/customers", "/admin/v1/upstream-keys", "/admin/v1/audit"} <= set(
        document["paths"]
    )
    page = admin_gateway.get("/admin/docs")
    assert page.status_code == 200
    assert "swagger" in page.text.lower() and "/admin/openapi.json" in page.text


def test_every_operation_requires_the_admin_token(admin_gateway: AdminGateway) -> None:
    document = admin_gateway.get("/admin/openapi.json").json()
    for path, operations in document["paths"].items():
        concrete = path.replace("{", "").replace("}", "").removeprefix("/admin/v1")
        for method in operations:
            for token in (None, "wrong-token", TOKEN + "x"):
                response = admin_gateway.admin(method.upper(), concrete, token=token, json={})
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["detail"] == "Missing or invalid admin token"
                assert response.headers["www-authenticate"] == "Bearer"


def test_a_customer_key_is_not_an_admin_token(admin_gateway: AdminGateway) -> None:
    key = create_key(admin_gateway, create_customer(admin_gateway, "not-admin")["name"])
    assert admin_gateway.admin("GET", "/customers", token=key["key"]).status_code == 401


def test_without_admin_token_setting_the_admin_api_is_off(disabled_gateway: AdminGateway) -> None:
    for path in ("/admin/v1/customers", "/admin/docs", "/admin/openapi.json"):
        response = disabled_gateway.get(path, headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403
        assert "NXS_ADMIN_TOKEN" in response.json()["detail"]
    assert disabled_gateway.get("/healthz").status_code == 200


def test_customer_round_trip(admin_gateway: AdminGateway) -> None:
    created = create_customer(admin_gateway, "acme")
    assert (created["name"], created["status"]) == ("acme", "active")
    assert admin_gateway.admin("GET", "/customers/acme").json() == created
    assert "acme" in [c["name"] for c in admin_gateway.admin("GET", "/customers").json()]
    suspended = admin_gateway.admin("POST", "/customers/acme/suspend").json()
    assert suspended["status"] == "suspended"
    resumed = admin_gateway.admin("POST", "/customers/acme/resume").json()
    assert resumed["status"] == "active"
    assert audit_of(admin_gateway, "acme") == [
        ("admin-api", "customers.create"),
        ("admin-api", "customers.suspend"),
        ("admin-api", "customers.resume"),
    ]


def test_key_plaintext_is_shown_only_at_creation(admin_gateway: AdminGateway) -> None:
    create_customer(admin_gateway, "globex")
    created = create_key(admin_gateway, "globex")
    plaintext = created["key"]
    assert plaintext.startswith("nxs_") and plaintext.startswith(created["prefix"])
    for path in ("/keys", "/keys?customer=globex", "/customers/globex/keys", "/audit"):
        assert plaintext not in admin_gateway.admin("GET", path).text
    listed = admin_gateway.admin("GET", "/customers/globex/keys").json()
    assert [(k["id"], k["status"], "key" in k) for k in listed] == [
        (created["id"], "active", False)
    ]


def test_keys_made_by_the_api_work_until_revoked(admin_gateway: AdminGateway) -> None:
    create_customer(admin_gateway, "initech")
    key = create_key(admin_gateway, "initech")
    assert eventually(lambda: admin_gateway.key_works(key["key"]) != 401)
    admin_gateway.admin("POST", "/customers/initech/suspend")
    assert eventually(lambda: admin_gateway.key_works(key["key"]) == 402)
    admin_gateway.admin("POST", "/customers/initech/resume")
    revoked = admin_gateway.admin("POST", f"/keys/{key['id']}/revoke").json()
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    assert eventually(lambda: admin_gateway.key_works(key["key"]) == 401)
    assert audit_of(admin_gateway, key["id"]) == [("admin-api", "keys.revoke")]


def test_upstream_secret_is_never_answered(admin_gateway: AdminGateway) -> None:
    secret = "fal-id-1234:very-secret-upstream-value"
    added = admin_gateway.admin(
        "POST", "/upstream-keys", json={"name": "spare", "secret": secret, "weight": 3}
    )
    assert added.status_code == 201, added.text
    assert added.json()["key"] == "fal-…alue" and added.json()["weight"] == 3
    for path in ("/upstream-keys", "/upstream-keys/spare", "/audit"):
        response = admin_gateway.admin("GET", path)
        assert response.status_code == 200 and secret not in response.text
        assert "very-secret" not in response.text
    enabled = admin_gateway.admin("POST", "/upstream-keys/spare/enable")
    assert enabled.json()["state"] == "active"
    removed = admin_gateway.admin("DELETE", "/upstream-keys/spare")
    assert removed.status_code == 200 and secret not in removed.text
    assert admin_gateway.admin("GET", "/upstream-keys/spare").status_code == 404
    assert audit_of(admin_gateway, "spare") == [
        ("admin-api", "upstream.add"),
        ("admin-api", "upstream.remove"),
    ]


def test_upstream_concurrency_and_weight_are_changed_and_shown_live(
    admin_gateway: AdminGateway,
) -> None:
    body = {"name": "busy", "secret": "fal-id-77:s", "concurrency": 5}
    assert admin_gateway.admin("POST", "/upstream-keys", json=body).json()["concurrency"] == 5
    changed = admin_gateway.admin("PATCH", "/upstream-keys/busy", json={"concurrency": 8})
    assert (changed.json()["concurrency"], changed.json()["weight"]) == (8, 1)
    live = {"limit": 8, "in_flight": 0, "outstanding": 0, "cooldown_seconds": 0.0}
    assert eventually(
        lambda: admin_gateway.admin("GET", "/upstream-keys/busy").json()["live"] == live
    )
    refused = admin_gateway.admin("PATCH", "/upstream-keys/busy", json={"concurrency": 0})
    assert refused.status_code == 422
    assert admin_gateway.admin("PATCH", "/upstream-keys/busy", json={}).status_code == 400
    assert audit_of(admin_gateway, "busy")[-1] == ("admin-api", "upstream.set")


def test_pool_and_customer_set_up_over_the_api_serve_requests(
    admin_gateway: AdminGateway,
) -> None:
    body = {"name": "main", "secret": FAL_KEY}
    assert admin_gateway.admin("POST", "/upstream-keys", json=body).status_code == 201
    create_customer(admin_gateway, "hooli")
    key = create_key(admin_gateway, "hooli")["key"]
    assert eventually(lambda: admin_gateway.key_works(key) != 401)
    submitted = admin_gateway.client.post(
        f"{admin_gateway.server.url}/queue/fal-ai/flux/dev",
        headers={"Authorization": f"Key {key}"},
        json={"prompt": "a lighthouse"},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["request_id"]


def test_audit_record_is_what_the_cli_calls(admin_gateway: AdminGateway) -> None:
    settings = Settings.from_env(admin_gateway.env)
    with Store.open(settings) as store:
        audit.record(store.database, audit.CLI, "customers.create", "cli-made")
        with pytest.raises(ValueError, match="secret"):
            audit.record(store.database, audit.CLI, "upstream.add", "x", {"secret": "s"})
    assert audit_of(admin_gateway, "cli-made") == [("cli", "customers.create")]
    assert audit_of(admin_gateway, "x") == []


def test_cli_changes_are_audited_as_cli(admin_gateway: AdminGateway) -> None:
    done = admin_gateway.nxs("plans", "create", "from-cli", "--prepaid")
    assert done.returncode == 0, done.stderr
    assert audit_of(admin_gateway, "from-cli") == [("cli", "plans.create")]


def test_cli_customer_key_and_pool_changes_are_audited_without_secrets(
    admin_gateway: AdminGateway,
) -> None:
    for args, stdin in (
        (("customers", "create", "audited"), None),
        (("customers", "suspend", "audited"), None),
        (("upstream", "add", "audited-pool", "--weight", "3"), "audit-secret-value:xyz\n"),
        (("upstream", "remove", "audited-pool"), None),
    ):
        done = admin_gateway.nxs(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    assert audit_of(admin_gateway, "audited") == [
        ("cli", "customers.create"),
        ("cli", "customers.suspend"),
    ]
    assert audit_of(admin_gateway, "audited-pool") == [
        ("cli", "upstream.add"),
        ("cli", "upstream.remove"),
    ]
    everything = admin_gateway.admin("GET", "/audit", params={"limit": 1000})
    assert "audit-secret-value" not in everything.text


def test_a_refused_cli_change_leaves_no_audit_entry(admin_gateway: AdminGateway) -> None:
    assert admin_gateway.nxs("customers", "create", "twice").returncode == 0
    assert admin_gateway.nxs("customers", "create", "twice").returncode == 2
    assert audit_of(admin_gateway, "twice") == [("cli", "customers.create")]
