"""`dripper preview` and `dripper simulate`: a touch, or a new lead's timeline, before it is sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from dripper import config as config_mod
from dripper.cli.app import AT, App, at_clock, err, fail, out, pass_app
from dripper.leads.records import lookup_form
from dripper.states import Channel
from dripper.store.queries import leadrows

if TYPE_CHECKING:
    from dripper.channels.email.dkim import DkimKeys


@click.command()
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
@click.option(
    "--variant",
    metavar="NAME",
    help="The A/B variant to render (default: the one the lead, or the sample lead, gets).",
)
@click.option(
    "--language",
    metavar="TAG",
    help="The sample lead's language (BCP 47, e.g. de): the translation that language gets.",
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
    variant: str | None,
    language: str | None,
    at: str | None,
) -> None:
    """Render one touch as text, HTML or a complete .eml (exactly what would be sent);
    --open shows it in a browser, --to sends a test of it."""
    import jinja2

    from dripper.campaign.templates import sample_lead
    from dripper.channels.compose import Composer
    from dripper.reports.previews import NotForStep, preview_file, touch_preview

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
    now = at_clock(at).now()
    if email:
        store = app.store()
        with store.begin() as conn:
            row = leadrows.by_email(conn, lookup_form(email))
        if row is None:
            fail(f"no lead {email!r}", code=1)
        lead = row.for_templates(config.defaults.timezone)
        secret = app.settings.secret or store.secret()
    else:
        # In the step's own stage and campaign: a template that words itself by lead.stage
        # shows what that stage's leads receive.
        lead = replace(sample_lead(config, any_attrs=False), stage=found[0], campaign=campaign)
        secret = app.settings.secret or "preview"
    if language is not None:
        from dripper.campaign import languages

        if email:
            fail("--language is for the sample lead: a lead given with --lead has its own", code=1)
        try:
            lead = replace(lead, language=languages.normalize(language))
        except ValueError as exc:
            fail(f"--language: {exc}", code=1)
    the_step = _variant(camp, the_step, lead.email, variant)
    if to is not None:  # signed with the real secret, so that `serve` knows its links for a test's
        _send_test(app, loaded, lead, camp, the_step, now, to, app.settings.secret or app.store().secret())
        return
    if open_it:
        _open_preview(app, loaded, lead, camp, the_step, now, fmt, out_file, secret)
        return
    composer = Composer(loaded, app.settings.base_url, secret, _dkim_keys(app, loaded))
    templates = app.settings.templates_path
    try:
        shown = touch_preview(composer, lead, camp, the_step, now, fmt, templates)
    except NotForStep as exc:
        fail(str(exc), code=1)
    except jinja2.TemplateError as exc:  # e.g. an undeclared column the sample lead lacks: try --lead
        fail(f"{the_step.id!r} cannot be rendered for {lead.email}: {exc}", code=1)
    if not shown.file_suffix:
        _emit(shown.text, out_file)
        return
    from dripper.channels.letters.layout import write_atomic
    from dripper.channels.letters.libraries import LettersUnavailable

    target = out_file or Path(f"{the_step.id}{shown.file_suffix}")
    try:
        made = preview_file(the_step, shown, templates)
    except LettersUnavailable as exc:
        fail(exc.missing.line, code=1)
    write_atomic(target, made.data)
    err.print(f"wrote {target} ({made.detail})")


def _variant(camp: Any, step: Any, email: str, name: str | None) -> Any:
    """The step as the A/B variant asked for (`--variant`), else as the lead gets it; says
    which on stderr when the step has variants."""
    from dripper.campaign import variants

    if not step.variants:
        if name is not None:
            fail(f"step {step.id!r} has no variants", code=1)
        return step
    chosen = name if name is not None else variants.variant_for(email, camp.name, step)
    try:
        one = variants.resolved(step, chosen)
    except KeyError:
        fail(f"step {step.id!r} has no variant {name!r} (it has {', '.join(variants.names(step.variants))})", code=1)
    err.print(f"variant {chosen} of {', '.join(variants.names(step.variants))}")
    return one


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

    if step.channel is not Channel.EMAIL:
        fail(f"--to sends e-mail steps; {step.id!r} is a {step.channel} step (see it with --open)", code=1)
    composer = PreviewComposer(loaded, app.settings.base_url, secret, _dkim_keys(app, loaded))
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

    suffix = preview_suffix(step)
    if _format_given() and f".{fmt}" != suffix:
        fail(f"--open writes {step.channel} steps as {suffix[1:].upper()}: leave out --format {fmt}", code=1)
    target = out_file or default_path(camp.name, step.id, lead.email, suffix)
    composer = PreviewComposer(loaded, app.settings.base_url, secret, _dkim_keys(app, loaded))
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


@click.command()
@click.option("--days", default=210, show_default=True, help="How far to look ahead.")
@click.option("--stage", help="Funnel stage (default: every stage the campaign has).")
@click.option("--campaign", help="Campaign (default: every campaign).")
@click.option("--timezone", "tz", help="The lead's time zone (default: defaults.timezone).")
@click.option("--country", default="", help="The lead's country, for holiday-aware windows.")
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    metavar="K=V",
    help="A value of the simulated lead (a column such as country, or an attribute such as language): "
    "shows which steps' conditions (when:) apply to it. Repeatable.",
)
@click.option(
    "--lead",
    "email",
    help="Simulate a lead like this one from the database (its columns, attributes and events), "
    "entering its stage of its campaign at --at: which steps apply to it.",
)
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
    attrs: tuple[str, ...],
    email: str | None,
    as_json: bool,
    html_file: Path | None,
    at: str | None,
) -> None:
    """The timeline a new lead would receive (and, with --attr or --lead, which steps apply to it)."""
    from dripper.campaign import conditions
    from dripper.reports import simulation

    loaded = app.loaded()
    config = loaded.campaigns
    start = at_clock(at).now()
    values = dict(_key_value(a) for a in attrs)
    try:
        lead = simulation.simulated_lead(config, values, country) if values or country else None
    except ValueError as exc:  # a language Babel does not know
        fail(f"--attr: {exc}", code=1)
    history = conditions.EMPTY
    if email is not None:
        with app.store().begin() as conn:
            lead = leadrows.by_email(conn, lookup_form(email))
            if lead is None:
                fail(f"no lead {email!r}", code=1)
            events = leadrows.events_of(conn, [lead.id], conditions.HISTORY_KINDS)[lead.id]
        history = conditions.History.of(events)
        lead = replace(lead, attrs={**lead.attrs, **values})
        campaign = campaign or lead.campaign
        stage = stage or lead.stage
        tz = tz or lead.timezone
        country = country or lead.country
    names = [campaign] if campaign else list(config.campaigns)
    for name in names:
        if name not in config.campaigns:
            fail(f"no campaign {name!r}", code=1)
    if stage and stage not in config.stages:
        fail(f"unknown stage {stage!r}", code=1)
    simulated = simulation.simulate(loaded, names, stage, start, days, tz, country, lead, history)
    rows = [touch.as_json() for touch in simulated]
    zone = tz or config.defaults.timezone
    if html_file:
        _write_timeline_page(
            html_file,
            rows,
            simulation.tracks(config, names, stage),
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
            conditional = any("when" in r for r in rows)
            columns = ("day", "date (local)", "stage", "step", "channel", "kind", "subject")
            for col in (*columns, "when") if conditional else columns:
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
                        *([_condition_note(r)] if conditional else []),
                    )
            out.print(table)


def _key_value(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        fail(f"--attr {text!r}: write it as NAME=VALUE", code=1)
    return key.strip(), value.strip()


def _condition_note(row: dict[str, Any]) -> str:
    """`when:` of a step and what it says for the simulated lead."""
    if "when" not in row:
        return ""
    verdict = {True: "applies", False: "skipped (condition)", None: "cannot be evaluated"}[row["applies"]]
    return f"{verdict}: {row['when']}"


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


def _dkim_keys(app: App, loaded: config_mod.Loaded) -> DkimKeys:
    """The DKIM keys, or exit 1 saying which key cannot be used."""
    from dripper.sending.tick import dkim_key

    try:
        return dkim_key(app.settings, loaded)
    except ValueError as exc:
        fail(str(exc), code=1)
