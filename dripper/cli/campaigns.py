"""`dripper check` and `dripper diff`: is campaigns.yaml sound, and what would applying it change."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from dripper.campaign import cadence, usage
from dripper.campaign.model import CampaignFile
from dripper.cli.app import AT, App, at_or_now, err, fail, out, pass_app
from dripper.config import Loaded


# --- check -----------------------------------------------------------------------------
@click.command()
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
    steps = usage.step_count(loaded.campaigns)
    out.print(
        f"{app.settings.campaigns_path}: OK — {len(loaded.campaigns.campaigns)} campaign(s), {steps} step(s), "
        f"{len(loaded.templates.sources)} template file(s)"
    )
    _warn_if_channels_cannot_work(loaded.campaigns)
    for warning in cadence.warnings(loaded.campaigns):
        err.print(str(warning), markup=False, soft_wrap=True)
    _warn_about_undeclared_attributes(loaded)
    _print_languages(app, loaded, against_db)
    _warn_about_unsigned_senders(app, loaded)
    if against_db:
        _print_diff(_diff_data(app, loaded.campaigns, None, at))


def _warn_if_channels_cannot_work(config: CampaignFile) -> None:
    """Warnings, not errors: the file is fine, and the touches of a channel this machine
    cannot work yet (letters without their libraries) wait. Only the channels campaigns
    use are asked: loading WeasyPrint costs 0.4 s."""
    from dripper.channels.registry import PARTS

    used = usage.channels_used(config)
    for channel, part in PARTS.items():
        warning = part.check_warning() if channel in used else None
        if warning is not None:
            err.print(f"dripper: warning: {warning}", markup=False, soft_wrap=True)


def _warn_about_unsigned_senders(app: App, loaded: Loaded) -> None:
    """With DKIM on, a sender whose domain has no key of its own (nor an aligned single
    key) would send unsigned or misaligned mail, which DMARC fails: said per sender."""
    from dripper.channels.email.dkim import unsigned_domains
    from dripper.sending.tick import dkim_key

    try:
        keys = dkim_key(app.settings, loaded)
    except ValueError as exc:
        fail(str(exc), code=1)
    unsigned = set(unsigned_domains(keys, [s.domain for s in loaded.campaigns.book.all]))
    for sender in loaded.campaigns.book.all:
        if sender.domain in unsigned:
            where = loaded.campaigns.location(("senders", sender.key, "from") if sender.key else ("sender", "from"))
            name = f"sender {sender.key!r}" if sender.key else "sender"
            err.print(
                f"{where}: warning: {name} sends from {sender.domain}, which has no DKIM key "
                "(add it to DRIPPER_DKIM_KEYS): its mail would fail DMARC",
                markup=False,
                soft_wrap=True,
            )


def _warn_about_undeclared_attributes(loaded: Loaded) -> None:
    """`lead.attrs.X` without a fallback, X not declared under fields:, listed as
    `FILE:LINE:COL: warning: …`: the file is fine, a lead without X fails that touch only."""
    from dripper.campaign.templates import template_warnings

    for problem in template_warnings(loaded.campaigns, loaded.templates):
        err.print(f"{problem.location}: warning: {problem.message}", markup=False, soft_wrap=True)


def _print_languages(app: App, loaded: Loaded, against_db: bool) -> None:
    """Each step's languages, when the campaigns have translations, and a warning for a
    language a step lacks (with --against-db: also a language leads in the database name)."""
    from dripper.campaign.templates import language_coverage

    lead_languages = None
    if against_db:
        from dripper.store.queries import leadrows

        with app.store().read() as conn:
            lead_languages = leadrows.languages_by_campaign(conn)
    listed, warnings = language_coverage(loaded.campaigns, loaded.templates, lead_languages)
    groups: dict[tuple[str, str], list[str]] = {}  # (campaign, its languages) -> the steps that speak them
    for row in listed:
        spoken = ", ".join([f"{row.default} (default)", *(t for t in row.covered if t != row.default)])
        groups.setdefault((row.campaign, spoken), []).append(row.step)
    for (campaign, spoken), steps in groups.items():
        if "," in spoken:  # translated: which steps
            out.print(f"languages: {campaign}: {spoken}: {', '.join(steps)}", markup=False, soft_wrap=True)
    for (campaign, spoken), steps in groups.items():
        if "," not in spoken:  # the rest, counted: a long campaign would fill the screen
            out.print(f"languages: {campaign}: {spoken} only: {len(steps)} other step(s)", markup=False)
    for problem in warnings:
        err.print(f"{problem.location}: warning: {problem.message}", markup=False, soft_wrap=True)


# --- diff ------------------------------------------------------------------------------
@click.command()
@click.option("--campaign", help="Only this campaign (default: every campaign whose schedule changed).")
@click.option("--at", "at", metavar="ISO-8601", help="Count as if the next tick applied the file then (default: now).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object: {"campaigns": {NAME: {"steps": {…}, "leads": {…}}}} (see docs/reference/json.md).',
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

    instant = at_or_now(at)
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
    rows += [
        (
            "condition",
            s["step"],
            s["stage"],
            f"when {s['from'] or '(none)'} → {s['to'] or '(none)'}; applies to {s['applies']} of the "
            f"{s['leads']} lead(s) in that stage now"
            + (f", {s['cannot_evaluate']} cannot be evaluated" if s["cannot_evaluate"] else ""),
        )
        for s in steps.get("conditions", [])
    ]
    return rows
