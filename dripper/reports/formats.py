"""`dripper report` for people: terminal tables, CSV, and a self-contained HTML page.

Each takes the data `report.funnel` returns (the `--json` output), so the four formats
show the same figures.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from rich.table import Table

from dripper import csvsafe
from dripper.reports import charts
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
    return out


# --- HTML ------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;line-height:1.4}
h1{margin-bottom:0}h2{margin-top:2em;border-bottom:2px solid #2f6f8f}h3{margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f2f2f2}.text{text-align:left}td.reasons{min-width:16em}
tr.total td{font-weight:bold;border-top:2px solid #888}tr.unattributed td{font-style:italic;color:#555}
.charts{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
figure{margin:0 0 1em}figcaption{font-size:13px;color:#555}svg.chart{max-width:100%;height:auto}
.note{color:#555;font-size:13px}
@media print{
  @page{size:A4 landscape;margin:12mm}
  body{margin:0;font-size:11px}table{font-size:10px}th,td{padding:2px 5px}
  section.campaign{break-before:page}section.campaign:first-of-type{break-before:auto}
  .charts{display:block}figure{display:block}
  figure,tr{break-inside:avoid}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def _is_figure(value: Any) -> bool:
    """Numbers (and rates, and the dash of a rate of nothing) are right-aligned; words not."""
    return isinstance(value, (int, float)) or (
        isinstance(value, str) and (value in ("", "–") or value.rstrip("%").replace(".", "", 1).isdigit())
    )


def _cells(values: Sequence[Any], *, tag: str = "td") -> str:
    return "".join(
        f"<{tag}>{escape(str(value))}</{tag}>"
        if _is_figure(value)
        else f"<{tag} class='text'>{escape(str(value))}</{tag}>"
        for value in values
    )


def _head(names: Sequence[str]) -> str:
    return (
        "<thead><tr>"
        + "".join(
            f"<th class='text'>{escape(n)}</th>"
            if i == 0 or n in ("reasons", "from", "to", "stage")
            else f"<th>{escape(n)}</th>"
            for i, n in enumerate(names)
        )
        + "</tr></thead>"
    )


def _touch_table(campaign: Mapping[str, Any]) -> str:
    """Touches by step: how far tracks got, what was sent, suppressed, skipped, and why."""
    parts = [f"<table class='touches'>{_head(['step', 'enrolled', *STATES, 'total', 'reasons'])}<tbody>"]
    for step, row in campaign["steps"].items():
        figures = [row["enrolled"], *(row[s] for s in STATES), row["total"]]
        parts.append(
            f"<tr><td class='text'>{escape(step)}</td>{_cells(figures)}"
            f"<td class='text reasons'>{escape(reasons_text(row['reasons']))}</td></tr>"
        )
    totals = campaign["totals"]
    figures = [campaign["enrolled"], *(totals[s] for s in STATES), sum(totals[s] for s in STATES)]
    parts.append(f"<tr class='total'><td class='text'>total</td>{_cells(figures)}<td></td></tr></tbody></table>")
    return "".join(parts)


def _outcome_table(campaign: Mapping[str, Any]) -> str:
    """Outcomes by step: each figure and its rate per touch sent; then the ones no touch was found for."""
    head = ["step", "sent"]
    for figure, rate in RATES.items():
        head += [figure, f"{rate} rate"]
    parts = [f"<table class='outcomes'>{_head(head)}<tbody>"]

    def figures(row: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = [row["sent"]]
        for figure, rate in RATES.items():
            out += [row[figure], percent(row["rates"][rate])]
        return out

    for step, row in campaign["steps"].items():
        parts.append(f"<tr><td class='text'>{escape(step)}</td>{_cells(figures(row))}</tr>")
    parts.append(f"<tr class='total'><td class='text'>total</td>{_cells(figures(campaign['totals']))}</tr>")
    unattributed: list[Any] = [""]
    for figure in RATES:
        unattributed += [campaign["unattributed"][figure], ""]
    parts.append(f"<tr class='unattributed'><td class='text'>unattributed</td>{_cells(unattributed)}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _small_table(head: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return f"<p class='note'>{escape(empty)}</p>"
    body = "".join(f"<tr>{_cells(row)}</tr>" for row in rows)
    return f"<table>{_head(head)}<tbody>{body}</tbody></table>"


def _week_label(monday: str) -> str:
    return datetime.fromisoformat(monday).strftime("%d %b %Y")


def _charts(name: str, campaign: Mapping[str, Any], weekly: Mapping[str, Any] | None) -> str:
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
    figures = [(sends, "Touches sent per week (weeks from Monday, UTC), by channel")]
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
                svg,
                f"Conversion rate by step{part}: conversions counted for the step per touch of it sent"
                if converting
                else "Conversion rate by step: no touch sent yet",
            )
        )
    stages = charts.funnel(list(campaign["funnel"].items()), f"{name}: leads by stage now")
    figures.append((stages, "The funnel: leads in each stage now"))
    return (
        "<div class='charts'>"
        + "".join(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>" for svg, caption in figures)
        + "</div>"
    )


def html_page(
    data: Mapping[str, Any], generated: datetime, weekly: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """A self-contained HTML5 page: inline CSS and SVG charts, no script, nothing fetched;
    it prints on A4 landscape, a campaign a page. `weekly`: `report.weekly_sends`."""
    stamp = generated.isoformat(timespec="seconds")
    window = data.get("attribution_window", "")
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>dripper report — {escape(stamp)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>dripper report</h1><p class='note'>Generated {escape(stamp)}. A reply, conversion, "
        "unsubscribe, bounce or complaint counts for the touch it answers (inbound mail matched to the "
        f"message), else for the last touch sent to the lead within {escape(window)} before it; else it is "
        "unattributed. Rates are per touch sent.</p></header>",
    ]
    for name, campaign in data["campaigns"].items():
        totals = campaign["totals"]
        parts.append(
            f"<section class='campaign'><h2>{escape(name)}</h2>"
            f"<p>{campaign['enrolled']} lead(s) enrolled · {totals['sent']} touch(es) sent · "
            f"{totals['replies']} repl(ies) · {totals['conversions']} conversion(s)</p>"
        )
        parts.append(_charts(name, campaign, (weekly or {}).get(name)))
        parts.append("<h3>Touches by step</h3>" + _touch_table(campaign))
        parts.append("<h3>Outcomes by step</h3>" + _outcome_table(campaign))
        moves = [(m["from"] or "?", m["to"], m["count"]) for m in campaign["movements"]]
        parts.append(
            "<h3>Movements between stages</h3>"
            + _small_table(("from", "to", "moves"), moves, "No stage changes recorded.")
        )
        span = campaign["time_to_conversion"]
        parts.append(
            "<h3>From first touch sent to conversion</h3>"
            + _small_table(
                ("converted leads", "median (days)", "90th percentile (days)"),
                [(span["count"], days(span["median_days"]), days(span["p90_days"]))],
                "",
            )
        )
        parts.append(
            "<h3>Leads by stage now</h3>"
            + _small_table(("stage", "leads"), list(campaign["funnel"].items()), "No leads.")
        )
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "".join(parts)


__all__ = ["CSV_COLUMNS", "html_page", "tables", "to_csv"]
