"""What `dripper serve` runs with: built once by `create_app` and kept in the app's state,
where every endpoint reads it (`context(request)`)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from dripper.clock import Clock
from dripper.config import Loaded
from dripper.settings import Settings
from dripper.store import Store
from dripper.tokens import Tokens


@dataclass
class WebContext:
    store: Store
    loaded: Loaded
    tokens: Tokens
    clock: Clock
    api_token: str | None
    settings: Settings | None = None  # for notifying the sales team of replies
    metrics_token: str | None = None  # set: GET /metrics wants `Authorization: Bearer <it>`
    dashboard_token: str | None = None  # unset: the dashboard is off (403)


def context(request: Request) -> WebContext:
    """The context `create_app` was given."""
    ctx: WebContext = request.app.state.web
    return ctx


__all__ = ["WebContext", "context"]
