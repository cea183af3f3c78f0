"""The reservation estimate: how many units a request will cost, read from its input.

Conservative by construction (see `estimate_units`); input that is missing or garbage
falls back to the model family's defaults and never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from fnmatch import fnmatchcase

from nxs.billing.money import Money, charge
from nxs.billing.pricing import PriceRule, Unit
from nxs.falspec import IMAGE_SIZES

PIXELS_PER_MEGAPIXEL = 1_000_000
# A count, side or duration past anything fal accepts (fal refuses it) is held at this:
# still a huge hold, and products of three stay exact in Decimal's 28 digits.
MAX_FACTOR = 1_000_000
_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class ModelDefaults:
    """What a model family assumes when the input does not say."""

    pattern: str
    num_images: int = 1
    image_size: tuple[int, int] = IMAGE_SIZES["square_hd"]
    duration_seconds: Decimal = Decimal(5)
    gpu_seconds: Decimal = Decimal(10)


# First match wins; the last entry catches everything.
FAMILY_DEFAULTS: tuple[ModelDefaults, ...] = (
    ModelDefaults("fal-ai/flux*", image_size=IMAGE_SIZES["landscape_4_3"]),
    ModelDefaults("fal-ai/kling-video/*", duration_seconds=Decimal(5)),
    ModelDefaults("*"),
)


def defaults_for(
    endpoint: str, families: tuple[ModelDefaults, ...] = FAMILY_DEFAULTS
) -> ModelDefaults:
    """The first family whose glob matches `endpoint` (the catch-all when none does)."""
    for family in families:
        if fnmatchcase(endpoint, family.pattern):
            return family
    return ModelDefaults("*")


def estimate_units(unit: Unit, payload: object, defaults: ModelDefaults) -> Decimal:
    """Units to reserve for `payload` (the request's JSON input).

    image: num_images. megapixel: num_images × width × height / 10⁶, rounded up to 0.01 MP
    (never below fal's or the emulator's 2-decimal billing). video_second: duration rounded
    up to the whole second. request: 1. gpu_second: the family default (input cannot tell).
    """
    fields = payload if isinstance(payload, dict) else {}
    if unit is Unit.IMAGE:
        return Decimal(num_images(fields, defaults))
    if unit is Unit.MEGAPIXEL:
        width, height = image_size(fields, defaults)
        pixels = num_images(fields, defaults) * width * height
        return (Decimal(pixels) / PIXELS_PER_MEGAPIXEL).quantize(_HUNDREDTH, ROUND_CEILING)
    if unit is Unit.VIDEO_SECOND:
        return duration_seconds(fields, defaults).to_integral_value(ROUND_CEILING)
    if unit is Unit.GPU_SECOND:
        return defaults.gpu_seconds
    return Decimal(1)


def reservation(
    rule: PriceRule, payload: object, defaults: ModelDefaults, multiplier: Decimal
) -> Money:
    """The amount to hold against the balance before the request goes upstream."""
    units = estimate_units(rule.unit, payload, defaults)
    return charge(units, rule.unit_price, multiplier)


def at_least_a_micro(cost: Money, unit_price: Decimal) -> Money:
    """A hold for a priced request is never $0 (one micro-dollar at least): settling a
    credit plan's row moves the balance only through its hold."""
    return Money(1) if not cost.micros and unit_price > 0 else cost


def num_images(fields: Mapping[str, object], defaults: ModelDefaults) -> int:
    return _positive_int(fields.get("num_images")) or defaults.num_images


def image_size(fields: Mapping[str, object], defaults: ModelDefaults) -> tuple[int, int]:
    """An fal size enum, or `{width, height}` of positive ints; anything else → default."""
    value = fields.get("image_size")
    if isinstance(value, str):
        return IMAGE_SIZES.get(value, defaults.image_size)
    if isinstance(value, dict):
        width, height = _positive_int(value.get("width")), _positive_int(value.get("height"))
        if width and height:
            return width, height
    return defaults.image_size


def duration_seconds(fields: Mapping[str, object], defaults: ModelDefaults) -> Decimal:
    """`5`, `"5"`, `"10s"`, `7.5` → seconds; anything else (or ≤ 0) → the default."""
    value = fields.get("duration")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return defaults.duration_seconds
    text = str(value).strip().lower().removesuffix("s").strip()
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        return defaults.duration_seconds
    if not seconds.is_finite() or seconds <= 0:
        return defaults.duration_seconds
    return min(seconds, Decimal(MAX_FACTOR))


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return min(value, MAX_FACTOR)
    return None
