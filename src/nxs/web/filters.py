"""Jinja2 filters the pages share: money, times, units (all plain text; escaping is Jinja's)."""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment


def usd(micros: int | None) -> str:
    """Micro-USD as exact dollars: 2 decimals, up to 6 when needed (`$12.50`, `$0.025`)."""
    if micros is None:
        return "–"
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(int(micros)), 1_000_000)
    digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{digits}"


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
