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


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_allowed_targets_are_forwarded(gateway: Gateway, alice: Customer, method: str) -> None:
    submitted = gateway.request(
        "POST",
        "/api/fal/proxy",
        alice.key,
        json={"prompt": "x"},
        headers={"x-fal-target-url": "https://queue.fal.run/fal-ai/flux/dev"},
    )
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    tail = {"GET": "/status?logs=1", "POST": "", "PUT": "/cancel"}[method]
    if method == "POST":
        target = "https://fal.run/fal-ai/flux/dev"
    else:
        target = f"https://queue.fal.run/fal-ai/flux/requests/{request_id}{tail}"
    response = gateway.request(
        method, "/api/proxy", alice.key, json={"prompt": "y"}, headers={"x-fal-target-url": target}
    )
    assert response.status_code in (200, 202, 400), response.text
    assert "request_id" in response.json() or "images" in response.json() or response.json()
