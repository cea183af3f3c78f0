"""Settlement: what a finished request actually costs, and whether it is refunded.

Units come from `x-fal-billable-units` when upstream sent it in the rule's unit
(`PriceRule.header_units`), else from the result body, else from the reservation's estimate.
Refund rules are pure decisions on what we learned; only an upstream's final verdict
refunds — our own poll timing out never does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from nxs.billing.estimate import PIXELS_PER_MEGAPIXEL
from nxs.billing.money import Money, charge
from nxs.billing.pricing import PriceRule, Unit

BILLABLE_UNITS_HEADER = "x-fal-billable-units"


class Outcome(StrEnum):
    """What the gateway learned about a request (from a result, a webhook, a poll, a call).

    A cancel or a 404 is not an outcome: fal's own answer about the request decides
    (`nxs.billing.outcomes`), so an accepted cancel is refunded only once fal says the
    request ended without running.
    """

    COMPLETED = "completed"  # an OK result: fetched, webhooked or returned by run
    ERROR_RESULT = "error_result"  # a result answered 5xx (with its id); webhook status ERROR
    UPSTREAM_5XX = "upstream_5xx"  # submit/run/result answered ≥ 500 by upstream
    REJECTED = "rejected"  # upstream answered 4xx (e.g. 422) to submit or run
    POLL_TIMEOUT = "poll_timeout"  # our poll or the client's wait timed out
    CLIENT_GONE = "client_gone"  # the client disconnected or stopped polling


class Verdict(StrEnum):
    CHARGE = "charge"  # settle at the actual units; the rest of the hold goes back
    REFUND = "refund"  # release the whole hold, charge nothing
    HOLD = "hold"  # not final: keep the reservation until upstream's verdict


class UnitsSource(StrEnum):
    HEADER = "header"
    BODY = "body"
    ESTIMATE = "estimate"
    NONE = "none"  # refunded or held: nothing was counted


_VERDICTS: Mapping[Outcome, Verdict] = {
    Outcome.COMPLETED: Verdict.CHARGE,
    Outcome.ERROR_RESULT: Verdict.REFUND,
    Outcome.UPSTREAM_5XX: Verdict.REFUND,
    Outcome.REJECTED: Verdict.CHARGE,  # at the header's units; refunded without usable ones
    Outcome.POLL_TIMEOUT: Verdict.HOLD,
    Outcome.CLIENT_GONE: Verdict.HOLD,
}


def verdict(outcome: Outcome) -> Verdict:
    """Refund on an upstream failure or a cancel before start; hold on anything not final."""
    return _VERDICTS[outcome]


@dataclass(frozen=True)
class Settlement:
    """The ledger row's final numbers; `release` goes back to the balance (may be < 0)."""

    verdict: Verdict
    units: Decimal
    source: UnitsSource
    cost: Money
    reserved: Money

    @property
    def release(self) -> Money:
        """reserved − cost: what the hold gives back (negative when cost overran it).

        A HOLD moves nothing: the reservation stays until upstream's final verdict.
        """
        if self.verdict is Verdict.HOLD:
            return Money.zero()
        return self.reserved - self.cost

    @property
    def overrun(self) -> Money:
        return max(self.cost - self.reserved, Money.zero())


def settle(
    outcome: Outcome,
    rule: PriceRule,
    *,
    reserved: Money,
    estimated_units: Decimal,
    multiplier: Decimal,
    headers: Mapping[str, str] | None = None,
    body: object = None,
    cost_of: Callable[[Decimal, Decimal, Decimal], Money] = charge,
) -> Settlement:
    """Decide and price the end of one request (pure: the ledger applies it once).

    `cost_of(units, unit_price, multiplier)` is `charge` or a memoized equivalent.
    """
    decided = verdict(outcome)
    if decided is not Verdict.CHARGE:
        return Settlement(decided, Decimal(0), UnitsSource.NONE, Money.zero(), reserved)
    billed = header_units(headers) if headers else None
    if outcome is Outcome.REJECTED and not billed:  # a 4xx fal bills nothing for is free
        return Settlement(Verdict.REFUND, Decimal(0), UnitsSource.NONE, Money.zero(), reserved)
    header = billed if rule.header_units else None  # in the rule's unit, or not used
    units, source = billable_units(rule, header, body, estimated_units)
    cost = cost_of(units, rule.unit_price, multiplier)
    return Settlement(decided, units, source, cost, reserved)


def billable_units(
    rule: PriceRule, header: Decimal | None, body: object, estimated: Decimal
) -> tuple[Decimal, UnitsSource]:
    """fal's billed units (`header`) when they are in the rule's unit; else what the body
    shows; else the reservation's estimate."""
    if header is not None and rule.header_units:
        return header, UnitsSource.HEADER
    found = body_units(rule.unit, body)
    if found is not None:
        return found, UnitsSource.BODY
    return estimated, UnitsSource.ESTIMATE


def header_units(headers: Mapping[str, str]) -> Decimal | None:
    """`x-fal-billable-units` as a finite, non-negative Decimal; absent or garbage → None."""
    raw = headers.get(BILLABLE_UNITS_HEADER)
    if raw is None:
        raw = next((v for k, v in headers.items() if k.lower() == BILLABLE_UNITS_HEADER), None)
    try:
        units = Decimal(str(raw).strip()) if raw is not None else None
    except InvalidOperation:
        return None
    if units is None or not units.is_finite() or units < 0:
        return None
    return units


def body_units(unit: Unit, body: object) -> Decimal | None:
    """Units read from a result body, or None when the body does not show them."""
    if unit is Unit.REQUEST:
        return Decimal(1)
    if not isinstance(body, dict):
        return None
    if unit is Unit.IMAGE:
        images = _images(body)
        return Decimal(len(images)) if images else None
    if unit is Unit.MEGAPIXEL:
        return _megapixels(_images(body))
    if unit is Unit.VIDEO_SECOND:
        video = body.get("video")
        duration = video.get("duration") if isinstance(video, dict) else body.get("duration")
        return _positive_number(duration)
    timings = body.get("timings")
    return _positive_number(timings.get("inference")) if isinstance(timings, dict) else None


def _images(body: dict[str, object]) -> list[object]:
    images = body.get("images")
    if isinstance(images, list):
        return images
    single = body.get("image")
    return [single] if isinstance(single, dict) else []


def _megapixels(images: list[object]) -> Decimal | None:
    """Σ width × height / 10⁶ over the images; None unless every image gives both."""
    pixels = Decimal(0)
    for image in images:
        if not isinstance(image, dict):
            return None
        width, height = _positive_number(image.get("width")), _positive_number(image.get("height"))
        if width is None or height is None:
            return None
        pixels += width * height
    return pixels / PIXELS_PER_MEGAPIXEL if images else None


def _positive_number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return number if number.is_finite() and number > 0 else None
