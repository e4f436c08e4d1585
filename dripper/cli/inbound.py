"""`dripper ingest`: inbound messages (bounces, complaints, replies...)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from dripper.cli.app import AT, App, at_or_now, err, fail, out, pass_app


# --- ingest ---------------------------------------------------------------------------
@click.command()
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
    instant = at_or_now(at)
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

    with click.open_file(name, "rb") as handle:  # "-": stdin, left open
        data: bytes = handle.read(MAX_BYTES + 1)
    return data


def _print_ingested(results: list[Any], dry_run: bool) -> None:
    table = Table(title="dry run: nothing changed" if dry_run else None, title_justify="left")
    for col in ("file", "kind", "lead", "status", "matched by", "effect"):
        table.add_column(col)
    for r in results:
        effect = "already applied" if r.duplicate else (r.effect or "")
        lead = r.lead or (f"unverified: {r.suspected_lead}" if r.suspected_lead else "")
        table.add_row(r.file, r.kind, lead, r.status or "", r.matched_by or "", effect)
    out.print(table)
