"""USD amounts as whole micro-dollars, and the one rounding rule billing uses.

Operator input ("12.50") is parsed strictly; products of units × unit price × multiplier
are computed exactly in Decimal and rounded once, half up, to the micro-dollar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from nxs.billing.errors import InvalidBillingInput

MICROS_PER_USD = 1_000_000
MAX_USD = Decimal(1_000_000_000)
_PLAIN_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")  # ASCII digits only: not "١٢"
_ONE_MICRO = Decimal("0.000001")


def parse_decimal(value: object, field: str, *, places: int, maximum: Decimal = MAX_USD) -> Decimal:
    """A non-negative decimal with at most `places` decimals, or an `InvalidBillingInput`.

    Accepts a string, an int or a float (JSON numbers); rejects booleans, signs, exponents,
    NaN, infinities and anything above `maximum`.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidBillingInput(field, f"{field} must be a decimal number", "type_error")
    if isinstance(value, float | Decimal):  # JSON floats print 0.00001 as 1e-05
        value = format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
    text = str(value).strip()
    if text.startswith("-"):
        raise InvalidBillingInput(field, f"{field} must not be negative")
    if not _PLAIN_NUMBER.match(text):
        raise InvalidBillingInput(field, f"{field} must be a decimal number like 12.50")
    number = Decimal(text)
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidBillingInput(field, f"{field} has more than {places} decimal places")
    if number > maximum:
        raise InvalidBillingInput(field, f"{field} must be at most {maximum}")
    return number


@dataclass(frozen=True, order=True)
class Money:
    """An amount of USD in micro-dollars (may be negative: a debit, an overrun)."""

    micros: int

    @classmethod
    def parse(cls, value: object, field: str = "amount") -> Money:
        """Operator input: "12.50", 12.5 or 12 → Money; at most 6 decimals, not negative."""
        return cls.from_decimal(parse_decimal(value, field, places=6))

    @classmethod
    def from_decimal(cls, usd: Decimal) -> Money:
        """Round half up (away from zero on .5) to the micro-dollar."""
        with localcontext() as context:
            context.prec = 60
            micros = (usd / _ONE_MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return cls(int(micros))

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    def to_decimal(self) -> Decimal:
        return Decimal(self.micros) / MICROS_PER_USD

    def __add__(self, other: Money) -> Money:
        return Money(self.micros + other.micros)

    def __sub__(self, other: Money) -> Money:
        return Money(self.micros - other.micros)

    def __neg__(self) -> Money:
        return Money(-self.micros)

    def __str__(self) -> str:
        """Plain USD text: at least 2 decimals, up to 6 when needed ("12.50", "0.019661")."""
        sign = "-" if self.micros < 0 else ""
        whole, fraction = divmod(abs(self.micros), MICROS_PER_USD)
        digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
        return f"{sign}{whole}.{digits}"


def charge(units: Decimal, unit_price: Decimal, multiplier: Decimal = Decimal(1)) -> Money:
    """The cost of `units` at `unit_price` USD each, times a plan's `multiplier`.

    The product is exact; the single rounding is half up to the micro-dollar, so a
    positive product of at least half a micro-dollar is never rounded to zero.
    """
    with localcontext() as context:
        context.prec = 60
        return Money.from_decimal(units * unit_price * multiplier)


def parse_multiplier(value: object, field: str = "multiplier") -> Decimal:
    """A plan's price multiplier: 0 < x ≤ 1000, at most 6 decimals ("1.25").

    Zero is refused: it would record every request at $0 (a metered plan is the way to
    let a customer use NXS without credit, and its usage keeps its real cost).
    """
    multiplier = parse_decimal(value, field, places=6, maximum=Decimal(1000))
    if multiplier == 0:
        raise InvalidBillingInput(field, f"{field} must be greater than 0")
    return multiplier
