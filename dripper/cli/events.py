"""`dripper event`: what a lead did, recorded by hand."""

from __future__ import annotations

import click

from dripper.cli.app import AT, App, at_or_now, err, fail, out, pass_app
from dripper.errors import UsageError
from dripper.leads.records import lookup_form
from dripper.store.queries import leadrows
from dripper.store.queries.callrows import OUTCOMES


# --- event -----------------------------------------------------------------------------
@click.command()
@click.argument("email")
@click.argument(
    "kind", type=click.Choice(["converted", "replied", "unsubscribed", "bounced", "complained", "stage", "called"])
)
@click.option("--stage", help="New funnel stage (required for KIND=stage; optional with the others).")
@click.option(
    "--outcome",
    type=click.Choice(OUTCOMES),
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
    instant = at_or_now(at)
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
            out.print(f"{lead.email}: {task} recorded as {outcome}; {called.suppressed} pending touch(es) suppressed")
            return
        try:
            result = apply_event(conn, loaded.planner, lead, kind, instant, source="cli", stage=stage)
        except UsageError as exc:
            fail(str(exc), code=1)
    for warning in result.warnings:
        err.print(f"dripper: warning: {warning}", markup=False, soft_wrap=True)
    extra = f", moved to stage {result.stage_changed_to}" if result.stage_changed_to else ""
    out.print(f"{lead.email}: {kind} recorded; {result.suppressed} pending touch(es) suppressed{extra}")
