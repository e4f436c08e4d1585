"""`dripper letters list|build|mark-mailed`: print batches."""

from __future__ import annotations

import json

import click
from rich.table import Table

from dripper.cli.app import AT, App, at_clock, at_or_now, fail, out, pass_app


@click.group(name="letters")
def letters_group() -> None:
    """Print batches: list them, rebuild one, record the hand-off to the post."""


@letters_group.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def letters_list(app: App, as_json: bool) -> None:
    """Print batches, newest first: letters, pages, and whether they went to the post."""
    from dripper.channels.letters import batches

    found = batches.summaries(app.store(), app.settings.letters_dir)
    rows = [b.as_json() for b in found]
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
    now = at_clock(None).now()
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
    from dripper.channels.letters import batches

    instant = at_or_now(at)
    marked = batches.mark_mailed(app.store(), batch, instant, "manual")
    if marked.outcome is batches.MarkOutcome.NO_BATCH:
        fail(f"no print batch {batch!r} (see dripper letters list)", code=1)
    if marked.outcome is batches.MarkOutcome.ALREADY_MAILED:
        assert marked.mailed_at is not None
        out.print(f"{batch} was already marked mailed at {marked.mailed_at.isoformat()}")
        return
    out.print(f"{batch}: marked mailed ({marked.letters} letters)")
