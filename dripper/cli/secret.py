"""`dripper secret status|retire-kept`: the token-signing secret."""

from __future__ import annotations

import json

import click

from dripper.cli.app import App, fail, out, pass_app


# --- secret ---------------------------------------------------------------------------
@click.group(name="secret")
def secret_group() -> None:
    """Where the token-signing secret lives, and retiring the one kept in the database."""


@secret_group.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@pass_app
def secret_status(app: App, as_json: bool) -> None:
    """Which secret signs, how many retired ones still verify, and who can read the SQLite file.
    Prints no secret."""
    from dripper.tokens import secret_status as status_of

    status = status_of(app.settings, app.store())
    if as_json:
        click.echo(json.dumps(status.as_json()))
        return
    signing = "DRIPPER_SECRET" if status.from_env else "the secret kept in the database (DRIPPER_SECRET is unset)"
    out.print(f"signing with: {signing}", markup=False)
    kept = " (one of them the secret kept in the database)" if status.kept_verifies else ""
    out.print(f"retired secrets that still verify: {status.verifying_old}{kept}", markup=False)
    path, mode = status.database_file, status.open_mode
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
