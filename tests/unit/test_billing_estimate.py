"""Reservation estimates from a request's input: sizes, counts, durations, garbage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nxs.billing.estimate import defaults_for, estimate_units, reservation
from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit

FLUX = defaults_for("fal-ai/flux/dev")
KLING = defaults_for("fal-ai/kling-video/v2/master/text-to-video")
OTHER = defaults_for("fal-ai/fast-sdxl")


def test_images_reserved_per_num_images_default_one() -> None:
    assert estimate_units(Unit.IMAGE, {"prompt": "x", "num_images": 3}, FLUX) == 3
    assert estimate_units(Unit.IMAGE, {"prompt": "x"}, FLUX) == 1


@pytest.mark.parametrize(
    ("size", "megapixels"),
    [
        ("square_hd", "1.05"),  # 1.048576
        ("square", "0.27"),  # 0.262144
        ("portrait_4_3", "0.79"),  # 0.786432
        ("portrait_16_9", "0.59"),  # 0.589824
        ("landscape_4_3", "0.79"),
        ("landscape_16_9", "0.59"),
        ({"width": 1000, "height": 1000}, "1.00"),
        ({"width": 1920, "height": 1080}, "2.08"),  # 2.0736
    ],
)
def test_megapixels_from_image_size_round_up_to_a_hundredth(size: object, megapixels: str) -> None:
    assert estimate_units(Unit.MEGAPIXEL, {"image_size": size}, OTHER) == Decimal(megapixels)


def test_megapixels_multiply_by_num_images() -> None:
    payload = {"image_size": "landscape_4_3", "num_images": 4}  # 4 × 0.786432 = 3.145728
    assert estimate_units(Unit.MEGAPIXEL, payload, FLUX) == Decimal("3.15")


def test_flux_defaults_to_landscape_4_3_others_to_square_hd() -> None:
    assert estimate_units(Unit.MEGAPIXEL, {}, FLUX) == Decimal("0.79")
    assert estimate_units(Unit.MEGAPIXEL, {}, OTHER) == Decimal("1.05")


@pytest.mark.parametrize(
    ("duration", "seconds"), [("5", 5), (5, 5), ("10s", 10), ("10", 10), (7.5, 8), (" 6 s", 6)]
)
def test_video_seconds_from_duration(duration: object, seconds: int) -> None:
    assert estimate_units(Unit.VIDEO_SECOND, {"duration": duration}, KLING) == seconds


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "not json",
        [1, 2],
        {"num_images": "many", "image_size": "huge", "duration": "soon"},
        {"num_images": 0, "image_size": {"width": -1, "height": 10}, "duration": -5},
        {"num_images": True, "image_size": {"width": "1024"}, "duration": "nan"},
        {"num_images": 2.5, "image_size": 12, "duration": {"s": 1}},
    ],
)
def test_garbage_input_falls_back_to_the_models_defaults(payload: object) -> None:
    assert estimate_units(Unit.IMAGE, payload, FLUX) == 1
    assert estimate_units(Unit.MEGAPIXEL, payload, FLUX) == Decimal("0.79")
    assert estimate_units(Unit.VIDEO_SECOND, payload, KLING) == 5


def test_request_unit_reserves_one_and_gpu_seconds_the_family_default() -> None:
    assert estimate_units(Unit.REQUEST, {"num_images": 4}, OTHER) == 1
    assert estimate_units(Unit.GPU_SECOND, {}, OTHER) == OTHER.gpu_seconds


def test_reservation_prices_the_estimate_with_the_plan_multiplier() -> None:
    rule = PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.025"))
    held = reservation(rule, {"num_images": 2}, FLUX, Decimal("1.2"))
    assert held == Money.parse("0.06")
