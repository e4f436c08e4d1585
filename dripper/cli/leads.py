"""`dripper leads import|add`."""

from __future__ import annotations

from pathlib import Path

import click

from dripper.cli.app import AT, App, at_or_now, err, fail, out, pass_app


# --- leads -----------------------------------------------------------------------------
@click.group()
def leads() -> None:
    """Import or add leads."""


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
            totals = import_file(store, loaded, lead_file, instant, batch_size, on_batch)
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
    with app.store().begin() as conn:
        try:
            added = add_lead(conn, loaded, raw, instant)
        except NotALead as exc:
            fail(str(exc), code=1)
    lead = added.lead
    out.print(f"{lead.email}: {added.outcome} (stage {lead.stage}, campaign {lead.campaign})")
    if loaded.campaigns.senders and lead.owner.strip() and not loaded.campaigns.book.knows(lead.owner):
        from dripper.leads.importer import owner_warning

        err.print(f"dripper: warning: {owner_warning(lead.owner)}", markup=False, soft_wrap=True)
