"""The console's chart data: usage buckets by day turned into the web base's stacked bars
(charged split into fal's cost and the margin on top, or requests split into ok and
refunded), one bar per day of the window, days without traffic included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from nxs.console.usage import Bucket
from nxs.web.charts import Bar


def dates_of(until: float, days: int) -> list[str]:
    """The UTC dates of the `days` days ending on `until`'s, oldest first."""
    last = datetime.fromtimestamp(until, UTC).date()
    return [(last - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]


def daily_bars(
    buckets: Sequence[Bucket], measure: Literal["charged", "requests"], dates: Sequence[str]
) -> list[Bar]:
    by_day = {bucket.key: bucket for bucket in buckets}
    return [_bar(date, by_day.get(date, Bucket(date)), measure) for date in dates]


def _bar(date: str, day: Bucket, measure: Literal["charged", "requests"]) -> Bar:
    label = date[5:]
    if measure == "requests":
        return Bar(label, {"ok": day.requests - day.refunded, "refunded": day.refunded})
    return Bar(
        label,
        {"fal cost": day.fal_cost.micros / 1e6, "margin": max(day.margin.micros, 0) / 1e6},
    )
