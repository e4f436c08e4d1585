"""`dripper serve`: the HTTP side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dripper.cli.app import App, at_clock, pass_app

_F = TypeVar("_F", bound=Callable[..., Any])


def _seconds(flag: str, default: float, most: float, help: str) -> Callable[[_F], _F]:
    """A time limit in seconds, from a tenth of a second to `most`."""
    return click.option(flag, type=click.FloatRange(0.1, most), default=default, show_default=True, help=help)


# --- serve ------------------------------------------------------------------------------
@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--at",
    "at",
    metavar="ISO-8601",
    help="Freeze the server's clock at this instant (demos, tests; default: the system clock).",
)
@_seconds(
    "--header-timeout",
    10.0,
    300,
    "Seconds a client has to send a request's head (line and headers); then it is disconnected.",
)
@_seconds(
    "--body-timeout", 30.0, 3600, "Seconds a client has to send a request's body, after its head; then it gets 408."
)
@pass_app
def serve(app: App, host: str, port: int, at: str | None, header_timeout: float, body_timeout: float) -> None:
    """HTTP: one-click unsubscribe, inbound webhooks (POST /inbound, /events), /healthz, /metrics,
    and the read-only dashboard at /dashboard (set DRIPPER_DASHBOARD_TOKEN)."""
    import uvicorn

    from dripper.tokens import tokens_for
    from dripper.web.app import WebContext, create_app
    from dripper.web.server import protocol

    clock = at_clock(at)
    loaded = app.loaded()
    store = app.store()
    tokens = tokens_for(app.settings, store)
    web = create_app(
        WebContext(
            store,
            loaded,
            tokens,
            clock,
            app.settings.api_token,
            app.settings,
            metrics_token=app.settings.metrics_token,
            dashboard_token=app.settings.dashboard_token,
        )
    )
    # JSON logs: leave uvicorn's loggers unconfigured so their lines reach the root
    # handler (one JSON object each) instead of uvicorn's own text handlers.
    log_config = None if app.settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        log_config=log_config,
        http=protocol(header_timeout, body_timeout),
    )
