"""The SDK proxy only calls fal's own hosts: every other `x-fal-target-url` is a 400 and
nothing reaches the upstream."""

from __future__ import annotations

import pytest
from tests.e2e.conftest import GOOD_KEY, Customer, Gateway

ACCOUNT = GOOD_KEY.split(":")[0]

REFUSED = [
    "https://evil.com/fal-ai/flux/dev",
    "http://fal.run/fal-ai/flux/dev",
    "https://127.0.0.1/fal-ai/flux/dev",
    "https://[::1]/fal-ai/flux/dev",
    "https://169.254.169.254/latest/meta-data",
    "https://fal.run@evil.com/fal-ai/flux/dev",
    "https://user:pass@fal.run/fal-ai/flux/dev",
    "https://evil.com#@fal.run/fal-ai/flux/dev",
    "https://evil.com\\@fal.run/fal-ai/flux/dev",
    "https://fal.run:8443/fal-ai/flux/dev",
    "https://fal.run.evil.com/fal-ai/flux/dev",
    "https://evilfal.run/fal-ai/flux/dev",
    "https://api.fal.ai/v1/keys",
    "https://rest.fal.ai/admin/secrets",
    "https://fal.run/../evil.com/x",
    "https://queue.fal.run/fal-ai/%2e%2E/evil.com/x",
    "https://fal.run/fal-ai/.%2e/x",
    "ftp://fal.run/fal-ai/flux/dev",
    "fal.run/fal-ai/flux/dev",
    "",
]


@pytest.mark.parametrize("target", REFUSED)
@pytest.mark.parametrize("route", ["/api/proxy", "/api/fal/proxy"])
def test_disallowed_target_is_400_and_nothing_leaves(
    gateway: Gateway, alice: Customer, target: str, route: str
) -> None:
    before = len(gateway.deployment.received(ACCOUNT))
    headers = {"x-fal-target-url": target} if target else {}
    response = gateway.request("POST", route, alice.key, json={"prompt": "x"}, headers=headers)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"detail", "error_type"}
    assert len(gateway.deployment.received(ACCOUNT)) == before


@pytest.mark.parametrize(
    ("method", "target", "field"),
    [
        ("POST", "https://fal.run/fal-ai/flux/dev", "images"),
        ("GET", "https://queue.fal.run/fal-ai/flux/requests/{id}/status?logs=1", "status"),
        ("GET", "https://queue.fal.run/fal-ai/flux/requests/{id}", "images"),
        ("PUT", "https://queue.fal.run/fal-ai/flux/requests/{id}/cancel", "status"),
    ],
)
@pytest.mark.parametrize("route", ["/api/proxy", "/api/fal/proxy"])
def test_allowed_targets_are_forwarded(
    gateway: Gateway, alice: Customer, route: str, method: str, target: str, field: str
) -> None:
    submitted = gateway.request(
        "POST",
        route,
        alice.key,
        json={"prompt": "x"},
        headers={"x-fal-target-url": "https://queue.fal.run/fal-ai/flux/dev"},
    )
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    if field == "images":
        gateway.wait_completed("fal-ai/flux", request_id, alice.key)
    headers = {"x-fal-target-url": target.format(id=request_id)}
    body = {"prompt": "y"} if method == "POST" else None
    response = gateway.request(method, route, alice.key, json=body, headers=headers)
    assert response.status_code in (200, 202, 400), response.text
    assert field in response.json()


def test_rest_targets_on_the_allow_list_are_forwarded(gateway: Gateway, alice: Customer) -> None:
    target = "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3"
    response = gateway.request(
        "POST",
        "/api/proxy",
        alice.key,
        json={"content_type": "text/plain", "file_name": "a.txt"},
        headers={"x-fal-target-url": target},
    )
    assert response.status_code == 200, response.text
    assert {"upload_url", "file_url"} <= set(response.json())
    token = gateway.request(
        "POST",
        "/api/proxy",
        alice.key,
        json={"allowed_apps": ["flux"], "token_expiration": 120},
        headers={"x-fal-target-url": "https://rest.alpha.fal.ai/tokens/"},
    )
    assert token.status_code == 200, token.text
    assert isinstance(token.json(), str)
