"""The console's chart data: usage buckets by day turned into the web base's stacked bars
(charged split into fal's cost and the margin on top, or requests split into ok and
refunded)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from nxs.console.usage import Bucket
from nxs.web.charts import Bar


def daily_bars(days: Sequence[Bucket], measure: Literal["charged", "requests"]) -> list[Bar]:
    if measure == "requests":
        return [
            Bar(day.key[5:], {"ok": day.requests - day.refunded, "refunded": day.refunded})
            for day in days
        ]
    return [
        Bar(
            day.key[5:],
            {
                "fal cost": day.fal_cost.micros / 1e6,
                "margin": max(day.margin.micros, 0) / 1e6,
            },
        )
        for day in days
    ]
