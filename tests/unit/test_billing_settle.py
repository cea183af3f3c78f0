"""Settlement from what came back, and the refund rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nxs.billing.money import Money
from nxs.billing.pricing import PriceRule, Unit
from nxs.billing.settle import Outcome, UnitsSource, Verdict, settle, verdict

# As `PriceBook.price` hands them out: fal bills flux/dev in megapixels and fast-sdxl in images.
FLUX_MP = PriceRule("fal-ai/flux/dev", Unit.MEGAPIXEL, Decimal("0.025"), header_units=True)
FLUX_IMAGES = PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.025"))  # not fal's unit
SDXL = PriceRule("fal-ai/fast-sdxl", Unit.IMAGE, Decimal("0.025"), header_units=True)
KLING = PriceRule("fal-ai/kling-video/v2/master/text-to-video", Unit.VIDEO_SECOND, Decimal("0.28"))
HELD = Money.parse("0.10")


def image(width: int, height: int) -> dict[str, object]:
    return {"url": "https://v3.fal.media/files/x.png", "width": width, "height": height}


def test_a_1024x768_flux_image_settles_at_0_786432_megapixels() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_MP,
        reserved=HELD,
        estimated_units=Decimal("0.79"),
        multiplier=Decimal(1),
        body={"images": [image(1024, 768)], "seed": 1},
    )
    assert (result.verdict, result.units, result.source) == (
        Verdict.CHARGE,
        Decimal("0.786432"),
        UnitsSource.BODY,
    )
    assert result.cost == Money(19_661)
    assert result.release == HELD - Money(19_661)


def test_billable_units_header_overrides_the_body() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_MP,
        reserved=HELD,
        estimated_units=Decimal("0.79"),
        multiplier=Decimal(1),
        headers={"X-Fal-Billable-Units": "0.79"},
        body={"images": [image(1024, 768)]},
    )
    assert (result.units, result.source) == (Decimal("0.79"), UnitsSource.HEADER)
    assert result.cost == Money(19_750)


def test_garbage_header_is_ignored_in_favour_of_the_body() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_IMAGES,
        reserved=HELD,
        estimated_units=Decimal(4),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "lots"},
        body={"images": [image(512, 512), image(512, 512)]},
    )
    assert (result.units, result.source) == (Decimal(2), UnitsSource.BODY)


def test_images_are_counted_from_the_result_and_the_rest_released() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_IMAGES,
        reserved=Money.parse("0.10"),
        estimated_units=Decimal(4),
        multiplier=Decimal(1),
        body={"images": [image(512, 512)] * 3},
    )
    assert result.cost == Money.parse("0.075")
    assert result.release == Money.parse("0.025")


def test_video_seconds_settle_from_the_reported_duration() -> None:
    body = {"video": {"url": "https://v3.fal.media/files/v.mp4", "duration": 5.04}}
    result = settle(
        Outcome.COMPLETED,
        KLING,
        reserved=Money.parse("1.40"),
        estimated_units=Decimal(5),
        multiplier=Decimal(1),
        body=body,
    )
    assert result.cost == Money.parse("1.4112")
    assert result.overrun == Money.parse("0.0112")


def test_video_without_a_duration_settles_at_the_reserved_estimate() -> None:
    body = {"video": {"url": "https://v3.fal.media/files/v.mp4", "content_type": "video/mp4"}}
    result = settle(
        Outcome.COMPLETED,
        KLING,
        reserved=Money.parse("2.80"),
        estimated_units=Decimal(10),
        multiplier=Decimal(1),
        body=body,
    )
    assert (result.units, result.source) == (Decimal(10), UnitsSource.ESTIMATE)
    assert result.release == Money.zero()


def test_plan_multiplier_applies_to_the_settled_cost() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_IMAGES,
        reserved=HELD,
        estimated_units=Decimal(1),
        multiplier=Decimal("1.5"),
        body={"images": [image(1024, 768)]},
    )
    assert result.cost == Money.parse("0.0375")


@pytest.mark.parametrize(
    "outcome",
    [Outcome.ERROR_RESULT, Outcome.UPSTREAM_5XX],
)
def test_upstream_failures_refund_everything(outcome: Outcome) -> None:
    result = settle(
        outcome,
        FLUX_IMAGES,
        reserved=HELD,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "1"},
        body={"images": [image(1024, 768)]},
    )
    assert (result.verdict, result.cost, result.release) == (Verdict.REFUND, Money.zero(), HELD)


@pytest.mark.parametrize("outcome", [Outcome.POLL_TIMEOUT, Outcome.CLIENT_GONE])
def test_our_own_timeouts_never_refund_the_hold_stays(outcome: Outcome) -> None:
    result = settle(
        outcome, FLUX_IMAGES, reserved=HELD, estimated_units=Decimal(1), multiplier=Decimal(1)
    )
    assert verdict(outcome) is Verdict.HOLD
    assert (result.verdict, result.release) == (Verdict.HOLD, Money.zero())


def test_a_422_costs_nothing_unless_upstream_billed_units() -> None:
    free = settle(
        Outcome.REJECTED,
        SDXL,
        reserved=HELD,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "0"},
    )
    billed = settle(
        Outcome.REJECTED,
        SDXL,
        reserved=HELD,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "1"},
    )
    assert (free.verdict, free.cost) == (Verdict.REFUND, Money.zero())
    assert (billed.verdict, billed.cost) == (Verdict.CHARGE, Money.parse("0.025"))


def test_request_priced_endpoints_settle_at_one_unit() -> None:
    rule = PriceRule("openai/whatever", Unit.REQUEST, Decimal("0.05"))
    result = settle(
        Outcome.COMPLETED,
        rule,
        reserved=Money.parse("0.05"),
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        body={"text": "hi"},
    )
    assert (result.cost, result.release) == (Money.parse("0.05"), Money.zero())


def test_fals_megapixels_are_not_taken_as_images_the_body_counts_them() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_IMAGES,
        reserved=HELD,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "0.79"},
        body={"images": [image(1024, 768)]},
    )
    assert (result.units, result.source) == (Decimal(1), UnitsSource.BODY)
    assert result.cost == Money.parse("0.025")


def test_billable_units_in_another_unit_without_a_body_settle_at_the_estimate() -> None:
    result = settle(
        Outcome.COMPLETED,
        FLUX_IMAGES,
        reserved=HELD,
        estimated_units=Decimal(2),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "1.57"},
    )
    assert (result.units, result.source) == (Decimal(2), UnitsSource.ESTIMATE)
    assert result.cost == Money.parse("0.05")


def test_a_422_fal_billed_in_another_unit_is_charged_at_the_estimate() -> None:
    result = settle(
        Outcome.REJECTED,
        FLUX_IMAGES,
        reserved=HELD,
        estimated_units=Decimal(1),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "0.79"},  # fal billed it, counting megapixels
    )
    assert (result.verdict, result.units, result.source) == (
        Verdict.CHARGE,
        Decimal(1),
        UnitsSource.ESTIMATE,
    )
    assert result.cost == Money.parse("0.025")


def test_gpu_seconds_settle_from_the_header_when_it_counts_them() -> None:
    rule = PriceRule("acme/llm", Unit.GPU_SECOND, Decimal("0.001"), header_units=True)
    result = settle(
        Outcome.COMPLETED,
        rule,
        reserved=Money.zero(),
        estimated_units=Decimal(10),
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": "3.5"},
        body={"timings": {"inference": 2.0}},
    )
    assert (result.units, result.source) == (Decimal("3.5"), UnitsSource.HEADER)
