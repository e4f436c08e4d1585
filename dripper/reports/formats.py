"""`dripper report` for people: terminal tables, CSV, and a self-contained HTML page.

Each takes the data `report.funnel` returns (the `--json` output), so the four formats
show the same figures.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup
from rich.table import Table

from dripper import csvsafe
from dripper.pages import render
from dripper.reports import charts
from dripper.reports.clicks import click_head, click_rows, click_tables
from dripper.reports.clicks import notes as click_notes
from dripper.reports.funnel import FIGURES, RATES
from dripper.store import STATES

# CSV and HTML column names for the outcome figures and their rates.
RATE_COLUMNS = tuple(f"{rate}_rate" for rate in RATES.values())
CSV_COLUMNS = ("campaign", "step", "enrolled", *STATES, "total", *FIGURES, *RATE_COLUMNS, "reasons")
BARS_A_CHART = 25  # steps in one conversion chart: 25 bars fit a page of A4 landscape
_SHORT = {"suppressed": "suppr.", "conversions": "conv.", "unsubscribes": "unsub.", "complaints": "compl."}


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def days(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def reasons_text(reasons: Mapping[str, int], sep: str = ", ") -> str:
    return sep.join(f"{reason} {n}" for reason, n in sorted(reasons.items()))


# --- CSV -------------------------------------------------------------------------------


def to_csv(data: Mapping[str, Any]) -> str:
    """One row per (campaign, step) with every figure; rates as fractions, empty when
    nothing was sent; reasons as `reason=n` joined by `; `."""
    buffer = io.StringIO()
    writer = csvsafe.Writer(buffer, lineterminator="\n")  # reasons can quote a server's reply
    writer.writerow(CSV_COLUMNS)
    for name, campaign in data["campaigns"].items():
        for step, row in campaign["steps"].items():
            rates = ["" if row["rates"][rate] is None else row["rates"][rate] for rate in RATES.values()]
            writer.writerow(
                [
                    name,
                    step,
                    row["enrolled"],
                    *(row[s] for s in STATES),
                    row["total"],
                    *(row[f] for f in FIGURES),
                    *rates,
                    "; ".join(f"{r}={n}" for r, n in sorted(row["reasons"].items())),
                ]
            )
    return buffer.getvalue()


# --- terminal --------------------------------------------------------------------------


def _outcome(row: Mapping[str, Any], figure: str) -> str:
    rate = row.get("rates", {}).get(RATES[figure])
    return f"{row[figure]}" if rate is None else f"{row[figure]} ({percent(rate)})"


def tables(data: Mapping[str, Any]) -> list[Table]:
    """The steps of each campaign with every figure (outcomes with their rate per touch
    sent), then the movements between stages, the time to conversion, the leads by stage."""
    out = []
    for name, campaign in data["campaigns"].items():
        table = Table(title=f"{name} — {campaign['enrolled']} lead(s) enrolled", title_justify="left")
        table.add_column("step", no_wrap=True)
        table.add_column("enrolled", justify="right")
        for column in (*STATES, *FIGURES):
            table.add_column(_SHORT.get(column, column), justify="right")
        table.add_column("reasons")
        for step, row in campaign["steps"].items():
            table.add_row(
                step,
                str(row["enrolled"]),
                *(str(row[s]) for s in STATES),
                *(_outcome(row, f) for f in FIGURES),
                reasons_text(row["reasons"]),
            )
        totals = campaign["totals"]
        table.add_row(
            "[bold]total[/bold]",
            f"[bold]{campaign['enrolled']}[/bold]",
            *(f"[bold]{totals[s]}[/bold]" for s in STATES),
            *(f"[bold]{_outcome(totals, f)}[/bold]" for f in FIGURES),
            "",
            end_section=True,
        )
        table.add_row(
            "[italic]unattributed[/italic]",
            "",
            *("" for _ in STATES),
            *(str(campaign["unattributed"][f]) for f in FIGURES),
            "",
        )
        out.append(table)
        out += variant_tables(name, campaign)
    moves = Table(title="Movements between stages", title_justify="left")
    for column in ("campaign", "from", "to", "moves"):
        moves.add_column(column, justify="right" if column == "moves" else "left")
    for name, campaign in data["campaigns"].items():
        for move in campaign["movements"]:
            moves.add_row(name, move["from"] or "?", move["to"], str(move["count"]))
    out.append(moves)
    timing = Table(title="From first touch sent to conversion", title_justify="left")
    for column in ("campaign", "converted leads", "median (days)", "90th percentile (days)"):
        timing.add_column(column, justify="left" if column == "campaign" else "right")
    for name, campaign in data["campaigns"].items():
        span = campaign["time_to_conversion"]
        timing.add_row(name, str(span["count"]), days(span["median_days"]), days(span["p90_days"]))
    out.append(timing)
    standing = Table(title="Leads by stage now", title_justify="left")
    for column in ("campaign", "stage", "leads"):
        standing.add_column(column, justify="right" if column == "leads" else "left")
    for name, campaign in data["campaigns"].items():
        for stage, n in campaign["funnel"].items():
            standing.add_row(name, stage, str(n))
    out.append(standing)
    return out + click_tables(data)


def ab_sentence(row: Mapping[str, Any]) -> str:
    """The A/B test's sentence, with the winner when one was declared."""
    test = row["ab_test"]
    sentence = str(test["sentence"])
    return f"{sentence} (winner: {test['winner']})" if test.get("winner") else sentence


def variant_tables(name: str, campaign: Mapping[str, Any]) -> list[Table]:
    """A table per step with A/B variants: each variant's sends and outcomes, the test's
    sentence as its caption."""
    out = []
    for step, row in campaign["steps"].items():
        if "variants" not in row:
            continue
        table = Table(title=f"{name} / {step} — A/B variants", title_justify="left", caption=ab_sentence(row))
        table.add_column("variant", no_wrap=True)
        for column in ("sent", *FIGURES):
            table.add_column(_SHORT.get(column, column), justify="right")
        for variant, figures in row["variants"].items():
            table.add_row(variant, str(figures["sent"]), *(_outcome(figures, f) for f in FIGURES))
        out.append(table)
    return out


# --- HTML ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A table cell of the HTML report: figures (numbers, rates, the dash of a rate of
    nothing) are right-aligned, words left."""

    text: str
    figure: bool


def _cell(value: Any) -> Cell:
    return Cell(str(value), _is_figure(value))


def _row(values: Sequence[Any]) -> list[Cell]:
    return [_cell(value) for value in values]


def _is_figure(value: Any) -> bool:
    return isinstance(value, (int, float)) or (
        isinstance(value, str) and (value in ("", "–") or value.rstrip("%").replace(".", "", 1).isdigit())
    )


@dataclass(frozen=True)
class CampaignPage:
    """What the HTML report shows of one campaign (report/report.html, in dripper/pages/templates)."""

    name: str
    enrolled: int
    sent: int
    replies: int
    conversions: int
    figures: list[tuple[Markup, str]]  # (an SVG chart, its caption)
    touches: list[tuple[str, list[Cell], str]]  # (step, figures, reasons)
    touch_totals: list[Cell]
    outcomes: list[tuple[str, list[Cell]]]
    outcome_totals: list[Cell]
    unattributed: list[Cell]
    movements: list[list[Cell]]
    conversion_time: list[Cell]
    stages: list[list[Cell]]
    clicks: list[list[Cell]] = field(default_factory=list)  # reports/clicks.py
    click_head: tuple[str, ...] = ()
    click_notes: tuple[str, ...] = ()
    # A/B tests: (step, the test's sentence, a row of figures per variant)
    ab_tests: list[tuple[str, str, list[list[Cell]]]] = field(default_factory=list)


def _outcome_figures(row: Mapping[str, Any]) -> list[Cell]:
    out: list[Any] = [row["sent"]]
    for figure, rate in RATES.items():
        out += [row[figure], percent(row["rates"][rate])]
    return _row(out)


def _campaign_page(name: str, campaign: Mapping[str, Any], weekly: Mapping[str, Any] | None) -> CampaignPage:
    totals = campaign["totals"]
    unattributed: list[Any] = [""]
    for figure in RATES:
        unattributed += [campaign["unattributed"][figure], ""]
    span = campaign["time_to_conversion"]
    return CampaignPage(
        name=name,
        enrolled=campaign["enrolled"],
        sent=totals["sent"],
        replies=totals["replies"],
        conversions=totals["conversions"],
        figures=_charts(name, campaign, weekly),
        # Touches by step: how far tracks got, what was sent, suppressed, skipped, and why.
        touches=[
            (step, _row([row["enrolled"], *(row[s] for s in STATES), row["total"]]), reasons_text(row["reasons"]))
            for step, row in campaign["steps"].items()
        ],
        touch_totals=_row([campaign["enrolled"], *(totals[s] for s in STATES), sum(totals[s] for s in STATES)]),
        # Outcomes by step: each figure and its rate per touch sent; then the ones no touch was found for.
        outcomes=[(step, _outcome_figures(row)) for step, row in campaign["steps"].items()],
        outcome_totals=_outcome_figures(totals),
        unattributed=_row(unattributed),
        movements=[_row((m["from"] or "?", m["to"], m["count"])) for m in campaign["movements"]],
        conversion_time=_row((span["count"], days(span["median_days"]), days(span["p90_days"]))),
        stages=[_row(item) for item in campaign["funnel"].items()],
        clicks=[_row(row) for row in click_rows(campaign)],
        click_head=click_head(campaign),
        click_notes=click_notes(campaign),
        ab_tests=[
            (step, ab_sentence(row), [[_cell(name), *_outcome_figures(v)] for name, v in row["variants"].items()])
            for step, row in campaign["steps"].items()
            if "variants" in row
        ],
    )


def _week_label(monday: str) -> str:
    return datetime.fromisoformat(monday).strftime("%d %b %Y")


def _charts(name: str, campaign: Mapping[str, Any], weekly: Mapping[str, Any] | None) -> list[tuple[Markup, str]]:
    """The campaign's charts with their captions. The SVG is markup `charts` made, which
    escapes every label it prints."""
    weeks = weekly["weeks"] if weekly else []
    series = [charts.Series(channel, values) for channel, values in (weekly["channels"] if weekly else {}).items()]
    sends = charts.columns(
        [f"week of {_week_label(w)}" for w in weeks],
        series,
        f"{name}: touches sent per week, by channel",
        width=720,
        labels=[datetime.fromisoformat(w).strftime("%d %b") for w in weeks],
    )
    converting = [
        (step, round(row["rates"]["conversion"] * 100, 1))
        for step, row in campaign["steps"].items()
        if row["rates"]["conversion"] is not None
    ]
    figures = [(Markup(sends), "Touches sent per week (weeks from Monday, UTC), by channel")]
    # A long campaign's steps in charts of BARS_A_CHART, so that each fits a printed page; on
    # one scale, so that bars compare across them.
    peak = max([rate for _, rate in converting] + [1.0])
    chunks = [converting[i : i + BARS_A_CHART] for i in range(0, len(converting), BARS_A_CHART)] or [[]]
    for i, chunk in enumerate(chunks):
        part = (
            f" (steps {i * BARS_A_CHART + 1}–{i * BARS_A_CHART + len(chunk)} of {len(converting)})"
            if len(chunks) > 1
            else ""
        )
        svg = charts.bars(chunk, f"{name}: conversions per touch sent, by step{part}", unit="%", max_value=peak)
        figures.append(
            (
                Markup(svg),
                f"Conversion rate by step{part}: conversions counted for the step per touch of it sent"
                if converting
                else "Conversion rate by step: no touch sent yet",
            )
        )
    stages = charts.funnel(list(campaign["funnel"].items()), f"{name}: leads by stage now")
    figures.append((Markup(stages), "The funnel: leads in each stage now"))
    return figures


def html_page(
    data: Mapping[str, Any], generated: datetime, weekly: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """A self-contained HTML5 page: inline CSS and SVG charts, no script, nothing fetched;
    it prints on A4 landscape, a campaign a page. `weekly`: `report.weekly_sends`."""
    outcome_head = ["step", "sent"]
    for figure, rate in RATES.items():
        outcome_head += [figure, f"{rate} rate"]
    return (
        render(
            "report/report.html",
            stamp=generated.isoformat(timespec="seconds"),
            window=data.get("attribution_window", ""),
            campaigns=[
                _campaign_page(name, campaign, (weekly or {}).get(name)) for name, campaign in data["campaigns"].items()
            ],
            touch_head=["step", "enrolled", *STATES, "total", "reasons"],
            outcome_head=outcome_head,
            variant_head=["variant", *outcome_head[1:]],
        )
        + "\n"
    )


__all__ = ["CSV_COLUMNS", "html_page", "tables", "to_csv"]
