"""USD amounts: strict operator input, plain formatting, one half-up rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nxs.billing.errors import InvalidBillingInput
from nxs.billing.money import Money, charge, parse_multiplier
from nxs.billing.pricing import parse_unit_price
from nxs.errors import ValidationFailed, render


@pytest.mark.parametrize(
    ("text", "micros"),
    [("12.50", 12_500_000), ("0", 0), ("0.000001", 1), (7, 7_000_000), (2.5, 2_500_000)],
)
def test_operator_amounts_parse_to_exact_micro_dollars(text: object, micros: int) -> None:
    assert Money.parse(text) == Money(micros)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5", "must not be negative"),
        ("abc", "decimal number"),
        ("NaN", "decimal number"),
        ("inf", "decimal number"),
        ("1e3", "decimal number"),
        ("", "decimal number"),
        ("0.0000001", "more than 6 decimal places"),
        (True, "decimal number"),
        (None, "decimal number"),
        ("99999999999", "at most"),
    ],
)
def test_bad_amounts_are_a_422_naming_the_field(text: object, message: str) -> None:
    with pytest.raises(InvalidBillingInput) as caught:
        Money.parse(text, "amount")
    assert isinstance(caught.value, ValidationFailed)
    assert caught.value.status == 422
    assert message in str(caught.value)
    assert caught.value.detail[0]["loc"] == ["body", "amount"]


def test_bad_amount_renders_in_fals_error_shape() -> None:
    with pytest.raises(InvalidBillingInput) as caught:
        Money.parse("-1")
    body = render(caught.value)
    assert body.startswith(b'{"detail":[{"loc":["body","amount"],"msg":"amount must not be')


def test_trailing_zeros_beyond_six_places_lose_nothing_and_are_accepted() -> None:
    assert Money.parse("1.50000000") == Money(1_500_000)


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (12_500_000, "12.50"),
        (19_661, "0.019661"),
        (0, "0.00"),
        (-250_000, "-0.25"),
        (3, "0.000003"),
    ],
)
def test_amounts_print_as_plain_usd(micros: int, text: str) -> None:
    assert str(Money(micros)) == text


def test_a_flux_megapixel_image_costs_rounded_half_up() -> None:
    # 0.786432 MP × $0.025 = $0.0196608 → 19,660.8 µ$ → 19,661 µ$
    assert charge(Decimal("0.786432"), Decimal("0.025")) == Money(19_661)


def test_exact_half_micro_dollar_rounds_up_never_down() -> None:
    assert charge(Decimal(1), Decimal("0.0000005")) == Money(1)
    assert charge(Decimal(3), Decimal("0.0000005")) == Money(2)  # 1.5 µ$ → 2


def test_multiplier_applies_before_the_single_rounding() -> None:
    # 3 images × $0.0333333 × 1.5 = $0.14999985 → 149,999.85 µ$ → 150,000 µ$
    assert charge(Decimal(3), Decimal("0.0333333"), Decimal("1.5")) == Money(150_000)


def test_multiplier_parses_and_rejects_negative() -> None:
    assert parse_multiplier("1.25") == Decimal("1.25")
    with pytest.raises(InvalidBillingInput, match="multiplier must not be negative"):
        parse_multiplier("-1")


def test_tiny_json_float_prices_are_read_exactly() -> None:
    assert parse_unit_price(0.00001) == Decimal("0.00001")
    assert parse_unit_price(Decimal("1E-5")) == Decimal("0.00001")
    with pytest.raises(InvalidBillingInput):
        parse_unit_price(float("nan"))
