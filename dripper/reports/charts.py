"""Charts as inline SVG: they live inside a self-contained HTML page (the report, the
dashboard, the simulated timeline) and need no script, font or file from a network.

Each function returns one `<svg>` element with a `<title>` (read out by screen readers,
shown as a tooltip) and a `<title>` on every bar or mark with its exact figure. Every text
and attribute value it is given is escaped here, so that the pages may include the SVG as
markup (`Markup`) in their autoescaped templates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2f6f8f", "#e08a2e", "#5a9e4b", "#b5485d", "#7a5ea8", "#8c8c8c")
_FONT = "font-family='system-ui,sans-serif' font-size='12'"
# A 12px system-ui character is about this wide: labels are laid out without measuring text.
_CHAR_W = 6.8


@dataclass(frozen=True)
class Series:
    """One colour of a stacked column chart: a value per category."""

    name: str
    values: Sequence[float]


def _svg(width: int, height: int, title: str, body: list[str], *, css_class: str) -> str:
    return (
        f"<svg class='chart {css_class}' xmlns='http://www.w3.org/2000/svg' role='img' "
        f"aria-label='{escape(title, quote=True)}' viewBox='0 0 {width} {height}' width='{width}' height='{height}'>"
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bars(
    items: Sequence[tuple[str, float]], title: str, *, unit: str = "", width: int = 560, max_value: float | None = None
) -> str:
    """Horizontal bars, one per (label, value), largest scale first in the order given."""
    # Room for the longest label (about 7 px a character at 12 px), at least 170 px.
    label_w, bar_h, gap = max([170] + [12 + 7 * len(label) for label, _ in items]), 18, 6
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
            f"<text x='{label_w + w + 4:.1f}' y='{y + bar_h - 5}' {_FONT}>{escape(text)}</text>"
        )
    return _svg(width, height, title, body, css_class="bars")


def columns(
    categories: Sequence[str],
    series: Sequence[Series],
    title: str,
    *,
    width: int = 640,
    height: int = 220,
    labels: Sequence[str] | None = None,
) -> str:
    """Stacked columns: one per category (e.g. a week), one colour per series (a channel).
    `labels`: shorter names for the axis (default: the categories, which the tooltips show)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    peak = max([*totals, 1])
    # Room on the left for the largest figure (about 7 px a character at 12 px).
    left, bottom, top_pad, legend_h = max(40, 10 + 7 * len(_number(peak))), 34, 8, 18
    plot_h = height - bottom - top_pad - legend_h
    n = max(1, len(categories))
    slot = (width - left - 8) / n
    col_w = max(2.0, slot * 0.7)
    axis = list(labels) if labels is not None else list(categories)
    body = [
        f"<line x1='{left}' y1='{top_pad + legend_h + plot_h}' x2='{width - 4}' y2='{top_pad + legend_h + plot_h}' "
        "stroke='#999'/>",
        f"<text x='{left - 4}' y='{top_pad + legend_h + 10}' text-anchor='end' {_FONT}>{_number(peak)}</text>",
        f"<text x='{left - 4}' y='{top_pad + legend_h + plot_h}' text-anchor='end' {_FONT}>0</text>",
    ]
    for k, s in enumerate(series):  # the legend
        key_x = left + k * 110
        body.append(
            f"<rect x='{key_x}' y='{top_pad}' width='10' height='10' fill='{PALETTE[k % len(PALETTE)]}'/>"
            f"<text x='{key_x + 14}' y='{top_pad + 9}' {_FONT}>{escape(s.name)}</text>"
        )
    widest = max([len(label) for label in axis] + [1]) * 7 + 8  # a label never runs into the next
    label_every = max(1, round(n / 12), -(-widest // max(1, int(slot))))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - col_w) / 2
        y: float = top_pad + legend_h + plot_h
        for k, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = value / peak * plot_h
            y -= h
            body.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{col_w:.1f}' height='{h:.1f}' "
                f"fill='{PALETTE[k % len(PALETTE)]}'><title>{escape(category)} · {escape(s.name)}: "
                f"{_number(value)}</title></rect>"
            )
        if i % label_every == 0:
            body.append(
                f"<text x='{x + col_w / 2:.1f}' y='{height - 14}' text-anchor='middle' {_FONT}>{escape(axis[i])}</text>"
            )
    return _svg(width, height, title, body, css_class="columns")


STEPS_A_CHART = 25  # categories in one chart: more make it too long to read (or, printed, a page)


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    title: str,
    *,
    width: int = 720,
    max_value: float | None = None,
    label_w: int | None = None,
) -> str:
    """Horizontal stacked bars: a row per category (e.g. a campaign's step), labelled on
    the left, one colour per series (e.g. a state). Its height grows with the rows, never
    its width: a long campaign stays readable on a phone and a wide screen alike, where
    columns (`columns`) would make its SVG wider than any screen and, scaled down to fit,
    a few pixels tall. `max_value` and `label_w` (`label_width` of the whole list): the
    same scale and the same left edge for charts split from one list."""
    label_w = label_w or label_width(categories)
    bar_h, gap, legend_h = 16, 6, 22
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    peak = max_value if max_value else max([*totals, 1])
    span = width - label_w - 60
    body = []
    for k, s in enumerate(series):  # the legend
        key_x = label_w + k * 100
        body.append(
            f"<rect x='{key_x}' y='4' width='10' height='10' fill='{PALETTE[k % len(PALETTE)]}'/>"
            f"<text x='{key_x + 14}' y='13' {_FONT}>{escape(s.name)}</text>"
        )
    for i, category in enumerate(categories):
        y = legend_h + gap + i * (bar_h + gap)
        shown = (
            category if len(category) * _CHAR_W + 12 <= label_w else category[: int((label_w - 12) / _CHAR_W) - 1] + "…"
        )
        body.append(f"<text x='{label_w - 6}' y='{y + bar_h - 4}' text-anchor='end' {_FONT}>{escape(shown)}</text>")
        x: float = label_w
        for k, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            w = value / peak * span if peak > 0 else 0.0
            body.append(
                f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{PALETTE[k % len(PALETTE)]}'>"
                f"<title>{escape(category)} · {escape(s.name)}: {_number(value)}</title></rect>"
            )
            x += w
        body.append(f"<text x='{x + 4:.1f}' y='{y + bar_h - 4}' {_FONT}>{_number(totals[i])}</text>")
    height = legend_h + gap + max(1, len(categories)) * (bar_h + gap)
    return _svg(width, height, title, body, css_class="stacked")


def label_width(labels: Sequence[str]) -> int:
    """Room on the left for the longest label (at most 260 px: a longer one is cut with "…")."""
    return min(260, max([120] + [12 + math.ceil(_CHAR_W * len(label)) for label in labels]))


def split(items: Sequence[str], size: int = STEPS_A_CHART) -> list[tuple[int, int]]:
    """(start, end) of each part of at most `size` items (one empty part when there are none)."""
    return [(i, min(i + size, len(items))) for i in range(0, len(items), size)] or [(0, 0)]


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
        body.append(
            f"<rect x='{middle - w / 2:.1f}' y='{y}' width='{w:.1f}' height='{bar_h}' "
            f"fill='{PALETTE[i % len(PALETTE)]}' opacity='0.85'><title>{escape(label)}: {_number(value)}"
            f"</title></rect><text x='{middle}' y='{y + bar_h - 7}' text-anchor='middle' {_FONT}>"
            f"{escape(label)} · {_number(value)}</text>"
        )
    return _svg(width, height, title, body, css_class="funnel")


def _label_rows(spans: Sequence[tuple[float, float]], gap: float = 8) -> list[int]:
    """A row for each (left, right) label span, the first in which it overlaps no other
    (spans in the order given, which should be left to right)."""
    edges: list[float] = []  # per row: the right edge of its last label
    rows = []
    for lo, hi in spans:
        row = next((r for r, edge in enumerate(edges) if edge + gap <= lo), len(edges))
        if row == len(edges):
            edges.append(hi)
        else:
            edges[row] = hi
        rows.append(row)
    return rows


def timeline(
    marks: Sequence[tuple[float, str, str]],
    days: float,
    title: str,
    *,
    width: int = 720,
    colours: Mapping[str, str] | None = None,
) -> str:
    """Marks on a line of `days` days: (day, label, kind) each; kinds share a colour.
    `colours` (kind -> colour) keeps a kind's colour the same across charts; kinds it
    does not name take the palette in order of appearance. Labels go below the line, in
    as many rows as it takes for none to overlap, each tied to its mark by a thin line."""
    left, right, line_y, row_h = 20, 20, 40, 16
    kinds = list(dict.fromkeys(kind for _, _, kind in marks))
    chosen = dict(colours or {})

    def colour_of(kind: str) -> str:
        # A caller's colour goes into an attribute: escaped like every text here.
        return escape(chosen.get(kind) or PALETTE[kinds.index(kind) % len(PALETTE)], quote=True)

    span = width - left - right
    xs = [left + min(max(day, 0), days) / max(days, 1) * span for day, _, _ in marks]
    order = sorted(range(len(marks)), key=lambda i: xs[i])
    centres: dict[int, float] = {}
    for i in order:  # a label is centred under its mark, but kept whole inside the chart
        half = len(marks[i][1]) * _CHAR_W / 2
        centres[i] = min(max(xs[i], left / 2 + half), width - right / 2 - half)
    rows_of = dict(
        zip(
            order,
            _label_rows(
                [
                    (centres[i] - len(marks[i][1]) * _CHAR_W / 2, centres[i] + len(marks[i][1]) * _CHAR_W / 2)
                    for i in order
                ]
            ),
            strict=False,
        )
    )
    rows = max(rows_of.values(), default=0) + 1
    height = line_y + 18 + row_h * rows + 26
    body = [f"<line x1='{left}' y1='{line_y}' x2='{width - right}' y2='{line_y}' stroke='#555' stroke-width='2'/>"]
    step = 30 if days <= 120 else 60 if days <= 400 else 180
    for tick in range(0, int(days) + 1, step):
        x = left + tick / max(days, 1) * span
        body.append(
            f"<line x1='{x:.1f}' y1='{line_y - 4}' x2='{x:.1f}' y2='{line_y + 4}' stroke='#555'/>"
            f"<text x='{x:.1f}' y='{line_y - 8}' text-anchor='middle' {_FONT}>day {tick}</text>"
        )
    for i, (day, label, kind) in enumerate(marks):
        x, colour = xs[i], colour_of(kind)
        y = line_y + 18 + row_h * rows_of[i]
        body.append(
            f"<line x1='{x:.1f}' y1='{line_y + 5}' x2='{centres[i]:.1f}' y2='{y - 11}' stroke='{colour}' "
            "stroke-width='0.75' opacity='0.6'/>"
            f"<circle cx='{x:.1f}' cy='{line_y}' r='5' fill='{colour}'><title>day {_number(day)}: "
            f"{escape(label)} ({escape(kind)})</title></circle>"
            f"<text x='{centres[i]:.1f}' y='{y}' text-anchor='middle' {_FONT} fill='{colour}'>"
            f"{escape(label)}</text>"
        )
    for k, kind in enumerate(kinds):  # the legend
        x = left + k * 120
        body.append(
            f"<circle cx='{x + 5}' cy='{height - 12}' r='5' fill='{colour_of(kind)}'/>"
            f"<text x='{x + 14}' y='{height - 8}' {_FONT}>{escape(kind)}</text>"
        )
    return _svg(width, height, title, body, css_class="timeline")


__all__ = ["PALETTE", "STEPS_A_CHART", "Series", "bars", "columns", "funnel", "split", "stacked_bars", "timeline"]
