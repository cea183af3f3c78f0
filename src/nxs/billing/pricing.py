"""Per-endpoint prices in fal's units, and reading fal's pricing API into them.

A `PriceBook` answers "what does this endpoint cost per what unit": an exact endpoint
rule first, then the longest matching glob, then the unknown-endpoint policy (refuse, or
a flat per-request price). It also knows the unit fal bills each synced endpoint in, and so
whether fal's `x-fal-billable-units` count is in the rule's unit (`PriceRule.header_units`).
`parse_pricing_body` turns `GET /v1/models/pricing` JSON into rules and fal's units.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any, Final, TypeGuard

from nxs.billing.errors import InvalidBillingInput, NoPrice, PricingResponseInvalid
from nxs.billing.money import parse_decimal

UNIT_PRICE_PLACES = 9
_ENDPOINT_GLOB = re.compile(r"^[A-Za-z0-9*?._-][A-Za-z0-9*?._/!\[\]-]{0,199}$")
_GLOB_CLASS = re.compile(r"\[!?[^\[\]/!]+\]")  # a character class such as [0-9] or [!x]
_LOOKUP_CACHE_SIZE = 4096
FAL_UNIT_MAX_LENGTH: Final = 64


class Unit(StrEnum):
    IMAGE = "image"
    MEGAPIXEL = "megapixel"
    VIDEO_SECOND = "video_second"
    REQUEST = "request"
    GPU_SECOND = "gpu_second"


_UNIT_NAMES: Mapping[str, Unit] = MappingProxyType(
    {
        "image": Unit.IMAGE,
        "images": Unit.IMAGE,
        "megapixel": Unit.MEGAPIXEL,
        "megapixels": Unit.MEGAPIXEL,
        "mp": Unit.MEGAPIXEL,
        "video_second": Unit.VIDEO_SECOND,
        "video_seconds": Unit.VIDEO_SECOND,
        "second": Unit.VIDEO_SECOND,
        "seconds": Unit.VIDEO_SECOND,
        "request": Unit.REQUEST,
        "requests": Unit.REQUEST,
        "gpu_second": Unit.GPU_SECOND,
        "gpu_seconds": Unit.GPU_SECOND,
    }
)


# What a result body shows (images, their sizes, a video's duration): an endpoint priced in
# one of these is counted from the body unless fal is known to bill it in that same unit.
BODY_SHOWN_UNITS: Final = frozenset({Unit.IMAGE, Unit.MEGAPIXEL, Unit.VIDEO_SECOND})


def parse_unit(name: object, field: str = "unit") -> Unit:
    """fal's unit string ("image", "megapixels", "video_second", "second", …) → `Unit`."""
    unit = _UNIT_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
    if unit is None:
        known = ", ".join(sorted(_UNIT_NAMES))
        raise InvalidBillingInput(field, f"unknown pricing unit {name!r} (known: {known})")
    return unit


def fal_unit_name(name: object) -> str | None:
    """fal's unit as remembered: a known unit's own name ("megapixels" → "megapixel"), any
    other unit's text lower-cased ("1k tokens"); None when fal named none."""
    if not isinstance(name, str):
        return None
    text = "".join(char for char in name.strip().lower() if char.isprintable())
    unit = _UNIT_NAMES.get(text)
    return unit.value if unit is not None else text[:FAL_UNIT_MAX_LENGTH] or None


def header_units_apply(unit: Unit, fal_unit: str | None) -> bool:
    """Whether fal's `x-fal-billable-units` counts `unit`s: fal's unit (`fal_unit_name`) is
    known and the same, or unknown and `unit` is GPU seconds (nothing else tells them).
    Otherwise the count may be in another unit (megapixels for an endpoint priced per
    image, seconds of video for one priced per request) and settlement reads the body — a
    request is one request."""
    if fal_unit is None:
        return unit is Unit.GPU_SECOND
    return fal_unit == unit.value


def parse_endpoint_pattern(value: object, field: str = "pattern") -> str:
    """An endpoint id or glob as fal names endpoints (`fal-ai/flux/dev`, `fal-ai/flux/*`).

    Refused: blanks, spaces, a leading, trailing or doubled `/`, URLs, and an unclosed `[` (which
    `fnmatch` would take literally, so the glob could never match anything).
    """
    text = value.strip() if isinstance(value, str) else ""
    bare = _GLOB_CLASS.sub("x", text)
    slashes = "//" in text or text.endswith("/")
    if not _ENDPOINT_GLOB.match(text) or any(char in bare for char in "[]!") or slashes:
        shown = f" {text!r}" if text and len(text) <= 200 else ""
        raise InvalidBillingInput(
            field, f"{field}{shown} is not an endpoint id or glob like fal-ai/flux/*"
        )
    return text


def parse_unit_price(value: object, field: str = "unit_price") -> Decimal:
    """USD per unit: not negative, at most 9 decimals (fal prices GPU time in fractions)."""
    return parse_decimal(value, field, places=UNIT_PRICE_PLACES)


@dataclass(frozen=True, slots=True)
class PriceRule:
    """`unit_price` USD per `unit` for endpoints matching `pattern` (an id or a glob).

    `header_units`: fal's billable units are in `unit` for the endpoint this rule was looked
    up for (`PriceBook.price` decides it), so settlement may take them. False — count from
    the result body, else the estimate — for a rule built without that knowledge.
    """

    pattern: str
    unit: Unit
    unit_price: Decimal
    header_units: bool = False

    @property
    def is_glob(self) -> bool:
        return any(char in self.pattern for char in "*?[")


@dataclass(frozen=True)
class UnknownEndpoints:
    """What an endpoint without a rule costs: refused (default), or a flat request price."""

    refuse: bool = True
    request_price: Decimal = Decimal(0)

    @classmethod
    def charge_per_request(cls, price: object) -> UnknownEndpoints:
        return cls(refuse=False, request_price=parse_unit_price(price, "unknown_request_price"))


@dataclass
class PriceBook:
    """All price rules, the unknown-endpoint policy and fal's unit per synced endpoint
    (`fal_unit_name`s); lookups are cached per endpoint."""

    rules: Iterable[PriceRule] = ()
    unknown: UnknownEndpoints = field(default_factory=UnknownEndpoints)
    fal_units: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rules = tuple(self.rules)
        self._exact = {rule.pattern: rule for rule in self.rules if not rule.is_glob}
        globs = [rule for rule in self.rules if rule.is_glob]
        self._globs = sorted(globs, key=lambda rule: (-len(rule.pattern), rule.pattern))
        self._cache: dict[str, PriceRule | None] = {}

    def price(self, endpoint: str) -> PriceRule:
        """The rule billing `endpoint` (its `header_units` decided for it), or `NoPrice`
        when it has none and unknown endpoints are refused."""
        rule = self._cache[endpoint] if endpoint in self._cache else self._lookup(endpoint)
        if rule is None:
            raise NoPrice()
        return rule

    def bind(self, endpoint: str, rule: PriceRule) -> PriceRule:
        """`rule` as it bills `endpoint`: `header_units` from fal's unit for `endpoint`."""
        applies = header_units_apply(rule.unit, self.fal_units.get(endpoint))
        return rule if applies is rule.header_units else replace(rule, header_units=applies)

    def merged(self, rules: Iterable[PriceRule]) -> PriceBook:
        """A new book where `rules` replace any existing rule with the same pattern."""
        replacing = {rule.pattern: rule for rule in rules}
        kept = [rule for rule in self.rules if rule.pattern not in replacing]
        return PriceBook([*kept, *replacing.values()], self.unknown, self.fal_units)

    def _lookup(self, endpoint: str) -> PriceRule | None:
        rule = self._exact.get(endpoint)
        if rule is None:
            rule = next((g for g in self._globs if fnmatchcase(endpoint, g.pattern)), None)
        if rule is None and not self.unknown.refuse:
            rule = PriceRule(endpoint, Unit.REQUEST, self.unknown.request_price)
        if rule is not None:
            rule = self.bind(endpoint, rule)
        if len(self._cache) >= _LOOKUP_CACHE_SIZE:
            self._cache.clear()
        self._cache[endpoint] = rule
        return rule


@dataclass(frozen=True)
class PricingImport:
    """What one page of fal's pricing API yielded: rules, rows skipped with why, and the
    unit fal bills each endpoint in (`fal_unit_name`; skipped rows' too)."""

    rules: tuple[PriceRule, ...]
    skipped: tuple[tuple[str, str], ...]
    next_cursor: str | None
    has_more: bool
    fal_units: tuple[tuple[str, str], ...] = ()


def parse_pricing_body(body: object) -> PricingImport:
    """`{"prices": [{endpoint_id, unit_price, unit, currency}], next_cursor, has_more}`.

    Rows with an unknown unit, a non-USD currency or a bad price are skipped and listed;
    a body that is not this shape at all raises `PricingResponseInvalid`.
    """
    if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
        raise PricingResponseInvalid("Upstream pricing response has no 'prices' list")
    rules: list[PriceRule] = []
    skipped: list[tuple[str, str]] = []
    fal_units: list[tuple[str, str]] = []
    for row in body["prices"]:
        name = row.get("endpoint_id") if isinstance(row, dict) else None
        try:
            rules.append(_rule_from_row(row))
        except InvalidBillingInput as error:
            skipped.append((name if isinstance(name, str) else repr(name), error.message))
        unit = fal_unit_name(row.get("unit")) if isinstance(row, dict) else None
        if unit is not None and _is_endpoint_id(name):
            fal_units.append((name, unit))
    cursor = body.get("next_cursor")
    return PricingImport(
        rules=tuple(rules),
        skipped=tuple(skipped),
        next_cursor=cursor if isinstance(cursor, str) and cursor else None,
        has_more=body.get("has_more") is True,
        fal_units=tuple(fal_units),
    )


def _is_endpoint_id(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and bool(name.strip()) and " " not in name


def _rule_from_row(row: Any) -> PriceRule:
    if not isinstance(row, dict):
        raise InvalidBillingInput("prices", "price row is not an object")
    endpoint = row.get("endpoint_id")
    if not _is_endpoint_id(endpoint):
        raise InvalidBillingInput("endpoint_id", "endpoint_id must be a non-empty id")
    currency = row.get("currency", "USD")
    if currency != "USD":
        raise InvalidBillingInput("currency", f"currency {currency!r} is not supported")
    return PriceRule(endpoint, parse_unit(row.get("unit")), parse_unit_price(row.get("unit_price")))
