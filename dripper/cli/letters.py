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
    from dripper.store import printrows

    instant = at_or_now(at)
    with app.store().begin() as conn:
        found = printrows.get(conn, batch)
        if found is None:
            fail(f"no print batch {batch!r} (see dripper letters list)", code=1)
        if found["mailed_at"] is not None:
            out.print(f"{batch} was already marked mailed at {found['mailed_at'].isoformat()}")
            return
        printrows.mark_mailed(conn, batch, instant, "manual")
    out.print(f"{batch}: marked mailed ({found['letters']} letters)")
