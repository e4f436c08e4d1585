"""`dripper suppress import|list|remove`: the do-not-contact list (dripper/leads/suppression.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from dripper.cli.app import AT, App, at_or_now, err, fail, out, pass_app
from dripper.cli.leads import secrets


@click.group()
def suppress() -> None:
    """The do-not-contact list: addresses and whole domains no import enrols."""


@suppress.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="The list's name, kept as each entry's reason (default: the file's name).")
@AT
@pass_app
def suppress_import(app: App, file: Path, name: str | None, at: str | None) -> None:
    """Add the addresses and domains of FILE, one a line (or a CSV's first column)."""
    from dripper.leads import suppression

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot read: {exc}", code=1)
    entries, problems = suppression.read_list(text)
    for line, message in problems:
        err.print(f"{file}:{line}: {message}", markup=False, soft_wrap=True)
    secret = secrets(app)[0]
    with app.store().begin() as conn:
        added = suppression.add(conn, secret, entries, name or file.name, at_or_now(at))
    out.print(
        f"{file}: {added} entr(y/ies) added, {len(entries) - added} already listed, {len(problems)} line(s) skipped",
        markup=False,
    )
    if problems:
        raise SystemExit(2)


@suppress.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def suppress_list(app: App, as_json: bool) -> None:
    """Every entry: domains as they are, addresses as their hash (never the address)."""
    from dripper.store.queries import suppressionrows

    with app.store().begin() as conn:
        rows = suppressionrows.every(conn)
    if as_json:
        shown = [
            {"kind": r.kind, "value": r.value, "reason": r.reason, "created_at": r.created_at.isoformat()} for r in rows
        ]
        click.echo(json.dumps(shown))
        return
    table = Table("kind", "value", "reason", "added")
    for r in rows:
        table.add_row(Text(r.kind), Text(r.value), Text(r.reason), Text(r.created_at.isoformat(timespec="minutes")))
    out.print(table)


@suppress.command("remove")
@click.argument("entries", nargs=-1, required=True)
@pass_app
def suppress_remove(app: App, entries: tuple[str, ...]) -> None:
    """Take addresses or domains (`example.com`, `@example.com`) off the list."""
    from dripper.leads import suppression
    from dripper.leads.records import LeadError

    known = secrets(app)
    missing = 0
    with app.store().begin() as conn:
        for text in entries:
            try:
                entry = suppression.parse_entry(text)
            except LeadError as exc:
                fail(str(exc), code=1)
            if suppression.remove(conn, known, entry):
                out.print(f"{entry.value}: removed", markup=False)
            else:
                missing += 1
                err.print(f"dripper: {entry.value}: not on the list", markup=False)
    if missing:
        raise SystemExit(2)
