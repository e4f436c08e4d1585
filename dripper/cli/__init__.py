"""Command-line interface: argument parsing and output only; the work is done elsewhere."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from dripper import __version__
from dripper import config as config_mod
from dripper.campaign.model import CampaignFile
from dripper.clock import Clock, clock_at, parse_instant
from dripper.errors import ConfigError, UsageError
from dripper.leads.records import full_name, lookup_form
from dripper.reports import funnel as report_mod
from dripper.settings import Settings, from_env, secret_list
from dripper.store import Store, StoreUnavailable, leadrows, open_store

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass
class App:
    settings: Settings
    _store: Store | None = None
    _loaded: config_mod.Loaded | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def loaded(self) -> config_mod.Loaded:
        if self._loaded is None:
            try:
                self._loaded = config_mod.load(self.settings)
            except ConfigError as exc:
                for problem in exc.problems:
                    err.print(str(problem), markup=False, soft_wrap=True)
                fail(f"{len(exc.problems)} problem(s) in {self.settings.campaigns_path}; nothing was changed", code=1)
        return self._loaded

    def store(self) -> Store:
        if self._store is None:
            try:
                self._store = open_store(self.settings.database_url)
            except StoreUnavailable as exc:
                fail(str(exc), code=1)
            self.cleanups.append(self._store.dispose)
        return self._store


def warn_if_unsubscribe_not_https(settings: Settings) -> None:
    if settings.smtp_url and not settings.base_url.startswith("https://"):
        err.print(
            f"dripper: warning: DRIPPER_BASE_URL is {settings.base_url}: mailbox providers (Gmail, Yahoo) "
            "expect an https one-click unsubscribe URL",
            markup=False,
            soft_wrap=True,
        )


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"dripper: {message}", markup=False, soft_wrap=True)
    raise SystemExit(code)


def require_output_dirs(settings: Settings, config: CampaignFile) -> None:
    """Refuse to tick when a folder it writes into cannot be made or written."""
    from dripper.sending import outdirs

    channels = {
        step.channel for campaign in config.campaigns.values() for steps in campaign.stages.values() for step in steps
    }
    found = outdirs.problems(settings, channels)
    for problem in found[:-1]:
        err.print(f"dripper: {problem}", markup=False, soft_wrap=True)
    if found:
        fail(f"{found[-1]}; nothing was sent", code=1)


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        fail(f"bad --at {text!r}: use ISO-8601, e.g. 2026-11-23T09:00:00+00:00", code=1)


def _clock(at: str | None) -> Clock:
    _instant(at)
    return clock_at(at)


AT = click.option("--at", "at", metavar="ISO-8601", help="The instant this happens (default: now).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dripper")
@click.option("--database-url", envvar="DRIPPER_DATABASE_URL", help="SQLAlchemy URL [DRIPPER_DATABASE_URL].")
@click.option(
    "--campaigns",
    "campaigns_path",
    envvar="DRIPPER_CAMPAIGNS",
    type=click.Path(path_type=Path),
    help="Path of campaigns.yaml [DRIPPER_CAMPAIGNS].",
)
@click.option(
    "--templates",
    "templates_dir",
    envvar="DRIPPER_TEMPLATES",
    type=click.Path(path_type=Path),
    help="Templates folder [DRIPPER_TEMPLATES; default: templates/ beside campaigns.yaml].",
)
@click.option(
    "--smtp-url", envvar="DRIPPER_SMTP_URL", help="smtp://user:pass@host:port [DRIPPER_SMTP_URL]; unset = ./outbox/."
)
@click.option("--base-url", envvar="DRIPPER_BASE_URL", help="Public URL of `dripper serve` [DRIPPER_BASE_URL].")
@click.option(
    "--secret",
    envvar="DRIPPER_SECRET",
    help="Token-signing key [DRIPPER_SECRET; default: generated, kept in the database].",
)
@click.option(
    "--secret-old",
    "secret_old",
    envvar="DRIPPER_SECRET_OLD",
    multiple=True,
    metavar="SECRETS",
    help="Retired signing keys that still verify links and bounce addresses, separated by commas or "
    "whitespace; repeatable [DRIPPER_SECRET_OLD].",
)
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option(
    "--log-format",
    envvar="DRIPPER_LOG_FORMAT",
    type=click.Choice(["text", "json"], case_sensitive=False),
    help="Log lines as text, or one JSON object each [DRIPPER_LOG_FORMAT; default: text].",
)
@click.pass_context
def main(ctx: click.Context, verbose: int, **options: Any) -> None:
    """dripper: long follow-up sequences of e-mails and letters to sales leads."""
    from dripper import logs

    if options.get("base_url"):
        options["base_url"] = options["base_url"].rstrip("/")
    options["secret_old"] = tuple(s for text in options.get("secret_old") or () for s in secret_list(text)) or None
    for console in (out, err):  # piped output: whole lines rather than cells wrapped at 80 columns
        console.width = None if console.is_terminal else 200  # type: ignore[assignment]
    app = App(from_env().with_options(**options))
    logs.setup(
        logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        app.settings.log_format,
        app.settings.worker_id,
    )
    ctx.obj = app
    ctx.call_on_close(lambda: [cleanup() for cleanup in app.cleanups])


pass_app = click.make_pass_decorator(App)


# --- check -----------------------------------------------------------------------------
@main.command()
@click.option(
    "--against-db",
    is_flag=True,
    help="Then show what applying the file would change for the leads in "
    "the database, as `dripper diff` does (reads only).",
)
@AT
@pass_app
def check(app: App, against_db: bool, at: str | None) -> None:
    """Validate campaigns.yaml and every template it names."""
    loaded = app.loaded()
    steps = sum(len(track) for c in loaded.campaigns.campaigns.values() for track in c.stages.values())
    out.print(
        f"{app.settings.campaigns_path}: OK — {len(loaded.campaigns.campaigns)} campaign(s), {steps} step(s), "
        f"{len(loaded.templates.sources)} template file(s)"
    )
    _warn_if_letters_cannot_print(loaded.campaigns)
    if against_db:
        _print_diff(_diff_data(app, loaded.campaigns, None, at))


def _warn_if_letters_cannot_print(config: CampaignFile) -> None:
    """A warning, not an error: the file is fine, e-mails and calls go out, and letter
    touches wait until the libraries are installed. Only when a campaign has letters:
    loading WeasyPrint costs 0.4 s."""
    from dripper.channels.letters.libraries import probe

    if not any(
        step.channel == "letter"
        for campaign in config.campaigns.values()
        for steps in campaign.stages.values()
        for step in steps
    ):
        return
    missing = probe()
    if missing is not None:
        err.print(f"dripper: warning: {missing.line}; letter touches wait until then", markup=False, soft_wrap=True)


# --- diff ------------------------------------------------------------------------------
@main.command()
@click.option("--campaign", help="Only this campaign (default: every campaign whose schedule changed).")
@click.option("--at", "at", metavar="ISO-8601", help="Count as if the next tick applied the file then (default: now).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object: {"campaigns": {NAME: {"steps": {…}, "leads": {…}}}} (see the README).',
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when applying the file would change something, like git diff.")
@pass_app
def diff(app: App, campaign: str | None, at: str | None, as_json: bool, exit_code: bool) -> None:
    """What campaigns.yaml would change for the leads already in its campaigns, before it
    is applied: steps added, removed, renamed, retimed, moved or reordered, and for each
    step how many leads get it (and in which week), miss it, lose it, or see it move.

    A running `dripper run` applies a saved campaigns.yaml within a minute. So edit a copy
    and compare it with the live database before putting it in place:

        dripper --campaigns edited.yaml diff     (or DRIPPER_CAMPAIGNS=edited.yaml)

    It reads only: nothing is written (the next `tick` applies the file). Counts are as of
    --at (default: now). A broken file is refused, as `check` refuses it.
    """
    loaded = app.loaded()
    data = _diff_data(app, loaded.campaigns, campaign, at)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_diff(data)
    if exit_code and data["campaigns"]:
        raise SystemExit(1)


def _diff_data(app: App, config: CampaignFile, campaign: str | None, at: str | None) -> dict[str, Any]:
    from dripper.planning import diff as diff_mod

    instant = _instant(at) or _clock(None).now()
    with app.store().read() as conn:
        if (
            campaign is not None
            and campaign not in config.campaigns
            and campaign not in diff_mod.applied_versions(conn)
        ):
            fail(f"no campaign {campaign!r}", code=1)
        return diff_mod.compute(conn, config, instant, campaign)


def _span(seconds: float | None) -> str:
    """A move in time, e.g. +14d, -1h, +13d 23h."""
    if seconds is None:
        return ""
    sign, left = ("-" if seconds < 0 else "+"), int(abs(seconds))
    parts = [
        f"{n}{unit}" for n, unit in ((left // 86400, "d"), (left % 86400 // 3600, "h"), (left % 3600 // 60, "min")) if n
    ]
    return sign + (" ".join(parts) or f"{left}s")


def _print_diff(data: dict[str, Any]) -> None:
    from rich.markup import escape

    from dripper.planning.diff import STATUS_TEXT

    if not data["campaigns"]:
        out.print("no schedule changes: applying campaigns.yaml changes nothing for the leads in the database")
        return
    for name, campaign in data["campaigns"].items():
        out.print(f"[bold]{escape(name)}[/bold]: {STATUS_TEXT[campaign['status']]}")
        if campaign["note"]:
            out.print(f"[yellow]{escape(campaign['note'])}[/]")
        table = Table(title="steps", title_justify="left")
        for col in ("change", "step", "stage", "detail"):
            table.add_column(col)
        for change, step, stage, detail in _step_rows(campaign["steps"]):
            table.add_row(change, step, stage, escape(detail))
        out.print(table)
        effects = campaign["leads"]
        table = Table(title=f"leads as of {effects['at'][:16].replace('T', ' ')} UTC", title_justify="left")
        for col in (
            "step",
            "get it",
            "due (weeks)",
            "missed",
            "step_removed",
            "lose it",
            "pending touches move",
            "steps to come move",
        ):
            table.add_column(col, justify="left" if col in ("step", "due (weeks)") else "right")
        for step, row in effects["steps"].items():
            weeks = ", ".join(f"{week}: {n}" for week, n in row["gets"]["weeks"].items())
            table.add_row(
                step,
                str(row["gets"]["leads"] or ""),
                weeks,
                str(row["missed"] or ""),
                str(row["step_removed"] or ""),
                str(row["loses"] or ""),
                _moves(row["pending_moved"], "touches"),
                _moves(row["upcoming_moved"], "leads"),
            )
        out.print(table)
        out.print(
            f"{effects['affected']} of {effects['in_campaign']} lead(s) affected; "
            f"{effects['next_touch_changes']} lead(s) get a different next touch"
        )


def _moves(spread: dict[str, Any], unit: str) -> str:
    if not spread[unit]:
        return ""
    low, mid, high = (_span(spread[k]) for k in ("min_seconds", "median_seconds", "max_seconds"))
    return f"{spread[unit]}: {low}" if low == high else f"{spread[unit]}: {low} / {mid} / {high}"


def _step_rows(steps: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The step changes of `dripper diff`, one table row each."""

    def arrow(change: dict[str, Any]) -> str:
        def text(value: Any) -> str:
            return ", ".join(value) if isinstance(value, list) else str(value)

        return f"{text(change['from'])} → {text(change['to'])}"

    rows = [("added", s["step"], s["stage"], f"after {s['after']}, {s['channel']}") for s in steps["added"]]
    rows += [("removed", s["step"], s["stage"], "") for s in steps["removed"]]
    rows += [("renamed", s["to"], "", f"from {s['from']}") for s in steps["renamed"]]
    rows += [
        (
            "retimed",
            s["step"],
            s["stage"],
            "; ".join(f"{key.replace('_', ' ')} {arrow(s[key])}" for key in ("after", "send_window") if s[key]),
        )
        for s in steps["retimed"]
    ]
    rows += [("moved", s["step"], "", arrow(s)) for s in steps["moved"]]
    rows += [("reordered", "", s["stage"], arrow(s)) for s in steps["reordered"]]
    rows += [
        ("changed", s["step"], "", "; ".join(f"{key} {arrow(s[key])}" for key in ("channel", "kind") if key in s))
        for s in steps["changed"]
    ]
    rows += [("setting", key, "", arrow(change)) for key, change in steps["settings"].items()]
    rows += [
        ("unreached", s["step"], s["stage"], "no touch has reached it: new or not, still to come")
        for s in steps["unreached"]
    ]
    return rows


# --- leads -----------------------------------------------------------------------------
@main.group()
def leads() -> None:
    """Import or add leads."""


@leads.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@AT
@click.option("--batch-size", default=10000, show_default=True, help="Leads per transaction.")
@pass_app
def leads_import(app: App, file: Path, at: str | None, batch_size: int) -> None:
    """Upsert leads from a CSV file; bad rows are reported and skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dripper.leads.importer import Problem, count_lines, import_file
    from dripper.leads.records import LeadError

    loaded = app.loaded()
    instant = _instant(at) or _clock(None).now()
    try:
        total = count_lines(file) or 1
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot read: {exc}", code=1)
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
            totals = import_file(store, loaded, file, instant, batch_size, on_batch)
        except LeadError as exc:
            fail(f"{file}:1: {exc}", code=1)
    merged = totals.merged
    imported = merged.created + merged.updated + merged.unchanged
    out.print(
        f"{file}: {imported} lead(s) imported ({merged.created} new, {merged.updated} updated, "
        f"{merged.unchanged} unchanged, {merged.moved} changed stage), {totals.skipped} row(s) skipped"
        + (f", {totals.warned} with a postal address warning" if totals.warned else "")
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
    attrs: tuple[str, ...],
    at: str | None,
) -> None:
    """Add (or update) one lead."""
    from dripper.leads.records import POSTAL_COLUMNS, LeadError, build_lead, normalize_email
    from dripper.planning.planner import enroll, record_versions

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
    }
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"bad --attr {item!r}: use KEY=VALUE", code=1)
        raw[key.strip()] = value
    instant = _instant(at) or _clock(None).now()
    store = app.store()
    with store.begin() as conn:
        existing = leadrows.by_email(conn, email)
        if existing is not None:  # keep what this command does not mention
            for key in ("first_name", "last_name", "company", "timezone", "stage", "campaign", *POSTAL_COLUMNS):
                if not raw.get(key):
                    raw[key] = existing[key]
            for key, value in (existing["attrs"] or {}).items():
                raw.setdefault(key, value)
        try:
            lead = build_lead(raw, loaded.campaigns)
        except ValueError as exc:
            fail(str(exc), code=1)
        result = enroll(conn, loaded.planner, [(0, lead)], instant)
        record_versions(conn, loaded.campaigns, instant)
    verb = "added" if result.created else "updated" if result.updated else "unchanged"
    out.print(f"{lead.email}: {verb} (stage {lead.stage}, campaign {lead.campaign})")


# --- event -----------------------------------------------------------------------------
@main.command()
@click.argument("email")
@click.argument(
    "kind", type=click.Choice(["converted", "replied", "unsubscribed", "bounced", "complained", "stage", "called"])
)
@click.option("--stage", help="New funnel stage (required for KIND=stage; optional with the others).")
@click.option(
    "--outcome",
    type=click.Choice(["reached", "voicemail", "no_answer", "converted", "not_interested"]),
    help="KIND=called: how the call went (converted and not_interested act on the lead).",
)
@click.option("--note", help="KIND=called: a note kept with the call.")
@AT
@pass_app
def event(
    app: App, email: str, kind: str, stage: str | None, outcome: str | None, note: str | None, at: str | None
) -> None:
    """Record what a lead did: converted, replied, unsubscribed, bounced, complained, a stage
    change, or the outcome of a sales call (called --outcome …)."""
    from dripper.channels.calls.tasks import record_outcome
    from dripper.leads.events import apply_event

    if (kind == "called") != (outcome is not None):
        fail("--outcome goes with KIND=called, and KIND=called needs --outcome", code=1)
    loaded = app.loaded()
    instant = _instant(at) or _clock(None).now()
    with app.store().begin() as conn:
        lead = leadrows.by_email(conn, lookup_form(email))
        if lead is None:
            fail(f"no lead {email!r}", code=1)
        if kind == "called":
            assert outcome is not None
            called = record_outcome(conn, loaded.planner, lead, outcome, instant, note=note)
            task = (
                f"call {called.call['campaign']}/{called.call['step_id']} of {called.call['day']}"
                if called.call
                else "no open call task; the call"
            )
            out.print(
                f"{lead['email']}: {task} recorded as {outcome}; {called.suppressed} pending touch(es) suppressed"
            )
            return
        try:
            result = apply_event(conn, loaded.planner, lead, kind, instant, source="cli", stage=stage)
        except UsageError as exc:
            fail(str(exc), code=1)
    extra = f", moved to stage {result.stage_changed_to}" if result.stage_changed_to else ""
    out.print(f"{lead['email']}: {kind} recorded; {result.suppressed} pending touch(es) suppressed{extra}")


# --- calls and letters ---------------------------------------------------------------
@main.command()
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
    from dripper.campaign import timing
    from dripper.channels.calls import tasks as calltasks
    from dripper.store import callrows

    loaded = app.loaded()
    if day is None:
        instant = _instant(at) or _clock(None).now()
        day = instant.astimezone(timing.zone(loaded.campaigns.defaults.timezone)).date().isoformat()
    elif day != "all":
        try:
            date.fromisoformat(day)
        except ValueError:
            fail(f"--date {day!r}: write it as YYYY-MM-DD (or all)", code=1)
    with app.store().begin() as conn:
        tasks = callrows.listing(conn, day=None if day == "all" else day, owner=owner, open_only=open_only)
    rows = calltasks.rows_for_table(tasks)
    if as_csv:
        click.echo(calltasks.to_csv(tasks), nl=False)
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        out.print(f"no calls{' for ' + owner if owner else ''} on {day}")
        return
    table = Table(title=f"Calls on {day}" if day != "all" else "Calls", show_lines=True)
    for column in ("owner", "lead", "phone", "campaign / step", "outcome", "talking points"):
        table.add_column(column, overflow="fold")
    for row in rows:
        who = "\n".join(p for p in (row["name"], row["company"], row["email"]) if p)
        points = row["talking_points"] if len(row["talking_points"]) < 400 else row["talking_points"][:397] + "..."
        table.add_row(
            row["owner"] or "-",
            who,
            row["phone"],
            f"{row['campaign']}\n{row['step']}",
            row["outcome"] or "open",
            points,
        )
    out.print(table)


@main.group(name="letters")
def letters_group() -> None:
    """Print batches: list them, rebuild one, record the hand-off to the post."""


@letters_group.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def letters_list(app: App, as_json: bool) -> None:
    """Print batches, newest first: letters, pages, and whether they went to the post."""
    from dripper.store import printrows

    with app.store().begin() as conn:
        found = printrows.listing(conn)
    rows = [
        {
            "batch": b["id"],
            "letters": b["letters"],
            "pages": b["pages"],
            "built": b["built_version"] >= b["version"],
            "mailed_at": b["mailed_at"].isoformat() if b["mailed_at"] else None,
            "mailed_by": b["mailed_by"],
            "folder": str(app.settings.letters_dir / b["id"]),
        }
        for b in found
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no print batches yet")
        return
    table = Table(title="Print batches")
    for column in ("batch", "letters", "pages", "mailed", "folder"):
        table.add_column(column)
    for row in rows:
        mailed = f"{row['mailed_at'][:16]} ({row['mailed_by']})" if row["mailed_at"] else "[yellow]waiting[/]"
        table.add_row(row["batch"], str(row["letters"]), str(row["pages"]), mailed, row["folder"])
    out.print(table)


@letters_group.command(name="build")
@click.argument("batch", required=False)
@pass_app
def letters_build(app: App, batch: str | None) -> None:
    """Rebuild BATCH's merged PDF and manifest (default: every batch that is behind)."""
    from dripper.channels.letters import batches

    loaded = app.loaded()
    now = _clock(None).now()
    store = app.store()
    if batch is None:
        built = batches.build_stale(store, app.settings.letters_dir, loaded.campaigns.letters, now)
        out.print(f"rebuilt {len(built)} batch(es){': ' + ', '.join(built) if built else ''}")
        return
    try:
        result = batches.build(store, app.settings.letters_dir, loaded.campaigns.letters, batch, now)
    except KeyError:
        fail(f"no print batch {batch!r} (see dripper letters list)", code=1)
    out.print(f"{batch}: {result.letters} letters, {result.pages} pages -> {result.pdf}")


@letters_group.command(name="mark-mailed")
@click.argument("batch")
@AT
@pass_app
def letters_mark_mailed(app: App, batch: str, at: str | None) -> None:
    """Record that BATCH went to the post; later letters of that day open a new batch."""
    from dripper.store import printrows

    instant = _instant(at) or _clock(None).now()
    with app.store().begin() as conn:
        found = printrows.get(conn, batch)
        if found is None:
            fail(f"no print batch {batch!r} (see dripper letters list)", code=1)
        if found["mailed_at"] is not None:
            out.print(f"{batch} was already marked mailed at {found['mailed_at'].isoformat()}")
            return
        printrows.mark_mailed(conn, batch, instant, "manual")
    out.print(f"{batch}: marked mailed ({found['letters']} letters)")


# --- ingest ---------------------------------------------------------------------------
@main.command()
@click.argument("files", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Classify and match, change nothing.")
@click.option("--imap", "from_imap", is_flag=True, help="Poll DRIPPER_IMAP_URL once instead of reading files.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message (JSON Lines, in input order).")
@AT
@pass_app
def ingest(app: App, files: tuple[str, ...], dry_run: bool, from_imap: bool, as_json: bool, at: str | None) -> None:
    """Classify inbound RFC 5322 messages (bounces, complaints, replies...) and apply them."""
    from dripper.inbound import Ingestor
    from dripper.inbound.notify import Notifier
    from dripper.tokens import tokens_for

    loaded = app.loaded()
    store = app.store()
    ingestor = Ingestor(
        store, loaded.planner, tokens_for(app.settings, store), Notifier(loaded.campaigns, app.settings)
    )
    instant = _instant(at) or _clock(None).now()
    results = []
    if from_imap:
        import imaplib

        from dripper.inbound.imap import ImapConfig, poll

        if not app.settings.imap_url or dry_run:
            fail("--imap needs DRIPPER_IMAP_URL (and cannot be a dry run: it moves what it reads)", code=1)
        try:
            results = poll(ImapConfig.parse(app.settings.imap_url), ingestor, instant)
        except (OSError, ValueError, imaplib.IMAP4.error) as exc:
            fail(f"IMAP: {exc}", code=1)
        files = ()
        if as_json:
            for result in results:
                click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    unreadable = 0
    for name in files or (() if from_imap else ("-",)):
        try:
            raw = _read_message(name)
        except OSError as exc:  # this one is reported; the others are still read
            err.print(f"{name}: cannot read: {exc.strerror or exc}", markup=False, highlight=False)
            unreadable += 1
            continue
        result = ingestor.ingest_each(raw, name, instant, dry_run=dry_run)
        results.append(result)
        if as_json:
            click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    if not as_json:
        _print_ingested(results, dry_run)
    if unreadable:
        sys.exit(1)


def _read_message(name: str) -> bytes:
    """A message file, or stdin for `-`; read up to one byte over the size limit (what
    is over it is not read at all: ingest records it as too large)."""
    from dripper.inbound.parse import MAX_BYTES

    if name == "-":
        return click.get_binary_stream("stdin").read(MAX_BYTES + 1)
    with open(name, "rb") as handle:
        return handle.read(MAX_BYTES + 1)


def _print_ingested(results: list[Any], dry_run: bool) -> None:
    table = Table(title="dry run: nothing changed" if dry_run else None, title_justify="left")
    for col in ("file", "kind", "lead", "status", "matched by", "effect"):
        table.add_column(col)
    for r in results:
        effect = "already applied" if r.duplicate else (r.effect or "")
        lead = r.lead or (f"unverified: {r.suspected_lead}" if r.suspected_lead else "")
        table.add_row(r.file, r.kind, lead, r.status or "", r.matched_by or "", effect)
    out.print(table)


# --- serve ------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--at",
    "at",
    metavar="ISO-8601",
    help="Freeze the server's clock at this instant (demos, tests; default: the system clock).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0.1, 300),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send a request's head (line and headers); then it is disconnected.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds a client has to send a request's body, after its head; then it gets 408.",
)
@pass_app
def serve(app: App, host: str, port: int, at: str | None, header_timeout: float, body_timeout: float) -> None:
    """HTTP: one-click unsubscribe, inbound webhooks (POST /inbound, /events), /healthz, /metrics,
    and the read-only dashboard at /dashboard (set DRIPPER_DASHBOARD_TOKEN)."""
    import uvicorn

    from dripper.tokens import tokens_for
    from dripper.web.app import WebContext, create_app
    from dripper.web.server import protocol

    clock = _clock(at)
    loaded = app.loaded()
    store = app.store()
    tokens = tokens_for(app.settings, store)
    web = create_app(
        WebContext(
            store,
            loaded,
            tokens,
            clock,
            app.settings.api_token,
            app.settings,
            metrics_token=app.settings.metrics_token,
            dashboard_token=app.settings.dashboard_token,
        )
    )
    # JSON logs: leave uvicorn's loggers unconfigured so their lines reach the root
    # handler (one JSON object each) instead of uvicorn's own text handlers.
    log_config = None if app.settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        log_config=log_config,
        http=protocol(header_timeout, body_timeout),
    )


# --- tick / run ------------------------------------------------------------------------
@main.command()
@AT
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@click.option(
    "--max-in-flight", type=click.IntRange(1, 256), help="Concurrent sends [DRIPPER_MAX_IN_FLIGHT, default 4]."
)
@pass_app
def tick(app: App, at: str | None, as_json: bool, max_in_flight: int | None) -> None:
    """Send everything due at that instant (default now), print a summary, exit."""
    from dripper.sending.tick import Sender

    settings = app.settings.with_options(max_in_flight=max_in_flight)
    clock = _clock(at)
    loaded = app.loaded()
    require_output_dirs(settings, loaded.campaigns)
    warn_if_unsubscribe_not_https(settings)
    store = app.store()
    try:
        summary = asyncio.run(Sender(store, loaded, settings, clock).tick())
    except ValueError as exc:  # e.g. a malformed DRIPPER_SMTP_URL
        fail(str(exc), code=1)
    if as_json:
        click.echo(json.dumps(summary.counts()))
        return
    _print_tick(app, store, summary.counts(), clock.now(), summary.replanned)


def _print_tick(app: App, store: Store, counts: dict[str, int], now: datetime, replanned: list[str]) -> None:
    from sqlalchemy import select

    from dripper.store import leads as leads_t
    from dripper.store import touches as touches_t

    table = Table(title=f"tick at {now.isoformat(timespec='seconds')}", title_justify="left")
    for name in counts:
        table.add_column(name, justify="right")
    table.add_row(*(str(v) for v in counts.values()))
    out.print(table)
    if replanned:
        out.print(f"campaigns.yaml changed: re-planned {', '.join(replanned)}")
    where = (app.settings.smtp_url and "SMTP") or f"{app.settings.outbox_dir}/"
    if counts.get("sent"):
        out.print(f"e-mails went to {where}; letters to {app.settings.letters_dir}/")
    with store.begin() as conn:
        rows = conn.execute(
            select(touches_t.c.due_at, leads_t.c.email, touches_t.c.campaign, touches_t.c.step_id, touches_t.c.channel)
            .join(leads_t, leads_t.c.id == touches_t.c.lead_id)
            .where(touches_t.c.state == "planned")
            .order_by(touches_t.c.due_at)
            .limit(10)
        ).all()
    if rows:
        upcoming = Table(title="next up", title_justify="left")
        for col in ("due (UTC)", "lead", "campaign", "step", "channel"):
            upcoming.add_column(col)
        for due, email, campaign, step, channel in rows:
            upcoming.add_row(due.strftime("%Y-%m-%d %H:%M"), email, campaign, step, channel)
        out.print(upcoming)


@main.command()
@click.option("--interval", type=float, help="Seconds between ticks [DRIPPER_TICK_INTERVAL, default 60].")
@click.option(
    "--max-in-flight", type=click.IntRange(1, 256), help="Concurrent sends [DRIPPER_MAX_IN_FLIGHT, default 4]."
)
@pass_app
def run(app: App, interval: float | None, max_in_flight: int | None) -> None:
    """Long-running worker: a tick at start and then every --interval seconds."""
    from dripper.clock import SystemClock
    from dripper.sending.worker import Worker

    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    settings = app.settings.with_options(tick_interval=interval, max_in_flight=max_in_flight)
    loaded = app.loaded()  # refuse a broken campaigns.yaml before starting
    require_output_dirs(settings, loaded.campaigns)
    warn_if_unsubscribe_not_https(settings)
    try:
        watcher = config_mod.Watcher(settings)
    except ConfigError as exc:  # pragma: no cover - loaded() already exited
        fail(str(exc))
    store = app.store()
    single = None
    if not store.is_postgres:  # SQLite: one worker; PostgreSQL takes any number
        from dripper.store.locks import ProcessLock

        single = ProcessLock(store, "worker")
        if not single.acquire():
            fail(
                f"another `dripper run` already works on {store.engine.url.database}: SQLite serves one worker. "
                "Stop it, or use PostgreSQL (DRIPPER_DATABASE_URL=postgresql+psycopg://…) for several",
                code=1,
            )
    try:
        asyncio.run(Worker(store, watcher, settings, SystemClock()).run())
    finally:
        if single is not None:
            single.release()


# --- plan / preview / simulate / report -------------------------------------------------
@main.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def plan(app: App, email: str, as_json: bool) -> None:
    """A lead's past and upcoming touches, with states and reasons."""
    from dripper.planning.planner import Planner

    config = _campaigns_or_none(app)
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
    address = info["postal_address"]
    if not address["complete"] and any(t["channel"] == "letter" and t["state"] == "planned" for t in data["touches"]):
        out.print(f"[yellow]Letters will be skipped (no_postal_address): {address['problem']}[/]")


def _campaigns_or_none(app: App) -> CampaignFile | None:
    """The campaigns model, or None when campaigns.yaml cannot be read (commands that only
    look at the store still work then)."""
    from dripper.campaign.model import load as load_campaigns

    try:
        return load_campaigns(app.settings.campaigns_path)
    except ConfigError:
        return None


def _touch_note(touch: dict[str, Any]) -> str:
    if "batch" in touch:
        return f"batch {touch['batch']}" + (", mailed" if touch.get("mailed_at") else "")
    if "call" in touch:
        call = touch["call"]
        return (
            f"call {call['day']}" + (f" ({call['owner']})" if call["owner"] else "") + f": {call['outcome'] or 'open'}"
        )
    return ""


@main.command()
@click.argument("campaign")
@click.argument("step")
@click.option("--lead", "email", help="Render for this lead (default: a sample lead).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html", "eml", "pdf"]),
    default="text",
    show_default=True,
    help="pdf: a letter as printed (written to --out, default STEP.pdf).",
)
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@click.option(
    "--open",
    "open_it",
    is_flag=True,
    help="Write the touch under ./previews/ (or --out), print the path and open it in a browser: "
    "e-mails and calls as HTML pages, letters as the printed PDF.",
)
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help='Send a test of this e-mail step to ADDRESS (subject "[TEST] …"); nothing is recorded.',
)
@AT
@pass_app
def preview(
    app: App,
    campaign: str,
    step: str,
    email: str | None,
    fmt: str,
    out_file: Path | None,
    open_it: bool,
    to: str | None,
    at: str | None,
) -> None:
    """Render one touch as text, HTML or a complete .eml (exactly what would be sent);
    --open shows it in a browser, --to sends a test of it."""
    from dripper.campaign.templates import LeadView, sample_lead
    from dripper.channels.compose import Composer
    from dripper.sending.tick import dkim_key

    if to is not None:
        to = _test_address(to, open_it, fmt, out_file)
    loaded = app.loaded()
    config = loaded.campaigns
    if campaign not in config.campaigns:
        fail(f"no campaign {campaign!r}", code=1)
    camp = config.campaigns[campaign]
    found = camp.step(step)
    if found is None:
        fail(f"no step {step!r} in campaign {campaign!r}", code=1)
    the_step = found[1]
    now = _clock(at).now()
    if email:
        store = app.store()
        with store.begin() as conn:
            row = leadrows.by_email(conn, lookup_form(email))
        if row is None:
            fail(f"no lead {email!r}", code=1)
        lead = LeadView.from_row(row, config.defaults.timezone)
        secret = app.settings.secret or store.secret()
    else:
        lead = sample_lead(config, any_attrs=False)
        secret = app.settings.secret or "preview"
    if to is not None:  # signed with the real secret, so that `serve` knows its links for a test's
        _send_test(app, loaded, lead, camp, the_step, now, to, app.settings.secret or app.store().secret())
        return
    if open_it:
        _open_preview(app, loaded, lead, camp, the_step, now, fmt, out_file, secret)
        return
    composer = Composer(loaded, app.settings.base_url, secret, dkim_key(app.settings, loaded))
    if the_step.channel == "call" or (the_step.channel == "letter" and fmt == "text"):
        _emit(composer.call_notes(lead, camp, the_step, now), out_file)
        return
    if the_step.channel == "letter":
        html = composer.letter(lead, camp, the_step, now).html
        if fmt != "pdf":
            _emit(html, out_file)
            return
        from dripper.channels.letters.layout import render_letter, write_atomic
        from dripper.channels.letters.libraries import LettersUnavailable

        target = out_file or Path(f"{the_step.id}.pdf")
        try:
            rendered = render_letter(html, app.settings.templates_path)
        except LettersUnavailable as exc:
            fail(exc.missing.line, code=1)
        write_atomic(target, rendered.pdf)
        err.print(f"wrote {target} ({rendered.pages} page{'s' if rendered.pages != 1 else ''})")
        return
    if fmt == "pdf":
        fail("--format pdf is for letter steps", code=1)
    if fmt == "eml":
        _emit(composer.email(0, lead, camp, the_step, now).data.decode("ascii", "replace"), out_file)
        return
    ctx, _url, _token = composer.context(lead, camp, the_step, now)
    rendered = loaded.renderer.email(camp, the_step, ctx)
    _emit(rendered.html if fmt == "html" else f"Subject: {rendered.subject}\n\n{rendered.text}", out_file)


def _format_given() -> bool:
    return click.get_current_context().get_parameter_source("fmt") is not click.core.ParameterSource.DEFAULT


def _test_address(to: str, open_it: bool, fmt: str, out_file: Path | None) -> str:
    from dripper.reports.previews import test_address

    if open_it:
        fail("--to sends a test and --open shows a preview: use one at a time", code=1)
    if out_file is not None or _format_given():
        fail("--to sends the e-mail itself: --format and --out do not apply", code=1)
    try:
        return test_address(to)
    except ValueError as exc:
        fail(str(exc), code=1)


def _send_test(
    app: App, loaded: config_mod.Loaded, lead: Any, camp: Any, step: Any, now: datetime, to: str, secret: str
) -> None:
    """`preview --to`: the touch as a test e-mail through the configured transport. It writes
    nothing to the store: no touch, no event, no send counter."""
    import jinja2

    from dripper.channels.email.transports import SendError, make_transport
    from dripper.reports.previews import PreviewComposer, compose_test, send_test
    from dripper.sending.tick import dkim_key

    if step.channel != "email":
        fail(f"--to sends e-mail steps; {step.id!r} is a {step.channel} step (see it with --open)", code=1)
    composer = PreviewComposer(loaded, app.settings.base_url, secret, dkim_key(app.settings, loaded))
    try:
        composed = compose_test(composer, lead, camp, step, now, to)
    except jinja2.TemplateError as exc:
        fail(f"{step.id!r} cannot be rendered for {lead.email}: {exc}", code=1)
    try:
        transport = make_transport(app.settings.smtp_url, app.settings.outbox_dir, 1)
        answer = asyncio.run(send_test(composed, transport))
    except ValueError as exc:  # a malformed DRIPPER_SMTP_URL
        fail(str(exc), code=1)
    except SendError as exc:
        fail(f"the test to {to} was not sent: {exc}", code=1)
    except OSError as exc:  # the file outbox cannot be written
        fail(f"the test to {to} was not sent: {exc}", code=1)
    via = f"via SMTP: {answer}" if app.settings.smtp_url else f"to the outbox: {answer}"
    click.echo(
        f"sent a test of {camp.name} {step.id} (rendered for {lead.email}) to {to} {via} "
        f"(Message-ID {composed.message_id})"
    )


def _open_preview(
    app: App,
    loaded: config_mod.Loaded,
    lead: Any,
    camp: Any,
    step: Any,
    now: datetime,
    fmt: str,
    out_file: Path | None,
    secret: str,
) -> None:
    """`preview --open`: write the touch as a file (links are test links), print its path,
    and hand it to a browser when there is one."""
    import jinja2

    from dripper.channels.letters.libraries import LettersUnavailable
    from dripper.reports.previews import (
        PreviewComposer,
        browser_opener,
        default_path,
        open_file,
        preview_suffix,
        write_preview,
    )
    from dripper.sending.tick import dkim_key

    suffix = preview_suffix(step)
    if _format_given() and f".{fmt}" != suffix:
        fail(f"--open writes {step.channel} steps as {suffix[1:].upper()}: leave out --format {fmt}", code=1)
    target = out_file or default_path(camp.name, step.id, lead.email, suffix)
    composer = PreviewComposer(loaded, app.settings.base_url, secret, dkim_key(app.settings, loaded))
    try:
        write_preview(composer, lead, camp, step, now, target, app.settings.templates_path)
    except jinja2.TemplateError as exc:
        fail(f"{step.id!r} cannot be rendered for {lead.email}: {exc}", code=1)
    except LettersUnavailable as exc:
        fail(exc.missing.line, code=1)
    click.echo(str(target))
    if open_file(target, browser_opener()):
        err.print("opened it in your browser")


def _emit(text: str, out_file: Path | None) -> None:
    if out_file:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"wrote {out_file}")
    else:
        click.echo(text)


@main.command()
@click.option("--days", default=210, show_default=True, help="How far to look ahead.")
@click.option("--stage", help="Funnel stage (default: every stage the campaign has).")
@click.option("--campaign", help="Campaign (default: every campaign).")
@click.option("--timezone", "tz", help="The lead's time zone (default: defaults.timezone).")
@click.option("--country", default="", help="The lead's country, for holiday-aware windows.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path),
    help="Also write the timeline as a self-contained HTML page, with a picture per track.",
)
@AT
@pass_app
def simulate(
    app: App,
    days: int,
    stage: str | None,
    campaign: str | None,
    tz: str | None,
    country: str,
    as_json: bool,
    html_file: Path | None,
    at: str | None,
) -> None:
    """The timeline a new lead would receive."""
    from dripper.campaign.templates import sample_lead
    from dripper.planning.planner import timeline

    loaded = app.loaded()
    config = loaded.campaigns
    start = _clock(at).now()
    names = [campaign] if campaign else list(config.campaigns)
    for name in names:
        if name not in config.campaigns:
            fail(f"no campaign {name!r}", code=1)
    if stage and stage not in config.stages:
        fail(f"unknown stage {stage!r}", code=1)
    lead = sample_lead(config, any_attrs=False)
    rows: list[dict[str, Any]] = []
    for name in names:
        camp = config.campaigns[name]
        for stage_name in [stage] if stage else list(camp.stages):
            for entry in timeline(loaded.planner, name, stage_name, start, days, tz, country):
                ctx = loaded.renderer.context(lead, camp, entry.step, "https://example.invalid/u/x", entry.due)
                subject = loaded.renderer.subject(camp, entry.step, ctx) if entry.step.subject else ""
                rows.append(
                    {
                        "campaign": name,
                        "stage": stage_name,
                        "day": entry.day,
                        "date": entry.due.isoformat(),
                        "step": entry.step.id,
                        "channel": entry.step.channel,
                        "kind": entry.step.kind,
                        "subject": subject,
                    }
                )
    zone = tz or config.defaults.timezone
    if html_file:
        _write_timeline_page(
            html_file,
            rows,
            [(n, s) for n in names for s in ([stage] if stage else config.campaigns[n].stages)],
            start,
            days,
            zone,
            country,
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for name in names:
        for stage_name in dict.fromkeys(r["stage"] for r in rows if r["campaign"] == name):
            table = Table(
                title=f"{name} · {stage_name} · a lead entering {start:%Y-%m-%d %H:%M} UTC ({zone}), {days} days",
                title_justify="left",
            )
            for col in ("day", "date (local)", "stage", "step", "channel", "kind", "subject"):
                table.add_column(col, justify="right" if col == "day" else "left")
            from dripper.campaign.timing import zone as get_zone

            for r in rows:
                if r["campaign"] == name and r["stage"] == stage_name:
                    local = datetime.fromisoformat(r["date"]).astimezone(get_zone(zone))
                    table.add_row(
                        str(r["day"]),
                        local.strftime("%a %Y-%m-%d %H:%M"),
                        r["stage"],
                        r["step"],
                        r["channel"],
                        r["kind"],
                        r["subject"],
                    )
            out.print(table)


def _write_timeline_page(
    path: Path,
    rows: list[dict[str, Any]],
    tracks: list[tuple[str, str]],
    start: datetime,
    days: int,
    zone: str,
    country: str,
) -> None:
    from dripper.campaign.timing import zone as get_zone
    from dripper.channels.letters.layout import write_atomic
    from dripper.reports.previews import Track, timeline_page

    def local(instant: str) -> str:
        return datetime.fromisoformat(instant).astimezone(get_zone(zone)).strftime("%a %Y-%m-%d %H:%M")

    page = timeline_page(
        [Track(c, s, [r for r in rows if r["campaign"] == c and r["stage"] == s]) for c, s in tracks],
        start=start,
        days=days,
        zone=zone,
        local=local,
        country=country,
    )
    write_atomic(path, page.encode("utf-8"))
    err.print(f"wrote {path}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Every figure as JSON on stdout.")
@click.option(
    "--csv",
    "csv_file",
    is_flag=False,
    flag_value="-",
    type=click.Path(path_type=Path, allow_dash=True),
    help="One row per campaign and step with every figure, to FILE (or stdout: --csv alone or --csv -).",
)
@click.option("--html", "html_file", type=click.Path(path_type=Path), help="Also write a self-contained HTML report.")
@pass_app
def report(app: App, as_json: bool, csv_file: Path | None, html_file: Path | None) -> None:
    """Per campaign and step: touches by state, leads enrolled, the replies, conversions,
    unsubscribes, bounces and complaints they brought, and their rates; movements between
    stages; time from first touch to conversion."""
    from dripper.reports import formats as report_formats

    to_stdout = csv_file is not None and str(csv_file) == "-"
    if as_json and to_stdout:
        fail("--json and --csv both write to stdout: give --csv a FILE", code=1)
    config = _campaigns_or_none(app)  # without it, the report stands on the stored touches alone
    with app.store().begin() as conn:
        data = report_mod.funnel(conn, config)
        weekly = report_mod.weekly_sends(conn) if html_file else None
    if html_file:
        html_file.write_text(report_formats.html_page(data, datetime.now().astimezone(), weekly), encoding="utf-8")
        err.print(f"wrote {html_file}")
    if csv_file is not None and not to_stdout:
        csv_file.write_text(report_formats.to_csv(data), encoding="utf-8", newline="")
        err.print(f"wrote {csv_file}")
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif to_stdout:
        click.echo(report_formats.to_csv(data), nl=False)
    else:
        for table in report_formats.tables(data):
            out.print(table)


# --- secret ---------------------------------------------------------------------------
@main.group(name="secret")
def secret_group() -> None:
    """Where the token-signing secret lives, and retiring the one kept in the database."""


@secret_group.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@pass_app
def secret_status(app: App, as_json: bool) -> None:
    """Which secret signs, how many retired ones still verify, and who can read the SQLite file.
    Prints no secret."""
    from dripper.store.db import open_to_others, sqlite_path
    from dripper.tokens import signing_keys

    store = app.store()
    keys = signing_keys(app.settings, store)
    path = sqlite_path(store)
    mode = open_to_others(path) if path is not None else None
    data = {
        "signing": "DRIPPER_SECRET" if keys.from_env else "database",
        "verifying_old": len(keys.old),
        "database_secret_verifies": keys.kept_verifies,
        "database_file": None
        if path is None
        else {"path": str(path), "private": mode is None, **({"mode": f"{mode:04o}"} if mode is not None else {})},
    }
    if as_json:
        click.echo(json.dumps(data))
        return
    signing = "DRIPPER_SECRET" if keys.from_env else "the secret kept in the database (DRIPPER_SECRET is unset)"
    out.print(f"signing with: {signing}", markup=False)
    kept = " (one of them the secret kept in the database)" if keys.kept_verifies else ""
    out.print(f"retired secrets that still verify: {len(keys.old)}{kept}", markup=False)
    if path is not None:
        state = (
            "readable by its owner only" if mode is None else f"mode {mode:04o}, others can read it: chmod 600 {path}"
        )
        out.print(f"database file: {path}: {state}", markup=False)


@secret_group.command(name="retire-kept")
@pass_app
def secret_retire_kept(app: App) -> None:
    """Delete the secret kept in the database, once DRIPPER_SECRET is set: links and bounce
    addresses signed with it stop working (list it in DRIPPER_SECRET_OLD first to keep them)."""
    if not app.settings.secret:
        fail(
            "DRIPPER_SECRET is unset, so the secret kept in the database is the one that signs: set "
            "DRIPPER_SECRET first",
            code=1,
        )
    if app.store().forget_kept_secret():
        out.print("deleted the secret kept in the database: what was signed with it no longer verifies", markup=False)
    else:
        out.print("no secret is kept in the database", markup=False)


if __name__ == "__main__":  # pragma: no cover
    main()
