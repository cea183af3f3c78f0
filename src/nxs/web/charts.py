"""A small server-side SVG bar chart (stacked by series), so pages need no JavaScript.

Labels go through `markupsafe.escape`; the SVG carries a <title> and an aria-label, and
every bar its own <title> with the exact figure for keyboard and screen-reader users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#64748b")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 56, 28, 12


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar, e.g. a day
    parts: dict[str, float]  # series name → value


def bar_chart(bars: Sequence[Bar], title: str, unit: str = "$") -> Markup:
    """An SVG of stacked bars with a y axis in `unit` and a legend of the series."""
    series = sorted({name for bar in bars for name in bar.parts})
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    top = max((sum(bar.parts.values()) for bar in bars), default=0.0) or 1.0
    # counts: whole-number ticks; money: a round top, so the four ticks are round too
    top = float(max(4, -(-int(top) // 4) * 4)) if unit != "$" else _round_up(top)
    plot_h, plot_w = HEIGHT - BOTTOM - TOP, WIDTH - LEFT - 8
    step = plot_w / max(len(bars), 1)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        y = TOP + plot_h * i / 4
        value = top * (4 - i) / 4
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
            f"{escape(_tick(value, top, unit))}</text>"
        )
    for index, bar in enumerate(bars):
        out.extend(_bar(bar, index, step, plot_h, top, colours, unit))
    out.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{colours[name]}"></span>{escape(name)}</li>'
        for name in series
    )
    shown = f'<ul class="legend">{legend}</ul>' if len(series) > 1 else ""
    return Markup("".join(out) + shown)


def _bar(
    bar: Bar,
    index: int,
    step: float,
    plot_h: float,
    top: float,
    colours: dict[str, str],
    unit: str,
) -> list[str]:
    x, width = LEFT + index * step + step * 0.15, max(step * 0.7, 1.0)
    y, parts = TOP + plot_h, []
    for name in sorted(bar.parts):
        h = plot_h * bar.parts[name] / top
        y -= h
        tip = f"{bar.label} · {name}: {_money(bar.parts[name], unit)}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}"'
            f' fill="{colours[name]}"><title>{escape(tip)}</title></rect>'
        )
    every = max(1, int(40 / step) + 1) if step < 40 else 1
    if index % every == 0:
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{TOP + plot_h + 16}" class="axis"'
            f' text-anchor="middle">{escape(bar.label)}</text>'
        )
    return parts


def _round_up(top: float) -> float:
    """The smallest of 1, 2, 4, 8 × 10^k at or above `top` (each splits into 4 round ticks)."""
    scale = 10.0 ** math.floor(math.log10(top))
    for factor in (1, 2, 4, 8, 10):
        if top <= factor * scale * (1 + 1e-9):
            return factor * scale
    return 10 * scale


def _tick(value: float, top: float, unit: str) -> str:
    """An axis label: money with as many decimals as the tick step needs (2 to 6)."""
    if unit != "$":
        return _money(value, unit)
    ticks = [top * i / 4 for i in range(1, 5)]
    places = next(
        (p for p in range(2, 6) if all(abs(round(t, p) - t) < top * 1e-9 for t in ticks)), 6
    )
    return f"${value:,.{places}f}"


def _money(value: float, unit: str) -> str:
    """An exact figure for a bar's tooltip: money to 6 decimals at most, trailing 0s cut."""
    if unit == "$":
        text = f"{value:,.6f}".rstrip("0")
        whole, _, fraction = text.partition(".")
        return f"${whole}.{fraction.ljust(2, '0')}"
    return f"{value:,.0f} {unit}".strip()
