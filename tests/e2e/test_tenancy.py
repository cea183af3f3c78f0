"""Customers only ever see their own queued requests; another's id looks unknown."""

from __future__ import annotations

import pytest
from tests.e2e.conftest import Customer, Gateway

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "tail"),
    [("GET", "/status"), ("GET", ""), ("PUT", "/cancel"), ("GET", "/status/stream")],
)
def test_another_customers_request_is_404_like_an_unknown_one(
    gateway: Gateway, alice: Customer, bob: Customer, method: str, tail: str
) -> None:
    request_id = gateway.submit("fal-ai/flux/dev", alice.key)["request_id"]
    theirs = gateway.request(method, f"/queue/fal-ai/flux/requests/{request_id}{tail}", bob.key)
    unknown = gateway.request(method, f"/queue/fal-ai/flux/requests/{UNKNOWN_ID}{tail}", bob.key)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    mine = gateway.request("GET", f"/queue/fal-ai/flux/requests/{request_id}/status", alice.key)
    assert mine.status_code in (200, 202)


def test_another_customers_request_via_the_sdk_proxy_is_404(
    gateway: Gateway, alice: Customer, bob: Customer
) -> None:
    request_id = gateway.submit("fal-ai/flux/dev", alice.key)["request_id"]
    target = f"https://queue.fal.run/fal-ai/flux/requests/{request_id}/status?logs=0"
    response = gateway.request("GET", "/api/proxy", bob.key, headers={"x-fal-target-url": target})
    assert response.status_code == 404
    own = gateway.request("GET", "/api/proxy", alice.key, headers={"x-fal-target-url": target})
    assert own.status_code in (200, 202)
