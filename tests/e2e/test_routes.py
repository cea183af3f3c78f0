"""Seed 000's URL patterns (and seed 002's forms) through a real gateway to the emulator."""

from __future__ import annotations

import pytest
from tests.e2e.conftest import GOOD_KEY, Customer, Deployment, Gateway

ACCOUNT = GOOD_KEY.split(":")[0]

SCHEMES = ["Key", "Bearer"]


def reached(deployment: Deployment, before: int) -> list[str]:
    """Paths that reached the emulator since `before` entries were recorded."""
    return [entry["path"].rstrip("/") for entry in deployment.received(ACCOUNT)[before:]]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/fal-ai/flux/dev", "/fal.run/fal-ai/flux/dev"),
        ("/xai/grok-imagine-image", "/fal.run/xai/grok-imagine-image"),
        ("/flux/dev", "/fal.run/fal-ai/flux/dev"),
        ("/fal-ai/flux/dev/", "/fal.run/fal-ai/flux/dev"),
        ("/queue/fal-ai/flux/dev", "/queue.fal.run/fal-ai/flux/dev"),
        ("/queue/flux/dev", "/queue.fal.run/fal-ai/flux/dev"),
    ],
)
def test_url_pattern_forwards_to_the_seeds_upstream(
    gateway: Gateway, alice: Customer, scheme: str, path: str, upstream: str
) -> None:
    before = len(gateway.deployment.received(ACCOUNT))
    response = gateway.request("POST", path, alice.key, scheme, json={"prompt": "a fox"})
    assert response.status_code not in (401, 404, 502, 503), response.text
    assert upstream in reached(gateway.deployment, before)


def test_run_answers_the_models_output(gateway: Gateway, alice: Customer) -> None:
    response = gateway.request("POST", "/fal-ai/flux/dev", alice.key, json={"prompt": "a fox"})
    assert response.status_code == 200, response.text
    assert response.json()["images"][0]["url"]
    assert response.headers["x-fal-request-id"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_queue_flow_of_the_seeds_curl(gateway: Gateway, alice: Customer, scheme: str) -> None:
    submitted = gateway.request(
        "POST", "/queue/fal-ai/flux/dev", alice.key, scheme, json={"prompt": "a fox"}
    )
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    base = f"/queue/fal-ai/flux/dev/requests/{request_id}"
    completed = gateway.wait_completed("fal-ai/flux/dev", request_id, alice.key)
    assert completed["request_id"] == request_id
    result = gateway.request("GET", base, alice.key, scheme)
    assert result.status_code == 200, result.text
    assert result.json()["images"]


def test_submit_urls_point_at_the_gateway(gateway: Gateway, alice: Customer) -> None:
    body = gateway.submit("fal-ai/flux/dev", alice.key)
    prefix = f"{gateway.url}/queue/fal-ai/flux/requests/{body['request_id']}"
    assert body["response_url"] == prefix
    assert body["status_url"] == prefix + "/status"
    assert body["cancel_url"] == prefix + "/cancel"


@pytest.fixture(scope="module")
def completed(gateway: Gateway, alice: Customer) -> str:
    """A request of alice's that has completed."""
    request_id = str(gateway.submit("fal-ai/flux/dev", alice.key)["request_id"])
    gateway.wait_completed("fal-ai/flux", request_id, alice.key)
    return request_id


@pytest.mark.parametrize(
    "template",
    [
        "/queue/fal-ai/flux/requests/{id}{tail}",  # fal's own form
        "/queue/fal-ai/flux/dev/requests/{id}{tail}",  # seed 000's curl (full endpoint)
        "/fal-ai/flux/requests/{id}{tail}",  # seed 002: no /queue prefix
        "/fal-ai/flux/dev/requests/{id}{tail}/",  # trailing slash
        "/queue/flux/requests/{id}{tail}",  # owner added
    ],
)
def test_status_and_result_forms(
    gateway: Gateway, alice: Customer, completed: str, template: str
) -> None:
    status = gateway.request("GET", template.format(id=completed, tail="/status"), alice.key)
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "COMPLETED"
    assert status.json()["status_url"].startswith(gateway.url + "/queue/fal-ai/flux/requests/")
    result = gateway.request("GET", template.format(id=completed, tail=""), alice.key)
    assert result.status_code == 200, result.text
    assert result.json()["images"]


def test_status_stream_ends_completed_with_gateway_urls(gateway: Gateway, alice: Customer) -> None:
    request_id = gateway.submit("fal-ai/flux/dev", alice.key)["request_id"]
    path = f"/queue/fal-ai/flux/requests/{request_id}/status/stream"
    with gateway.client.stream(
        "GET", gateway.url + path, headers={"Authorization": f"Key {alice.key}"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data:")]
    assert '"COMPLETED"' in events[-1]
    assert f'"status_url":"{gateway.url}/queue/fal-ai/flux/requests/' in events[-1]


def test_cancel_reaches_the_request(gateway: Gateway, alice: Customer) -> None:
    request_id = gateway.submit("fal-ai/flux/dev", alice.key)["request_id"]
    response = gateway.request("PUT", f"/queue/fal-ai/flux/requests/{request_id}/cancel", alice.key)
    assert response.status_code in (202, 400), response.text
    assert response.json()["status"] in ("CANCELLATION_REQUESTED", "ALREADY_COMPLETED")


@pytest.mark.parametrize(
    ("endpoint", "app"),
    [
        ("workflows/fal-ai/my-flow", "workflows/fal-ai/my-flow"),
        ("comfy/fal-ai/graph", "comfy/fal-ai/graph"),
    ],
)
def test_namespaced_endpoints_keep_their_namespace(
    gateway: Gateway, alice: Customer, endpoint: str, app: str
) -> None:
    before = len(gateway.deployment.received(ACCOUNT))
    gateway.request("POST", f"/queue/{endpoint}", alice.key, json={"prompt": "x"})
    assert f"/queue.fal.run/{app}" in reached(gateway.deployment, before)


def test_unknown_gateway_path_is_fal_shaped_404(gateway: Gateway, alice: Customer) -> None:
    response = gateway.request("GET", "/", alice.key)
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "error_type"}


def test_forwarded_host_from_an_untrusted_peer_is_ignored(
    gateway: Gateway, alice: Customer
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"}
    response = gateway.request(
        "POST", "/queue/fal-ai/flux/dev", alice.key, json={"prompt": "a"}, headers=forwarded
    )
    request_id = response.json()["request_id"]
    expected = f"{gateway.url}/queue/fal-ai/flux/requests/{request_id}/status"
    assert response.json()["status_url"] == expected  # NXS_TRUSTED_PROXIES is unset
