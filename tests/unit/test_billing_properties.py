"""Property tests: billing never under-reserves, never raises on garbage, never leaks money."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nxs.billing.estimate import IMAGE_SIZES, defaults_for, estimate_units  # noqa: E402
from nxs.billing.limits import InProcessLimiter, Limit, Permit  # noqa: E402
from nxs.billing.money import Money  # noqa: E402
from nxs.billing.pricing import PriceRule, Unit  # noqa: E402
from nxs.billing.settle import Outcome, body_units, settle  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
FIELDS = st.dictionaries(
    st.sampled_from(["num_images", "image_size", "duration", "prompt"]), JSON, max_size=4
)
SIZES = st.sampled_from(sorted(IMAGE_SIZES)) | st.fixed_dictionaries(
    {"width": st.integers(1, 4096), "height": st.integers(1, 4096)}
)


@given(st.integers(min_value=0, max_value=10**15))
def test_printed_amounts_parse_back_to_the_same_money(micros: int) -> None:
    assert Money.parse(str(Money(micros))) == Money(micros)


@given(st.one_of(JSON, FIELDS), st.sampled_from(list(Unit)))
def test_estimates_never_raise_on_any_json(payload: object, unit: Unit) -> None:
    assert estimate_units(unit, payload, defaults_for("fal-ai/flux/dev")) >= 0


@given(SIZES, st.integers(1, 4))
def test_megapixel_estimate_covers_body_and_2_decimal_header_settlement(
    size: object, count: int
) -> None:
    payload = {"image_size": size, "num_images": count}
    reserved = estimate_units(Unit.MEGAPIXEL, payload, defaults_for("fal-ai/flux/dev"))
    width, height = IMAGE_SIZES[size] if isinstance(size, str) else (size["width"], size["height"])  # type: ignore[index]
    body = {"images": [{"width": width, "height": height}] * count}
    actual = body_units(Unit.MEGAPIXEL, body)
    assert actual is not None
    assert reserved >= actual
    assert reserved >= actual.quantize(Decimal("0.01"), ROUND_HALF_UP)


@given(
    st.integers(0, 10**6),
    st.decimals(min_value=0, max_value=100, places=3),
    st.decimals(min_value=0, max_value=10, places=9),
    st.sampled_from(list(Outcome)),
)
def test_settlement_splits_the_hold_into_cost_and_release_exactly(
    reserved_micros: int, units: Decimal, price: Decimal, outcome: Outcome
) -> None:
    rule = PriceRule("x/y", Unit.GPU_SECOND, price)
    reserved = Money(reserved_micros)
    result = settle(
        outcome,
        rule,
        reserved=reserved,
        estimated_units=units,
        multiplier=Decimal(1),
        headers={"x-fal-billable-units": str(units)},
    )
    assert result.cost.micros >= 0
    if result.verdict.value != "hold":
        assert result.cost + result.release == reserved


@given(st.integers(1, 120), st.lists(st.floats(0, 5), min_size=1, max_size=200))
def test_admissions_never_exceed_the_bucket(rpm: int, steps: list[float]) -> None:
    now = [0.0]
    limiter = InProcessLimiter(clock=lambda: now[0])
    admitted = 0
    for step in steps:
        now[0] += step
        admitted += isinstance(limiter.try_acquire([Limit("key:a", rpm=rpm)]), Permit)
    assert admitted <= rpm + now[0] * rpm / 60 + 1e-6


@given(st.integers(1, 4), st.sampled_from(["5", "10", 5, 10, "5s", "10s"]))
def test_image_and_video_estimates_cover_what_the_result_shows(
    count: int, duration: object
) -> None:
    images = {"images": [{"width": 1024, "height": 768}] * count}
    reserved_images = estimate_units(Unit.IMAGE, {"num_images": count}, defaults_for("x/y"))
    assert reserved_images >= (body_units(Unit.IMAGE, images) or 0)
    seconds = int(str(duration).removesuffix("s"))
    video = {"video": {"url": "u", "duration": seconds}}
    reserved_video = estimate_units(Unit.VIDEO_SECOND, {"duration": duration}, defaults_for("x/y"))
    assert reserved_video >= (body_units(Unit.VIDEO_SECOND, video) or 0)
