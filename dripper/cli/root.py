"""The `dripper` group: the options every command shares, and the commands, one module per group."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dripper import __version__
from dripper.cli import (
    calls,
    campaigns,
    events,
    inbound,
    init,
    leads,
    letters,
    plan,
    previews,
    reports,
    secret,
    sending,
    serve,
    suppress,
    webhooks,
)
from dripper.cli.app import App, err, out
from dripper.clock import Clock, SystemClock
from dripper.settings import from_env, secret_list

_F = TypeVar("_F", bound=Callable[..., Any])


def _path_option(flag: str, name: str, envvar: str, help: str) -> Callable[[_F], _F]:
    """A path option that `envvar` sets when the command line does not."""
    return click.option(flag, name, envvar=envvar, type=click.Path(path_type=Path), help=help)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dripper")
@click.option("--database-url", envvar="DRIPPER_DATABASE_URL", help="SQLAlchemy URL [DRIPPER_DATABASE_URL].")
@_path_option("--campaigns", "campaigns_path", "DRIPPER_CAMPAIGNS", "Path of campaigns.yaml [DRIPPER_CAMPAIGNS].")
@_path_option(
    "--templates",
    "templates_dir",
    "DRIPPER_TEMPLATES",
    "Templates folder [DRIPPER_TEMPLATES; default: templates/ beside campaigns.yaml].",
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
def main(ctx: click.Context, /, verbose: int, **options: Any) -> None:
    """dripper: long follow-up sequences of e-mails and letters to sales leads."""
    from dripper import logs

    if options.get("base_url"):
        options["base_url"] = options["base_url"].rstrip("/")
    options["secret_old"] = tuple(s for text in options.get("secret_old") or () for s in secret_list(text)) or None
    for console in (out, err):  # piped output: whole lines rather than cells wrapped at 80 columns
        if not console.is_terminal:
            console.width = 200
    # A program that runs the CLI in-process may give it a clock: `main(..., obj=clock)`.
    clock = ctx.obj if isinstance(ctx.obj, Clock) else SystemClock()
    app = App(from_env().with_options(**options), clock=clock)
    logs.setup(
        logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        app.settings.log_format,
        app.settings.worker_id,
    )
    ctx.obj = app
    ctx.call_on_close(lambda: [cleanup() for cleanup in app.cleanups])


def _add_commands(group: click.Group) -> None:
    for command in (
        init.init,
        campaigns.check,
        campaigns.diff,
        leads.leads,
        events.event,
        calls.calls,
        letters.letters_group,
        inbound.ingest,
        serve.serve,
        sending.tick,
        sending.run,
        plan.plan,
        previews.preview,
        previews.simulate,
        reports.report,
        secret.secret_group,
        suppress.suppress,
        webhooks.webhooks_group,
    ):
        group.add_command(command)


_add_commands(main)
