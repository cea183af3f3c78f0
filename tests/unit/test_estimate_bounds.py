"""Estimates of absurd inputs (10**400 images, 1e400 seconds) never raise: each factor is
held at `MAX_FACTOR`, a huge but exact hold (fal refuses such an input anyway)."""

from __future__ import annotations

from decimal import Decimal

from nxs.billing.estimate import MAX_FACTOR, defaults_for, estimate_units
from nxs.billing.pricing import Unit

FLUX = defaults_for("fal-ai/flux/dev")
HUGE = 10**400


def test_huge_counts_and_sides_are_held_at_the_cap() -> None:
    payload = {"num_images": HUGE, "image_size": {"width": HUGE, "height": HUGE}}
    assert estimate_units(Unit.IMAGE, payload, FLUX) == MAX_FACTOR
    assert estimate_units(Unit.MEGAPIXEL, payload, FLUX) == Decimal(MAX_FACTOR) ** 2


def test_huge_durations_are_held_at_the_cap() -> None:
    for duration in (HUGE, "1e400", "1e400s"):
        assert estimate_units(Unit.VIDEO_SECOND, {"duration": duration}, FLUX) == MAX_FACTOR
