"""`dripper leads import|add|list|show|export|pause|resume|stop|forget`: parsing and printing;
the operations are dripper/leads/actions.py's."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from dripper.cli.app import AT, App, at_or_now, err, fail, out, pass_app

if TYPE_CHECKING:  # the actions are imported when a command runs: `dripper --help` stays quick
    from sqlalchemy import Connection

    from dripper.leads.actions import Changed


# --- leads -----------------------------------------------------------------------------
@click.group()
def leads() -> None:
    """Import, add, look up, pause, stop or forget leads."""


def secrets(app: App) -> tuple[str, ...]:
    """The secrets suppression entries may be hashed under: the current one first."""
    from dripper.tokens import signing_keys

    keys = signing_keys(app.settings, app.store())
    return (keys.current, *keys.old)


@leads.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@AT
@click.option("--batch-size", default=10000, show_default=True, help="Leads per transaction.")
@click.option(
    "--delimiter",
    type=click.Choice([",", ";", "tab"]),
    help="The cell separator (default: found from the header line: comma, semicolon or tab).",
)
@click.option(
    "--encoding",
    metavar="NAME",
    help="The file's encoding, e.g. utf-8, cp1252, latin-1 (default: UTF-8, else detected).",
)
@pass_app
def leads_import(
    app: App, file: Path, at: str | None, batch_size: int, delimiter: str | None, encoding: str | None
) -> None:
    """Upsert leads from a CSV file; bad rows are reported and skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dripper.leads.csvfile import open_lead_file
    from dripper.leads.importer import Problem, import_file
    from dripper.leads.records import LeadError

    loaded = app.loaded()
    instant = at_or_now(at)
    try:
        lead_file = open_lead_file(file, delimiter=delimiter, encoding=encoding)
    except OSError as exc:
        fail(f"{file}: cannot read: {exc}", code=1)
    except LeadError as exc:
        fail(f"{file}:1: {exc}", code=1)
    total = lead_file.lines or 1
    store = app.store()
    # Refreshed after each batch, not by a thread of its own: the import forks its reader,
    # and a process that forks should have no other thread.
    with Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task(file.name, total=total)

        def on_batch(last_line: int, problems: list[Problem]) -> None:
            for line, message in problems:
                progress.console.print(f"{file}:{line}: {message}", markup=False, soft_wrap=True)
            progress.update(task, completed=min(last_line, total), refresh=True)

        try:
            totals = import_file(store, loaded, lead_file, instant, batch_size, on_batch, secrets=secrets(app))
        except LeadError as exc:
            fail(f"{file}:1: {exc}", code=1)
    merged = totals.merged
    imported = merged.created + merged.updated + merged.unchanged
    out.print(
        f"{file}: {imported} lead(s) imported ({merged.created} new, {merged.updated} updated, "
        f"{merged.unchanged} unchanged, {merged.moved} changed stage), {totals.skipped} row(s) skipped"
        + (f", {totals.warned} warning(s)" if totals.warned else "")
        + f"; {lead_file.format.describe()}"
    )
    if totals.skipped:
        raise SystemExit(2)


@leads.command("add")
@click.argument("email")
@click.option("--stage", help="Funnel stage (default: defaults.stage or the campaign's first).")
@click.option("--campaign", help="Campaign (default: defaults.campaign or the first one).")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--company", default="")
@click.option("--timezone", "tz", default="", help="IANA time zone (default: defaults.timezone).")
@click.option("--language", default="", help="BCP 47 language (de, fr-CA; default: the campaign's language).")
@click.option("--owner", default="", help="The lead's sales owner.")
@click.option(
    "--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="A template attribute (lead.attrs.KEY); repeatable."
)
@AT
@pass_app
def leads_add(
    app: App,
    email: str,
    stage: str | None,
    campaign: str | None,
    first_name: str,
    last_name: str,
    company: str,
    tz: str,
    language: str,
    owner: str,
    attrs: tuple[str, ...],
    at: str | None,
) -> None:
    """Add (or update) one lead."""
    from dripper.leads.adding import NotALead, add_lead
    from dripper.leads.records import LeadError, normalize_email

    try:  # as it is kept (an internationalized domain in ASCII), so that an existing lead is found
        email = normalize_email(email)
    except LeadError as exc:
        fail(str(exc), code=1)
    loaded = app.loaded()
    raw: dict[str, str | None] = {
        "email": email,
        "stage": stage,
        "campaign": campaign,
        "first_name": first_name,
        "last_name": last_name,
        "company": company,
        "timezone": tz,
        "language": language,
        "owner": owner,
    }
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"bad --attr {item!r}: use KEY=VALUE", code=1)
        raw[key.strip()] = value
    instant = at_or_now(at)
    known = secrets(app)
    with app.store().begin() as conn:
        try:
            added = add_lead(conn, loaded, raw, instant, secrets=known)
        except NotALead as exc:
            fail(str(exc), code=1)
    lead = added.lead
    out.print(f"{lead.email}: {added.outcome} (stage {lead.stage}, campaign {lead.campaign})")
    if loaded.campaigns.senders and lead.owner.strip() and not loaded.campaigns.book.knows(lead.owner):
        from dripper.leads.importer import owner_warning

        err.print(f"dripper: warning: {owner_warning(lead.owner)}", markup=False, soft_wrap=True)


# --- lead management and privacy (issue 20) ----------------------------------------------
def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else ""


def _row(table: Table, *cells: str) -> None:
    """A row of text as it is: a lead's fields come from outside and are no rich markup."""
    from rich.text import Text

    table.add_row(*(Text(cell) for cell in cells))


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _change(app: App, action: Callable[[Connection], Changed]) -> Changed:
    """One lead action in its own transaction; an unknown lead exits 1 saying so."""
    from dripper.leads.actions import NoSuchLead

    with app.store().begin() as conn:
        try:
            return action(conn)
        except NoSuchLead as exc:
            fail(str(exc), code=1)


def _report(changed: Changed, as_json: bool, line: str) -> None:
    if as_json:
        click.echo(json.dumps(asdict(changed), default=_json_default))
    else:
        out.print(line, markup=False)


@leads.command("list")
@click.option("--campaign", help="Only this campaign's leads.")
@click.option("--stage", help="Only leads in this stage.")
@click.option("--status", help="Only leads with this status (active, paused, stopped, unsubscribed, forgotten, …).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON array of leads.")
@AT
@pass_app
def leads_list(
    app: App, campaign: str | None, stage: str | None, status: str | None, limit: int, as_json: bool, at: str | None
) -> None:
    """Leads in the order they were added, with their status."""
    from dripper.leads.actions import list_leads

    with app.store().begin() as conn:
        found = list_leads(conn, at_or_now(at), campaign=campaign, stage=stage, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps([asdict(s) for s in found], default=_json_default))
        return
    table = Table("id", "email", "campaign", "stage", "status", "added")
    for lead in found:
        _row(table, str(lead.id), lead.email, lead.campaign, lead.stage, lead.status, _when(lead.created_at))
    out.print(table)


@leads.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True)
@AT
@pass_app
def leads_show(app: App, email: str, as_json: bool, at: str | None) -> None:
    """One lead: its fields, consent, status, touches and events."""
    from dripper.leads.actions import NoSuchLead, show

    with app.store().begin() as conn:
        try:
            detail = show(conn, email, at_or_now(at))
        except NoSuchLead as exc:
            fail(str(exc), code=1)
    if as_json:
        click.echo(json.dumps(asdict(detail), default=_json_default))
        return
    lead = detail.lead
    out.print(
        f"{lead.email} (id {lead.id}): {detail.status}; campaign {lead.campaign}, stage {lead.stage}", markup=False
    )
    for name in ("first_name", "last_name", "company", "timezone", "paused_until"):
        value = getattr(lead, name)
        if value:
            out.print(f"  {name}: {value}", markup=False)
    for key, value in sorted(lead.attrs.items()):
        out.print(f"  attrs.{key}: {value}", markup=False)
    out.print(f"  consent: {detail.consent.source or '-'} at {detail.consent.at or '-'}", markup=False)
    touches = Table("campaign", "step", "channel", "due", "state", "reason", title="touches")
    for t in detail.touches:
        _row(touches, t.campaign, t.step, t.channel, _when(t.due), t.state, t.reason or "")
    out.print(touches)
    events = Table("at", "kind", "source", title="events")
    for e in detail.events:
        _row(events, _when(e.at), e.kind, e.source)
    out.print(events)


@leads.command("export")
@click.argument("email")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file (default: stdout).")
@AT
@pass_app
def leads_export(app: App, email: str, output: Path | None, at: str | None) -> None:
    """Everything dripper holds about a lead, as JSON (an access request)."""
    from dripper.leads.actions import NoSuchLead, export

    with app.store().begin() as conn:
        try:
            document = export(conn, email, at_or_now(at)).to_json()
        except NoSuchLead as exc:
            fail(str(exc), code=1)
    if output is None:
        click.echo(document)
    else:
        output.write_text(document + "\n", encoding="utf-8")
        err.print(f"{output}: written", markup=False)


@leads.command("pause")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="What changed, as one JSON object.")
@click.option("--months", default=3, show_default=True, type=click.IntRange(1, 24), help="How long.")
@AT
@pass_app
def leads_pause(app: App, email: str, as_json: bool, months: int, at: str | None) -> None:
    """Hold every touch of a lead for some months (as its preference page can)."""
    from dripper.leads.actions import pause

    planner = app.loaded().planner
    changed = _change(app, lambda conn: pause(conn, planner, email, months, at_or_now(at)))
    _report(changed, as_json, f"{changed.email}: paused until {_when(changed.until)}")


@leads.command("resume")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="What changed, as one JSON object.")
@AT
@pass_app
def leads_resume(app: App, email: str, as_json: bool, at: str | None) -> None:
    """Lift a stop or a pause."""
    from dripper.leads.actions import resume

    changed = _change(app, lambda conn: resume(conn, email, at_or_now(at)))
    _report(changed, as_json, f"{changed.email}: {changed.action} ({changed.touches} touch(es) due again)")


@leads.command("stop")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="What changed, as one JSON object.")
@AT
@pass_app
def leads_stop(app: App, email: str, as_json: bool, at: str | None) -> None:
    """Stop every campaign for a lead (`resume` undoes it)."""
    from dripper.leads.actions import stop

    changed = _change(app, lambda conn: stop(conn, email, at_or_now(at)))
    _report(changed, as_json, f"{changed.email}: stopped ({changed.touches} pending touch(es) suppressed)")


@leads.command("forget")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="What changed, as one JSON object.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@AT
@pass_app
def leads_forget(app: App, email: str, as_json: bool, yes: bool, at: str | None) -> None:
    """Erase a lead's personal data (GDPR Art. 17); its address stays suppressed, hashed."""
    from dripper.leads.actions import forget

    if not yes:
        click.confirm(f"Erase everything personal about {email}? This cannot be undone", abort=True, err=True)
    secret = secrets(app)[0]
    changed = _change(app, lambda conn: forget(conn, email, secret, at_or_now(at)))
    _report(changed, as_json, f"{email}: forgotten (now {changed.email}; the address is on the do-not-contact list)")


@leads.command("purge")
@click.option("--json", "as_json", is_flag=True)
@AT
@pass_app
def leads_purge(app: App, as_json: bool, at: str | None) -> None:
    """Apply `retention:` now: delete old events, blank old message text (`dripper run` does it hourly)."""
    from dripper.leads.retention import purge

    loaded = app.loaded()
    with app.store().begin() as conn:
        purged = purge(conn, loaded.campaigns.retention, at_or_now(at))
    if as_json:
        click.echo(json.dumps(asdict(purged), default=_json_default))
        return
    out.print(
        f"{purged.events} event(s) before {_when(purged.events_before)} deleted; "
        f"{purged.bodies} message text(s) before {_when(purged.bodies_before)} blanked",
        markup=False,
    )
