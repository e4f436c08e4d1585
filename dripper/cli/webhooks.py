"""`dripper webhooks`: subscriptions, the dead deliveries, retrying them, delivering now."""

from __future__ import annotations

import json
import socket

import click
from rich.table import Table

from dripper.cli.app import App, at_or_now, fail, out, pass_app


def _synced(app: App) -> None:
    """campaigns.yaml's `webhooks:` into the database, when there is a campaigns.yaml."""
    from dripper.webhooks import subscriptions

    if not app.settings.campaigns_path.exists():
        return
    specs = app.loaded().campaigns.webhooks
    with app.store().begin() as conn:
        subscriptions.sync(conn, specs, app.clock.now())


@click.group(name="webhooks")
def webhooks_group() -> None:
    """Webhooks: where events go (signed per Standard Webhooks), and what failed."""


@webhooks_group.command(name="add")
@click.argument("url")
@click.option("--events", required=True, help="Comma-separated events (e.g. lead.replied,lead.converted), or *.")
@click.option("--secret-env", help="Environment variable holding the secret (whsec_…); default: one is generated.")
@pass_app
def add(app: App, url: str, events: str, secret_env: str | None) -> None:
    """Send EVENTS to URL."""
    from dripper.webhooks import subscriptions

    with app.store().begin() as conn:
        try:
            sub_id, secret = subscriptions.add(conn, url, events, app.clock.now(), secret_env=secret_env)
        except ValueError as exc:
            fail(str(exc), code=1)
    out.print(f"webhook {sub_id}: {url}", markup=False)
    if secret is not None:  # shown once: the receiver verifies signatures with it
        out.print(f"secret: {secret}", markup=False)


@webhooks_group.command(name="remove")
@click.argument("sub_id", metavar="ID", type=int)
@pass_app
def remove(app: App, sub_id: int) -> None:
    """Stop sending to a subscription (what is queued for it is still delivered)."""
    from dripper.store.queries import webhookrows

    with app.store().begin() as conn:
        found = webhookrows.subscription(conn, sub_id)
        if found is None or found.source != "cli":
            fail(f"no webhook {sub_id} added with `dripper webhooks add` (those of campaigns.yaml leave with the file)")
        webhookrows.remove_subscription(conn, sub_id, app.clock.now())
    out.print(f"webhook {sub_id} removed")


@webhooks_group.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_(app: App, as_json: bool) -> None:
    """The subscriptions, and the deliveries by state."""
    from dripper.store.queries import webhookrows

    _synced(app)
    with app.store().begin() as conn:
        subs = webhookrows.subscriptions(conn)
        counts = webhookrows.counts(conn)
    rows = [
        {"id": s.id, "url": s.url, "events": list(s.events), "source": s.source, "secret_env": s.secret_env}
        for s in subs
    ]
    if as_json:
        click.echo(json.dumps({"subscriptions": rows, "deliveries": counts}, indent=2))
        return
    if not rows:
        out.print("no webhooks")
    else:
        table = Table(title="Webhooks")
        for column in ("id", "url", "events", "source", "secret"):
            table.add_column(column, overflow="fold")
        for s in subs:
            secret = f"${s.secret_env}" if s.secret_env else "generated"
            table.add_row(str(s.id), s.url, ", ".join(s.events), s.source, secret)
        out.print(table)
    out.print(", ".join(f"{n} {state}" for state, n in counts.items()), markup=False)


@webhooks_group.command(name="failed")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def failed(app: App, as_json: bool) -> None:
    """Deliveries that gave up (dead): retry them with `dripper webhooks retry`."""
    from dripper.store.queries import webhookrows

    with app.store().begin() as conn:
        dead = webhookrows.listing(conn, webhookrows.DEAD)
    rows = [
        {
            "id": d.id,
            "event": d.event,
            "url": url,
            "attempts": d.attempts,
            "created_at": d.created_at.isoformat(),
            "last_error": d.last_error,
        }
        for d, url in dead
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no failed webhooks")
        return
    table = Table(title="Failed webhooks")
    for column in ("id", "event", "url", "attempts", "since", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[k]) for k in ("id", "event", "url", "attempts", "created_at", "last_error")))
    out.print(table)


@webhooks_group.command(name="retry")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Every failed delivery.")
@pass_app
def retry(app: App, ids: tuple[int, ...], everything: bool) -> None:
    """Send failed deliveries again (by id, or --all): due at once, a fresh 24 hours."""
    from dripper.store.queries import webhookrows

    if bool(ids) == everything:
        fail("give the ids of failed deliveries (see `dripper webhooks failed`) or --all", code=2)
    with app.store().begin() as conn:
        n = webhookrows.retry(conn, None if everything else list(ids), at_or_now(None))
    out.print(f"{n} deliver{'y' if n == 1 else 'ies'} queued again; `dripper run` or `dripper webhooks deliver` sends")


@webhooks_group.command(name="deliver")
@pass_app
def deliver(app: App) -> None:
    """Deliver what is due now (for cron, when `dripper run` does not run)."""
    from dripper.webhooks.delivery import deliver_due

    _synced(app)
    summary = deliver_due(app.store(), app.clock, f"{socket.gethostname()}:webhooks")
    out.print(f"{summary.delivered} delivered, {summary.failed} to retry, {summary.dead} dead")
