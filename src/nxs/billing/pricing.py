"""Per-endpoint prices in fal's units, and reading fal's pricing API into them.

A `PriceBook` answers "what does this endpoint cost per what unit": an exact endpoint
rule first, then the longest matching glob, then the unknown-endpoint policy (refuse, or
a flat per-request price). `parse_pricing_body` turns `GET /v1/models/pricing` JSON into rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

from nxs.billing.errors import InvalidBillingInput, NoPrice, PricingResponseInvalid
from nxs.billing.money import parse_decimal

UNIT_PRICE_PLACES = 9
_ENDPOINT_GLOB = re.compile(r"^[A-Za-z0-9*?._-][A-Za-z0-9*?._/!\[\]-]{0,199}$")
_GLOB_CLASS = re.compile(r"\[!?[^\[\]/!]+\]")  # a character class such as [0-9] or [!x]
_LOOKUP_CACHE_SIZE = 4096


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


def parse_unit(name: object, field: str = "unit") -> Unit:
    """fal's unit string ("image", "megapixels", "video_second", "second", …) → `Unit`."""
    unit = _UNIT_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
    if unit is None:
        known = ", ".join(sorted(_UNIT_NAMES))
        raise InvalidBillingInput(field, f"unknown pricing unit {name!r} (known: {known})")
    return unit


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


@dataclass(frozen=True)
class PriceRule:
    """`unit_price` USD per `unit` for endpoints matching `pattern` (an id or a glob)."""

    pattern: str
    unit: Unit
    unit_price: Decimal

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
    """All price rules plus the unknown-endpoint policy; lookups are cached per endpoint."""

    rules: Iterable[PriceRule] = ()
    unknown: UnknownEndpoints = field(default_factory=UnknownEndpoints)

    def __post_init__(self) -> None:
        self.rules = tuple(self.rules)
        self._exact = {rule.pattern: rule for rule in self.rules if not rule.is_glob}
        globs = [rule for rule in self.rules if rule.is_glob]
        self._globs = sorted(globs, key=lambda rule: (-len(rule.pattern), rule.pattern))
        self._cache: dict[str, PriceRule | None] = {}

    def price(self, endpoint: str) -> PriceRule:
        """The rule billing `endpoint`, or `NoPrice` when unknown endpoints are refused."""
        rule = self._cache.get(endpoint) if endpoint in self._cache else self._lookup(endpoint)
        if rule is not None:
            return rule
        if self.unknown.refuse:
            raise NoPrice()
        return PriceRule(endpoint, Unit.REQUEST, self.unknown.request_price)

    def merged(self, rules: Iterable[PriceRule]) -> PriceBook:
        """A new book where `rules` replace any existing rule with the same pattern."""
        replacing = {rule.pattern: rule for rule in rules}
        kept = [rule for rule in self.rules if rule.pattern not in replacing]
        return PriceBook([*kept, *replacing.values()], self.unknown)

    def _lookup(self, endpoint: str) -> PriceRule | None:
        rule = self._exact.get(endpoint)
        if rule is None:
            rule = next((g for g in self._globs if fnmatchcase(endpoint, g.pattern)), None)
        if len(self._cache) >= _LOOKUP_CACHE_SIZE:
            self._cache.clear()
        self._cache[endpoint] = rule
        return rule


@dataclass(frozen=True)
class PricingImport:
    """What one page of fal's pricing API yielded: rules, and rows skipped with why."""

    rules: tuple[PriceRule, ...]
    skipped: tuple[tuple[str, str], ...]
    next_cursor: str | None
    has_more: bool


def parse_pricing_body(body: object) -> PricingImport:
    """`{"prices": [{endpoint_id, unit_price, unit, currency}], next_cursor, has_more}`.

    Rows with an unknown unit, a non-USD currency or a bad price are skipped and listed;
    a body that is not this shape at all raises `PricingResponseInvalid`.
    """
    if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
        raise PricingResponseInvalid("Upstream pricing response has no 'prices' list")
    rules: list[PriceRule] = []
    skipped: list[tuple[str, str]] = []
    for row in body["prices"]:
        name = row.get("endpoint_id") if isinstance(row, dict) else None
        try:
            rules.append(_rule_from_row(row))
        except InvalidBillingInput as error:
            skipped.append((name if isinstance(name, str) else repr(name), error.message))
    cursor = body.get("next_cursor")
    return PricingImport(
        rules=tuple(rules),
        skipped=tuple(skipped),
        next_cursor=cursor if isinstance(cursor, str) and cursor else None,
        has_more=body.get("has_more") is True,
    )


def _rule_from_row(row: Any) -> PriceRule:
    if not isinstance(row, dict):
        raise InvalidBillingInput("prices", "price row is not an object")
    endpoint = row.get("endpoint_id")
    if not isinstance(endpoint, str) or not endpoint.strip() or " " in endpoint:
        raise InvalidBillingInput("endpoint_id", "endpoint_id must be a non-empty id")
    currency = row.get("currency", "USD")
    if currency != "USD":
        raise InvalidBillingInput("currency", f"currency {currency!r} is not supported")
    return PriceRule(endpoint, parse_unit(row.get("unit")), parse_unit_price(row.get("unit_price")))
