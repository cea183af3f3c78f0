"""Seed 000's error table, each answered in fal's shape `{"detail", "error_type"}`."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway, eventually

FIFTY_ONE_MB = 51 * 1024 * 1024
PROMPT = {"prompt": "a fox"}


def assert_fal_error(response: httpx.Response, status: int, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "error_type"}
    if detail is not None:
        assert body["detail"] == detail


@pytest.mark.parametrize(
    "authorization",
    [None, "Key nxs_not-a-real-key", "Bearer nxs_not-a-real-key", "Key fal-style:key", "Basic x"],
)
def test_missing_or_invalid_key_is_401(gateway: Gateway, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = gateway.request("POST", "/fal-ai/flux/dev", json={}, headers=headers)
    assert_fal_error(response, 401, "Missing or invalid API key")


def test_revoked_key_is_401_within_seconds(gateway: Gateway, shared: Deployment) -> None:
    customer = gateway.customer("revoked")
    shared.nxs("keys", "revoke", customer.key_id)
    assert eventually(
        lambda: gateway.request("GET", "/fal-ai/flux/requests/x", customer.key).status_code == 401
    )


@pytest.mark.parametrize("scheme", ["Key", "Bearer"])
def test_suspended_customer_is_402(gateway: Gateway, shared: Deployment, scheme: str) -> None:
    customer = gateway.customer("late-payer")
    shared.nxs("customers", "suspend", customer.name)
    assert eventually(
        lambda: (
            gateway.request("POST", "/fal-ai/flux/dev", customer.key, json=PROMPT).status_code
            == 402
        )
    )
    response = gateway.request("POST", "/fal-ai/flux/dev", customer.key, scheme, json=PROMPT)
    assert_fal_error(response, 402, "Subscription not active")
    shared.nxs("customers", "resume", customer.name)
    assert eventually(
        lambda: (
            gateway.request("POST", "/fal-ai/flux/dev", customer.key, json=PROMPT).status_code
            == 200
        )
    )


def test_body_over_50mb_is_413_from_content_length(gateway: Gateway, alice: Customer) -> None:
    parts = urlsplit(gateway.url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    connection.putrequest("POST", "/fal-ai/flux/dev")
    connection.putheader("Authorization", f"Key {alice.key}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(FIFTY_ONE_MB))
    connection.endheaders()  # no body sent: the gateway must not wait for it
    try:
        response = connection.getresponse()
        assert response.status == 413
        assert b"Request body too large (max 50MB)" in response.read()
    finally:
        connection.close()


def test_chunked_body_over_50mb_is_413(gateway: Gateway, alice: Customer) -> None:
    parts = urlsplit(gateway.url)
    with socket.create_connection(
        (parts.hostname or "127.0.0.1", parts.port or 80), timeout=10
    ) as sock:
        head = (
            f"POST /fal-ai/flux/dev HTTP/1.1\r\nHost: x\r\nAuthorization: Key {alice.key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"%x\r\n%s\r\n" % (1024 * 1024, b" " * (1024 * 1024))
        try:
            for _ in range(60):
                sock.sendall(chunk)
        except OSError:
            pass  # the gateway answered and closed before reading it all
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")


def test_no_upstream_keys_is_503(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    response = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={})
    assert_fal_error(response, 503, "No upstream keys configured")
    assert gateway.request("GET", "/readyz").status_code == 503


def test_every_upstream_key_rate_limited_is_429_with_retry_after(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("limited", "limited-429:secret")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    response = gateway.request("POST", "/queue/fal-ai/flux/dev", customer.key, json={"prompt": "x"})
    assert_fal_error(response, 429, "All upstream keys are busy — retry shortly")
    assert response.headers["Retry-After"] == "1"


def test_every_upstream_key_failing_is_502(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("gone", "invalid-502:secret")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    response = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": "x"})
    assert_fal_error(response, 502, "All upstream keys failed — try again later")


def test_health_and_metrics_are_served(gateway: Gateway, alice: Customer) -> None:
    gateway.request("POST", "/fal-ai/flux/dev", alice.key, json={"prompt": "a"})
    assert gateway.request("GET", "/healthz").json() == {"status": "ok"}
    assert gateway.request("GET", "/readyz").status_code == 200
    metrics = gateway.metrics()
    assert 'nxs_requests_total{route="run",status="200"}' in metrics
    assert "nxs_upstream_latency_seconds_count" in metrics
    assert 'nxs_upstream_keys{state="active"} 1' in metrics


def test_access_log_has_request_ids_and_never_keys(gateway: Gateway, alice: Customer) -> None:
    response = gateway.request("POST", "/fal-ai/flux/dev", alice.key, json={"prompt": "a"})
    request_id = response.headers["x-nxs-request-id"]
    log = gateway.server.log()
    assert eventually(lambda: request_id in gateway.server.log())
    log = gateway.server.log()
    assert alice.key not in log
    assert "secret-main" not in log
