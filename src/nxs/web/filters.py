"""Jinja2 filters the pages share: money, times, units (all plain text; escaping is Jinja's)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from jinja2 import Environment


def usd(micros: int | None) -> str:
    """Micro-USD as dollars: 4 decimals under a cent, else 2 (`$12.50`, `$0.0030`)."""
    if micros is None:
        return "–"
    value = Decimal(micros) / 1_000_000
    sign = "-" if value < 0 else ""
    value = abs(value)
    text = f"{value:,.6f}".rstrip("0") if 0 < value < Decimal("0.01") else f"{value:,.2f}"
    return f"{sign}${text}"


def when(stamp: float | None) -> str:
    """A timestamp as `2026-12-04 15:09 UTC` (– for none)."""
    if stamp is None:
        return "–"
    return datetime.fromtimestamp(float(stamp), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(stamp: float | None) -> str:
    if stamp is None:
        return "–"
    return datetime.fromtimestamp(float(stamp), tz=UTC).strftime("%Y-%m-%d")


def install(env: Environment) -> None:
    env.filters.update(usd=usd, when=when, day=day)
