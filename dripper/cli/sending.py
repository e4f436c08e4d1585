"""`dripper tick` and `dripper run`: sending what is due."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime

import click
from rich.table import Table

from dripper import config as config_mod
from dripper.campaign.model import CampaignFile
from dripper.cli.app import AT, App, at_clock, err, fail, out, pass_app
from dripper.errors import ConfigError
from dripper.settings import Settings
from dripper.store import Store


def warn_if_unsubscribe_not_https(settings: Settings) -> None:
    if settings.smtp_url and not settings.base_url.startswith("https://"):
        err.print(
            f"dripper: warning: DRIPPER_BASE_URL is {settings.base_url}: mailbox providers (Gmail, Yahoo) "
            "expect an https one-click unsubscribe URL",
            markup=False,
            soft_wrap=True,
        )


def require_output_dirs(settings: Settings, config: CampaignFile) -> None:
    """Refuse to tick when a folder it writes into cannot be made or written."""
    from dripper.campaign.usage import channels_used
    from dripper.channels import outdirs

    found = outdirs.problems(settings, channels_used(config))
    for problem in found[:-1]:
        err.print(f"dripper: {problem}", markup=False, soft_wrap=True)
    if found:
        fail(f"{found[-1]}; nothing was sent", code=1)


# --- tick / run ------------------------------------------------------------------------
@click.command()
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
    clock = at_clock(at)
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
    from dripper.store.queries import tickrows

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
        rows = tickrows.next_up(conn, limit=10)
    if rows:
        upcoming = Table(title="next up", title_justify="left")
        for col in ("due (UTC)", "lead", "campaign", "step", "channel"):
            upcoming.add_column(col)
        for row in rows:
            upcoming.add_row(row.due_at.strftime("%Y-%m-%d %H:%M"), row.email, row.campaign, row.step_id, row.channel)
        out.print(upcoming)


@click.command()
@click.option("--interval", type=float, help="Seconds between ticks [DRIPPER_TICK_INTERVAL, default 60].")
@click.option(
    "--max-in-flight", type=click.IntRange(1, 256), help="Concurrent sends [DRIPPER_MAX_IN_FLIGHT, default 4]."
)
@pass_app
def run(app: App, interval: float | None, max_in_flight: int | None) -> None:
    """Long-running worker: a tick at start and then every --interval seconds."""
    from dripper.clock import SystemClock
    from dripper.sending import soleworker
    from dripper.sending.worker import Worker

    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    settings = app.settings.with_options(tick_interval=interval, max_in_flight=max_in_flight)
    loaded = app.loaded()  # refuse a broken campaigns.yaml before starting
    require_output_dirs(settings, loaded.campaigns)
    warn_if_unsubscribe_not_https(settings)
    try:  # a DKIM key that cannot be read would fail every tick: refuse to start instead
        from dripper.sending.tick import dkim_key

        dkim_key(settings, loaded)
    except ValueError as exc:
        fail(str(exc), code=1)
    try:
        watcher = config_mod.Watcher(settings)
    except ConfigError as exc:  # pragma: no cover - loaded() already exited
        fail(str(exc))
    store = app.store()
    try:
        single = soleworker.claim(store)
    except soleworker.AnotherWorker:
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
