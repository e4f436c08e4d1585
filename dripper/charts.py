"""Charts as inline SVG: they live inside a self-contained HTML page (the report, the
dashboard, the simulated timeline) and need no script, font or file from a network.

Each function returns one `<svg>` element with a `<title>` (read out by screen readers,
shown as a tooltip) and a `<title>` on every bar or mark with its exact figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Sequence

PALETTE = ("#2f6f8f", "#e08a2e", "#5a9e4b", "#b5485d", "#7a5ea8", "#8c8c8c")
_FONT = "font-family='system-ui,sans-serif' font-size='12'"


@dataclass(frozen=True)
class Series:
    """One colour of a stacked column chart: a value per category."""

    name: str
    values: Sequence[float]


def _svg(width: int, height: int, title: str, body: list[str], *, css_class: str) -> str:
    return (f"<svg class='chart {css_class}' xmlns='http://www.w3.org/2000/svg' role='img' "
            f"aria-label='{escape(title, quote=True)}' viewBox='0 0 {width} {height}' width='{width}' height='{height}'>"
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bars(items: Sequence[tuple[str, float]], title: str, *, unit: str = "", width: int = 560,
         max_value: float | None = None) -> str:
    """Horizontal bars, one per (label, value), largest scale first in the order given."""
    label_w, bar_h, gap = 170, 18, 6
    height = max(1, len(items)) * (bar_h + gap) + gap
    top = max_value if max_value else max([v for _, v in items] + [1])
    span = width - label_w - 70
    body = []
    for i, (label, value) in enumerate(items):
        y = gap + i * (bar_h + gap)
        w = 0 if top <= 0 else max(0.0, value) / top * span
        text = f"{_number(value)}{unit}"
        body.append(
            f"<text x='{label_w - 6}' y='{y + bar_h - 5}' text-anchor='end' {_FONT}>{escape(label)}</text>"
            f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{PALETTE[0]}'>"
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f"<text x='{label_w + w + 4:.1f}' y='{y + bar_h - 5}' {_FONT}>{escape(text)}</text>")
    return _svg(width, height, title, body, css_class="bars")


def columns(categories: Sequence[str], series: Sequence[Series], title: str, *, width: int = 640,
            height: int = 220) -> str:
    """Stacked columns: one per category (e.g. a week), one colour per series (a channel)."""
    left, bottom, top_pad, legend_h = 40, 34, 8, 18
    plot_h = height - bottom - top_pad - legend_h
    n = max(1, len(categories))
    slot = (width - left - 8) / n
    col_w = max(2.0, slot * 0.7)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    peak = max(totals + [1])
    body = [f"<line x1='{left}' y1='{top_pad + legend_h + plot_h}' x2='{width - 4}' y2='{top_pad + legend_h + plot_h}' "
            "stroke='#999'/>",
            f"<text x='{left - 4}' y='{top_pad + legend_h + 10}' text-anchor='end' {_FONT}>{_number(peak)}</text>",
            f"<text x='{left - 4}' y='{top_pad + legend_h + plot_h}' text-anchor='end' {_FONT}>0</text>"]
    for k, s in enumerate(series):  # the legend
        x = left + k * 110
        body.append(f"<rect x='{x}' y='{top_pad}' width='10' height='10' fill='{PALETTE[k % len(PALETTE)]}'/>"
                    f"<text x='{x + 14}' y='{top_pad + 9}' {_FONT}>{escape(s.name)}</text>")
    label_every = max(1, round(n / 12))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - col_w) / 2
        y = top_pad + legend_h + plot_h
        for k, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = value / peak * plot_h
            y -= h
            body.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{col_w:.1f}' height='{h:.1f}' "
                        f"fill='{PALETTE[k % len(PALETTE)]}'><title>{escape(category)} · {escape(s.name)}: "
                        f"{_number(value)}</title></rect>")
        if i % label_every == 0:
            body.append(f"<text x='{x + col_w / 2:.1f}' y='{height - 14}' text-anchor='middle' {_FONT}>"
                        f"{escape(category)}</text>")
    return _svg(width, height, title, body, css_class="columns")


def funnel(stages: Sequence[tuple[str, float]], title: str, *, width: int = 560) -> str:
    """Centred bars, widest first: leads by funnel stage."""
    bar_h, gap = 22, 4
    height = max(1, len(stages)) * (bar_h + gap) + gap
    peak = max([v for _, v in stages] + [1])
    middle = width / 2
    body = []
    for i, (label, value) in enumerate(stages):
        y = gap + i * (bar_h + gap)
        w = max(2.0, value / peak * (width - 20)) if value else 0.0
        body.append(f"<rect x='{middle - w / 2:.1f}' y='{y}' width='{w:.1f}' height='{bar_h}' "
                    f"fill='{PALETTE[i % len(PALETTE)]}' opacity='0.85'><title>{escape(label)}: {_number(value)}"
                    f"</title></rect><text x='{middle}' y='{y + bar_h - 7}' text-anchor='middle' {_FONT}>"
                    f"{escape(label)} · {_number(value)}</text>")
    return _svg(width, height, title, body, css_class="funnel")


def timeline(marks: Sequence[tuple[float, str, str]], days: float, title: str, *, width: int = 720) -> str:
    """Marks on a line of `days` days: (day, label, kind) each; kinds share a colour."""
    left, right, line_y = 20, 20, 40
    kinds = list(dict.fromkeys(kind for _, _, kind in marks))
    span = width - left - right
    rows = 2 + len(marks) % 2
    height = line_y + 22 * rows + 30
    body = [f"<line x1='{left}' y1='{line_y}' x2='{width - right}' y2='{line_y}' stroke='#555' stroke-width='2'/>"]
    step = 30 if days <= 120 else 60 if days <= 400 else 180
    for day in range(0, int(days) + 1, step):
        x = left + day / max(days, 1) * span
        body.append(f"<line x1='{x:.1f}' y1='{line_y - 4}' x2='{x:.1f}' y2='{line_y + 4}' stroke='#555'/>"
                    f"<text x='{x:.1f}' y='{line_y - 8}' text-anchor='middle' {_FONT}>day {day}</text>")
    for i, (day, label, kind) in enumerate(marks):
        x = left + day / max(days, 1) * span
        colour = PALETTE[kinds.index(kind) % len(PALETTE)]
        y = line_y + 18 + 22 * (i % 2)
        body.append(f"<circle cx='{x:.1f}' cy='{line_y}' r='5' fill='{colour}'><title>day {_number(day)}: "
                    f"{escape(label)} ({escape(kind)})</title></circle>"
                    f"<text x='{x:.1f}' y='{y}' text-anchor='middle' {_FONT} fill='{colour}'>{escape(label)}</text>")
    for k, kind in enumerate(kinds):  # the legend
        x = left + k * 120
        body.append(f"<circle cx='{x + 5}' cy='{height - 12}' r='5' fill='{PALETTE[k % len(PALETTE)]}'/>"
                    f"<text x='{x + 14}' y='{height - 8}' {_FONT}>{escape(kind)}</text>")
    return _svg(width, height, title, body, css_class="timeline")


__all__ = ["PALETTE", "Series", "bars", "columns", "funnel", "timeline"]
