"""`dripper serve`: the app and its state. The endpoints live in their modules and read
what they need from `request.app.state` (`web`: the `WebContext`; `templates`: the Jinja2
templates of dripper/web/templates, then dripper/pages/templates, autoescaped; `dashboard`:
the dashboard's state):

- `public`     GET/POST /u/{token} (one-click unsubscribe, RFC 8058), GET/POST /p/{token}
               (the preference page)
- `clicks`     GET/HEAD /c/{token} (the signed redirect of a tracked link), /o/{token} (open pixel)
- `hooks`      POST /inbound, POST /events (API token), GET /healthz
- `metrics`    GET /metrics (DRIPPER_METRICS_TOKEN: Bearer)
- `dashboard`  GET /dashboard… (DRIPPER_DASHBOARD_TOKEN)

A forged, tampered or foreign token gets a 4xx, and so does every other bad input,
checked explicitly; no input gets a 5xx. A failure on our side does (`guard`): 503 with
Retry-After when the database is unavailable, 500 for a bug, so that a webhook sender keeps
the message and retries instead of dropping it. Tokens of the API, the metrics and the
dashboard are read from the Authorization header only, never from the URL, which access
logs and proxies record.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import Scope

from dripper.web import clicks, hooks, public
from dripper.web.context import WebContext
from dripper.web.dashboard import dashboard_routes, dashboard_state
from dripper.web.guard import Failure, Guard
from dripper.web.metrics import metrics_route
from dripper.web.templating import environment

MAX_SMALL_BODY = 64 * 1024  # every endpoint but /inbound takes a small form or JSON object (413)
_PEOPLE = ("/u/", "/p/", "/c/", "/dashboard")  # paths people see in a browser: errors as pages, not JSON


def create_app(ctx: WebContext) -> Starlette:
    """The app and its state: the endpoints read `app.state.web` (this context), `.templates`
    and `.dashboard` (the dashboard's own, see `dashboard.pages`)."""
    app = Starlette(
        routes=[
            *public.ROUTES,
            *clicks.ROUTES,
            *hooks.ROUTES,
            metrics_route(ctx.store, ctx.clock, ctx.metrics_token),
            *dashboard_routes(),
        ],
        middleware=[Middleware(Guard, respond=_failure_response)],
        max_body_size=MAX_SMALL_BODY,
    )
    app.state.web = ctx
    app.state.templates = Jinja2Templates(env=environment())
    app.state.dashboard = dashboard_state(ctx)
    return app


def _failure_response(scope: Scope, failure: Failure) -> Response:
    """A 503 or 500: a page where a person is, JSON for webhook senders and scripts."""
    headers = {**failure.headers, "Cache-Control": "no-store"}
    if str(scope.get("path", "")).startswith(_PEOPLE):
        request = Request(scope)
        templates: Jinja2Templates = request.app.state.templates
        page = templates.TemplateResponse(
            request,
            "public/page.html",
            {"title": failure.title, "message": f"{failure.detail[0].upper()}{failure.detail[1:]}."},
            status_code=failure.status,
        )
        page.headers.update(headers)
        return page
    return JSONResponse({"error": failure.detail}, status_code=failure.status, headers=headers)


__all__ = ["MAX_SMALL_BODY", "WebContext", "create_app"]
