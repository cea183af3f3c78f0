"""Price rules: fal's unit names, exact-then-longest-glob lookup, unknown endpoints, import."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nxs.billing.errors import InvalidBillingInput, NoPrice, PricingResponseInvalid
from nxs.billing.pricing import (
    PriceBook,
    PriceRule,
    Unit,
    UnknownEndpoints,
    fal_unit_name,
    header_units_apply,
    parse_pricing_body,
    parse_unit,
)


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("image", Unit.IMAGE),
        ("images", Unit.IMAGE),
        ("megapixels", Unit.MEGAPIXEL),
        ("megapixel", Unit.MEGAPIXEL),
        ("video_second", Unit.VIDEO_SECOND),
        ("second", Unit.VIDEO_SECOND),
        ("request", Unit.REQUEST),
        ("gpu_second", Unit.GPU_SECOND),
        (" Image ", Unit.IMAGE),
    ],
)
def test_fal_unit_strings_map_to_units(name: str, unit: Unit) -> None:
    assert parse_unit(name) is unit


def test_unknown_unit_is_a_clear_error() -> None:
    with pytest.raises(InvalidBillingInput, match="unknown pricing unit 'token'"):
        parse_unit("token")


@pytest.fixture
def book() -> PriceBook:
    return PriceBook(
        [
            PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.025")),
            PriceRule("fal-ai/*", Unit.REQUEST, Decimal("0.01")),
            PriceRule("fal-ai/flux/*", Unit.MEGAPIXEL, Decimal("0.02")),
        ]
    )


def test_exact_endpoint_rule_beats_any_glob(book: PriceBook) -> None:
    assert book.price("fal-ai/flux/dev").unit is Unit.IMAGE


def test_longest_matching_glob_wins(book: PriceBook) -> None:
    assert book.price("fal-ai/flux/schnell").pattern == "fal-ai/flux/*"
    assert book.price("fal-ai/fast-sdxl").pattern == "fal-ai/*"


def test_lookup_is_stable_when_repeated(book: PriceBook) -> None:
    first = book.price("fal-ai/flux/schnell")
    assert book.price("fal-ai/flux/schnell") is first


def test_unknown_endpoint_refused_by_default_policy(book: PriceBook) -> None:
    with pytest.raises(NoPrice) as caught:
        book.price("xai/grok-imagine-image")
    assert caught.value.status == 403
    assert caught.value.body()["detail"] == "No price configured for this endpoint"


def test_unknown_endpoint_can_be_charged_a_flat_request_price() -> None:
    book = PriceBook(unknown=UnknownEndpoints.charge_per_request("0.05"))
    rule = book.price("xai/grok-imagine-image")
    assert (rule.unit, rule.unit_price) == (Unit.REQUEST, Decimal("0.05"))


def test_merged_rules_replace_same_pattern_and_keep_others(book: PriceBook) -> None:
    updated = book.merged([PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.03"))])
    assert updated.price("fal-ai/flux/dev").unit_price == Decimal("0.03")
    assert updated.price("fal-ai/flux/schnell").unit is Unit.MEGAPIXEL
    assert book.price("fal-ai/flux/dev").unit_price == Decimal("0.025")


def test_pricing_api_body_becomes_rules() -> None:
    imported = parse_pricing_body(
        {
            "prices": [
                {
                    "endpoint_id": "fal-ai/flux/dev",
                    "unit_price": 0.025,
                    "unit": "image",
                    "currency": "USD",
                },
                {
                    "endpoint_id": "fal-ai/kling-video/v2/master/text-to-video",
                    "unit_price": 0.28,
                    "unit": "video_second",
                    "currency": "USD",
                },
            ],
            "next_cursor": None,
            "has_more": False,
        }
    )
    assert imported.rules == (
        PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.025")),
        PriceRule("fal-ai/kling-video/v2/master/text-to-video", Unit.VIDEO_SECOND, Decimal("0.28")),
    )
    assert (imported.skipped, imported.has_more, imported.next_cursor) == ((), False, None)


def test_pricing_rows_that_cannot_be_used_are_skipped_with_a_reason() -> None:
    imported = parse_pricing_body(
        {
            "prices": [
                {"endpoint_id": "a/tokens", "unit_price": 1, "unit": "token", "currency": "USD"},
                {"endpoint_id": "a/eur", "unit_price": 1, "unit": "image", "currency": "EUR"},
                {"endpoint_id": "a/neg", "unit_price": -1, "unit": "image", "currency": "USD"},
                "garbage",
                {"endpoint_id": "a/ok", "unit_price": "0.5", "unit": "request"},
            ],
            "next_cursor": "abc",
            "has_more": True,
        }
    )
    assert [rule.pattern for rule in imported.rules] == ["a/ok"]
    reasons = dict(imported.skipped)
    assert "unknown pricing unit" in reasons["a/tokens"]
    assert "EUR" in reasons["a/eur"]
    assert "negative" in reasons["a/neg"]
    assert (imported.next_cursor, imported.has_more) == ("abc", True)
    assert dict(imported.fal_units) == {  # what fal bills in, even for rows not imported
        "a/tokens": "token",
        "a/eur": "image",
        "a/neg": "image",
        "a/ok": "request",
    }


@pytest.mark.parametrize("body", [None, [], {"detail": "nope"}, {"prices": "x"}])
def test_pricing_body_of_the_wrong_shape_is_rejected(body: object) -> None:
    with pytest.raises(PricingResponseInvalid):
        parse_pricing_body(body)


@pytest.mark.parametrize(
    ("name", "remembered"),
    [("megapixels", "megapixel"), (" Images ", "image"), ("1K Tokens", "1k tokens"), ("", None)],
)
def test_fals_unit_is_remembered_by_its_own_name(name: str, remembered: str | None) -> None:
    assert fal_unit_name(name) == remembered


@pytest.mark.parametrize(
    ("unit", "fal_unit", "applies"),
    [
        (Unit.MEGAPIXEL, "megapixel", True),
        (Unit.IMAGE, "megapixel", False),  # 0.79 megapixels are not 0.79 images
        (Unit.REQUEST, "megapixel", False),
        (Unit.GPU_SECOND, "token", False),
        (Unit.IMAGE, None, False),  # fal's unit unknown: the body shows images
        (Unit.MEGAPIXEL, None, False),
        (Unit.VIDEO_SECOND, None, False),
        (Unit.REQUEST, None, False),  # a request is one, whatever fal counted
        (Unit.GPU_SECOND, None, True),  # nothing else tells GPU seconds
    ],
)
def test_billable_units_apply_only_in_the_rules_unit(
    unit: Unit, fal_unit: str | None, applies: bool
) -> None:
    assert header_units_apply(unit, fal_unit) is applies


def test_the_book_decides_header_units_per_endpoint_from_fals_units() -> None:
    book = PriceBook(
        [
            PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.03")),  # the operator's
            PriceRule("fal-ai/flux/*", Unit.MEGAPIXEL, Decimal("0.02")),
        ],
        UnknownEndpoints.charge_per_request("0.01"),
        fal_units={"fal-ai/flux/dev": "megapixel", "fal-ai/flux/pro": "image"},
    )
    assert book.price("fal-ai/flux/dev").header_units is False
    assert book.price("fal-ai/flux/schnell").header_units is False  # fal's unit unknown
    assert book.price("fal-ai/flux/pro").header_units is False  # fal bills it per image
    synced = book.merged([PriceRule("fal-ai/flux/dev", Unit.MEGAPIXEL, Decimal("0.025"))])
    assert synced.price("fal-ai/flux/dev").header_units is True
    # the per-request fallback: one request each, not fal's count (seconds of video …)
    assert book.price("acme/anything").header_units is False


def test_price_rules_stay_cheap_hashable_memo_keys() -> None:
    rule = PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.03"))
    bound = PriceBook([rule], fal_units={"fal-ai/flux/dev": "image"}).price("fal-ai/flux/dev")
    assert not hasattr(rule, "__dict__")
    assert bound.header_units and {rule: 1, bound: 2}[bound] == 2 and rule != bound
