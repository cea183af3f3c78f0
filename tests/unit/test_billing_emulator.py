"""Billing's arithmetic against the real emulator: its prices and its billable units."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from tests.support.servers import RunningServer

from nxs.billing.estimate import defaults_for, estimate_units
from nxs.billing.money import Money
from nxs.billing.outcomes import outcome_of_result, outcome_of_run, outcome_of_status
from nxs.billing.pricing import PriceBook, Unit, parse_pricing_body
from nxs.billing.settle import UnitsSource, Verdict, settle

KEY = {"Authorization": "Key billing-test:secret"}
ENDPOINTS = ["fal-ai/flux/dev", "fal-ai/fast-sdxl", "fal-ai/kling-video/v2/master/text-to-video"]
Answer = tuple[int, dict[str, str], Any]


def call(method: str, url: str, payload: object = None) -> Answer:
    data = None if payload is None else json.dumps(payload).encode()
    headers = {**KEY, "content-type": "application/json"} if data else KEY
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture(scope="module")
def book(emulator: RunningServer) -> PriceBook:
    query = ",".join(ENDPOINTS)
    status, _, body = call(
        "GET", f"{emulator.url}/api.fal.ai/v1/models/pricing?endpoint_id={query}"
    )
    assert status == 200
    imported = parse_pricing_body(body)
    assert imported.skipped == ()
    return PriceBook(imported.rules, fal_units=dict(imported.fal_units))


def test_pricing_sync_core_reads_the_emulators_prices(book: PriceBook) -> None:
    assert book.price("fal-ai/flux/dev").unit is Unit.MEGAPIXEL
    assert book.price("fal-ai/fast-sdxl").unit_price == Decimal("0.003")
    assert book.price("fal-ai/kling-video/v2/master/text-to-video").unit is Unit.VIDEO_SECOND


@pytest.mark.parametrize(
    ("endpoint", "payload"),
    [
        ("fal-ai/flux/dev", {"prompt": "a cat"}),
        ("fal-ai/flux/dev", {"prompt": "a cat", "num_images": 3, "image_size": "square"}),
        ("fal-ai/flux/dev", {"prompt": "a cat", "image_size": {"width": 640, "height": 480}}),
        ("fal-ai/fast-sdxl", {"prompt": "a dog", "num_images": 2}),
        ("fal-ai/kling-video/v2/master/text-to-video", {"prompt": "waves", "duration": "10"}),
    ],
)
def test_settlement_equals_the_emulators_billable_units_and_fits_the_hold(
    emulator: RunningServer, book: PriceBook, endpoint: str, payload: dict[str, object]
) -> None:
    rule = book.price(endpoint)
    estimated = estimate_units(rule.unit, payload, defaults_for(endpoint))
    held = Money.parse("100")
    status, headers, body = call("POST", f"{emulator.url}/fal.run/{endpoint}", payload)
    result = settle(
        outcome_of_run(status),
        rule,
        reserved=held,
        estimated_units=estimated,
        multiplier=Decimal(1),
        headers=headers,
        body=body,
    )
    assert (result.verdict, result.source) == (Verdict.CHARGE, UnitsSource.HEADER)
    assert result.units == Decimal(headers["x-fal-billable-units"])
    assert estimated >= result.units
    from_body = settle(
        outcome_of_run(status),
        rule,
        reserved=held,
        estimated_units=estimated,
        multiplier=Decimal(1),
        body=body,
    )
    assert round(from_body.units, 2) == result.units


def test_an_error_result_from_the_queue_is_refunded(
    emulator: RunningServer, book: PriceBook
) -> None:
    base = f"{emulator.url}/queue.fal.run"
    _, _, submitted = call("POST", f"{base}/fal-ai/flux/dev", {"prompt": "[fail] a cat"})
    status_url = f"{base}/fal-ai/flux/requests/{submitted['request_id']}/status"
    deadline = time.monotonic() + 20
    while (answer := call("GET", status_url))[2].get("status") != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert outcome_of_status(answer[0], answer[2]) is not None
    status, headers, body = call("GET", status_url.removesuffix("/status"))
    outcome = outcome_of_result(status, headers)
    assert outcome is not None
    held = Money.parse("0.02")
    result = settle(
        outcome,
        book.price("fal-ai/flux/dev"),
        reserved=held,
        estimated_units=Decimal("0.79"),
        multiplier=Decimal(1),
        headers=headers,
        body=body,
    )
    assert (result.verdict, result.cost, result.release) == (Verdict.REFUND, Money.zero(), held)
