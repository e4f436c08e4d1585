"""`dripper plan`: one lead's touches."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from dripper.cli.app import App, campaigns_or_none, err, fail, out, pass_app
from dripper.leads.records import full_name, lookup_form
from dripper.reports import funnel as report_mod
from dripper.store.queries import leadrows


# --- plan / preview / simulate / report -------------------------------------------------
@click.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def plan(app: App, email: str, as_json: bool) -> None:
    """A lead's past and upcoming touches, with states and reasons."""
    from dripper.planning.planner import Planner

    config = campaigns_or_none(app)
    with app.store().begin() as conn:
        lead = leadrows.by_email(conn, lookup_form(email))
        if lead is None:
            fail(f"no lead {email!r}", code=1)
        data = report_mod.lead_plan(conn, lead, Planner(config) if config else None)
    if config is None:
        err.print(
            f"dripper: warning: {app.settings.campaigns_path} could not be read: only touches already planned "
            "are listed",
            markup=False,
            soft_wrap=True,
        )
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    info = data["lead"]
    name = full_name(info["first_name"], info["last_name"])
    out.print(
        f"[bold]{info['email']}[/bold] {name} — stage {info['stage']} since {info['stage_entered_at']}, "
        f"campaign {info['campaign']}, status {info['status']}"
    )
    table = Table()
    for col in ("due (UTC)", "campaign", "step", "channel", "kind", "state", "reason", "sent at"):
        table.add_column(col)
    for t in data["touches"]:
        table.add_row(
            t["due"][:16].replace("T", " "),
            t["campaign"],
            t["step"],
            t["channel"],
            t["kind"],
            t["state"],
            t["reason"] or _touch_note(t),
            (t["sent_at"] or "")[:16].replace("T", " "),
        )
    out.print(table)
    problem = report_mod.letters_skipped_because(data)
    if problem is not None:
        out.print(f"[yellow]Letters will be skipped (no_postal_address): {problem}[/]")
    if data["events"]:
        out.print(_events_table(data["events"]))


def _events_table(events: list[dict[str, Any]]) -> Table:
    """What happened to the lead (replies, stage changes, calls, bounces...), oldest first.
    Every cell is lead or inbound data: added as Text, so no `[…]` in it is read as markup."""
    table = Table(title="events", title_justify="left")
    for col in ("at (UTC)", "event", "source", "detail"):
        table.add_column(col, overflow="fold")
    for event in events:
        table.add_row(
            Text((event["at"] or "")[:16].replace("T", " ")),
            Text(str(event["kind"])),
            Text(str(event["source"] or "")),
            Text(_event_detail(event["detail"])),
        )
    return table


def _event_detail(detail: object) -> str:
    """An event's detail as `key: value` pairs on one line each (its JSON is in --json)."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    return "\n".join(f"{key}: {value}" for key, value in detail.items() if value not in (None, "", [], {}))


def _touch_note(touch: dict[str, Any]) -> str:
    if "applies" in touch:  # a condition, not decided yet: what it says for the lead now
        now = {True: "holds now", False: "false now: would be skipped", None: "cannot be evaluated"}
        return f"when {touch['when']}: {now[touch['applies']]}"
    if "batch" in touch:
        return f"batch {touch['batch']}" + (", mailed" if touch.get("mailed_at") else "")
    if "call" in touch:
        call = touch["call"]
        return (
            f"call {call['day']}" + (f" ({call['owner']})" if call["owner"] else "") + f": {call['outcome'] or 'open'}"
        )
    return ""
