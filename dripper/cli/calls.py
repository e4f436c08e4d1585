"""`dripper calls`: the sales team's list of calls due."""

from __future__ import annotations

import json
from datetime import date

import click
from rich.table import Table
from rich.text import Text

from dripper.cli.app import AT, App, at_or_now, fail, out, pass_app


# --- calls and letters ---------------------------------------------------------------
@click.command()
@click.option("--date", "day", help="Business day YYYY-MM-DD (default: today; `all` for every day).")
@click.option("--owner", help="Only this caller's tasks.")
@click.option("--open", "open_only", is_flag=True, help="Only calls without an outcome yet.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout instead of a table.")
@click.option("--json", "as_json", is_flag=True)
@AT
@pass_app
def calls(
    app: App, day: str | None, owner: str | None, open_only: bool, as_csv: bool, as_json: bool, at: str | None
) -> None:
    """The phone calls due on a day, with talking points: the sales team's list."""
    from dripper.channels.calls import tasks as calltasks
    from dripper.store.queries import callrows

    loaded = app.loaded()
    if day is None:
        instant = at_or_now(at)
        day = calltasks.business_day(instant, loaded.campaigns.defaults.timezone)
    elif day != "all":
        try:
            date.fromisoformat(day)
        except ValueError:
            fail(f"--date {day!r}: write it as YYYY-MM-DD (or all)", code=1)
    with app.store().begin() as conn:
        tasks = callrows.listing(conn, day=None if day == "all" else day, owner=owner, open_only=open_only)
    office = loaded.campaigns.defaults.timezone
    rows = calltasks.rows_for_table(tasks, office)
    if as_csv:
        click.echo(calltasks.to_csv(tasks, office), nl=False)
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        out.print(f"no calls{' for ' + owner if owner else ''} on {day}")
        return
    every_day = day == "all"  # the list spans days: each row says which
    table = Table(title="Calls" if every_day else f"Calls on {day}", show_lines=True)
    columns = ("day", "owner", "lead", "phone", "campaign / step", "outcome", "talking points")
    for column in columns if every_day else columns[1:]:
        table.add_column(column, overflow="fold")
    for row in rows:
        who = "\n".join(p for p in (row["name"], row["company"], row["email"]) if p)
        points = row["talking_points"] if len(row["talking_points"]) < 400 else row["talking_points"][:397] + "..."
        cells = [
            Text(row["owner"] or "-"),
            Text(who),
            Text(row["phone"]),
            Text(f"{row['campaign']}\n{row['step']}"),
            Text(_outcome(row)),
            Text(points),
        ]
        table.add_row(*([Text(row["day"])] if every_day else []), *cells)
    out.print(table)


def _outcome(row: dict[str, str]) -> str:
    """`open` (with how late, for a call listed after the day it fell due), or the outcome."""
    if row["outcome"]:
        return row["outcome"] + (f"\n{row['note']}" if row["outcome"] == "cancelled" and row["note"] else "")
    return f"open, overdue since {row['due']}" if row["overdue"] else "open"
