"""`dripper serve`: the one-click unsubscribe page (RFC 8058), inbound webhooks, health.

- GET  /u/{token}   a confirmation page with a POST form; changes nothing (mail scanners
                    and link previewers fetch GETs)
- GET/POST /p/{token}  the preference page: stop this campaign, stop everything, pause
- POST /u/{token}   unsubscribes at once: `List-Unsubscribe=One-Click` from a mailbox
                    provider, or the page's button. No cookies, no CSRF token; repeating it
                    is harmless
- POST /inbound     raw MIME from a mail provider's inbound webhook     (API token)
- POST /events      a CRM reports converted / replied / a stage change  (API token)
- GET  /healthz     the database answers
- GET  /metrics     Prometheus metrics, read from the database (DRIPPER_METRICS_TOKEN: Bearer)
- GET  /dashboard…  the read-only dashboard (dripper.dashboard; DRIPPER_DASHBOARD_TOKEN)

A forged, tampered or foreign token gets a 4xx, and so does every other bad input,
checked here explicitly; no input gets a 5xx. A failure on our side does (dripper.webguard):
503 with Retry-After when the database is unavailable, 500 for a bug, so that a webhook
sender keeps the message and retries instead of dropping it. Tokens of the API, the
metrics and the dashboard are read from the Authorization header only, never from the
URL, which access logs and proxies record. The test token of a test send or a preview
(`dripper preview --to/--open`) gets "this was a test message; nothing changed" (200) on
/u and /p, whatever the method.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import Scope

from dripper.clock import Clock, parse_instant
from dripper.config import Loaded
from dripper.errors import UsageError
from dripper.inbound import Ingestor
from dripper.inbound.notify import Notifier
from dripper.leads.events import KINDS, apply_event, opt_out, pause
from dripper.settings import Settings
from dripper.store import Store, leadrows
from dripper.tokens import TokenData, Tokens
from dripper.web.dashboard import dashboard_routes, dashboard_state
from dripper.web.guard import Failure, Guard
from dripper.web.metrics import metrics_route
from dripper.web.templating import environment

log = logging.getLogger("dripper.web")
MAX_BODY = 10 * 1024 * 1024  # a raw message larger than this is not one of ours (413)
MAX_SMALL_BODY = 64 * 1024  # every other endpoint takes a small form or JSON object (413)
FUTURE_SKEW = timedelta(minutes=5)  # an event's `at` may be this far ahead of our clock, no further
MAX_EMAIL = 320  # the longest e-mail address
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in no address or stage name (PostgreSQL refuses NUL)
_PEOPLE = ("/u/", "/p/", "/dashboard")  # paths people see in a browser: errors as pages, not JSON
PAUSE_MONTHS = (1, 2, 3, 6)  # what the preference page offers


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


def _state(request: Request) -> WebContext:
    """What `create_app` was given: every endpoint reads its context from the app."""
    ctx: WebContext = request.app.state.web
    return ctx


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _page(
    request: Request,
    title: str,
    message: str = "",
    *,
    status: int = 200,
    template: str = "public/page.html",
    **context: Any,
) -> Response:
    """One of the pages a lead sees (public/*.html): a title and a message, or a form."""
    return _templates(request).TemplateResponse(
        request, template, {"title": title, "message": message, **context}, status_code=status
    )


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}{'•' * max(1, len(local) - 2)}@{domain}"


def _test_page(request: Request) -> Response:
    """What a test send's (or a preview's) unsubscribe and preference links get, GET or POST."""
    return _page(
        request,
        "This was a test message",
        "This was a test message; nothing changed. The links in the e-mails your leads receive work as they should.",
    )


def _is_test(request: Request) -> bool:
    # Test tokens (`dripper preview --to/--open`) name the lead a test was rendered for;
    # following one must not unsubscribe that lead.
    return _state(request).tokens.read_test(request.path_params["token"]) is not None


def _lead_for(ctx: WebContext, token: str) -> tuple[TokenData, Any] | None:
    data = ctx.tokens.read(token)
    if data is None:
        return None
    with ctx.store.begin() as conn:
        lead = leadrows.by_id(conn, data.lead_id)
    return (data, lead) if lead is not None else None


async def unsubscribe_page(request: Request) -> Response:
    if _is_test(request):
        return _test_page(request)
    ctx = _state(request)
    found = await run_in_threadpool(_lead_for, ctx, request.path_params["token"])
    if found is None:
        return _page(
            request,
            "Link not valid",
            "This unsubscribe link is not valid. If you copied it, please check that it is complete.",
            status=404,
        )
    _data, lead = found
    sender = ctx.loaded.campaigns.sender
    email, name = _masked(lead["email"]), sender.name or sender.address
    if lead["unsubscribed_at"] is not None:
        return _page(request, "You are unsubscribed", template="public/unsubscribed.html", email=email, sender=name)
    return _page(
        request,
        "Unsubscribe",
        template="public/unsubscribe.html",
        token=request.path_params["token"],
        email=email,
        sender=name,
    )


def _unsubscribe_lead(ctx: WebContext, conn: Connection, data: TokenData, lead: Any) -> None:
    if lead["unsubscribed_at"] is None:  # once is enough: a repeated POST changes nothing
        apply_event(
            conn,
            ctx.loaded.planner,
            lead,
            "unsubscribed",
            ctx.clock.now(),
            source="web",
            detail={"campaign": data.campaign},
        )


def _unsubscribe(ctx: WebContext, token: str) -> bool:
    found = _lead_for(ctx, token)
    if found is None:
        return False
    with ctx.store.begin() as conn:
        _unsubscribe_lead(ctx, conn, *found)
    return True


async def unsubscribe_post(request: Request) -> Response:
    await request.body()  # unused, but read: one over the limit is refused (413) before anything changes
    if _is_test(request):
        return _test_page(request)
    if not await run_in_threadpool(_unsubscribe, _state(request), request.path_params["token"]):
        return _page(request, "Link not valid", "This unsubscribe link is not valid.", status=404)
    return _page(request, "You are unsubscribed", "You will receive no more e-mails from us. Sorry to see you go.")


async def preferences_page(request: Request) -> Response:
    if _is_test(request):
        return _test_page(request)
    ctx = _state(request)
    found = await run_in_threadpool(_lead_for, ctx, request.path_params["token"])
    if found is None:
        return _page(request, "Link not valid", "This link is not valid.", status=404)
    data, lead = found
    campaign = ctx.loaded.campaigns.campaigns.get(data.campaign)
    return _page(
        request,
        "Your e-mail preferences",
        template="public/preferences.html",
        email=_masked(lead["email"]),
        about=(campaign.description or data.campaign) if campaign else data.campaign,
        months=PAUSE_MONTHS,
    )


def _set_preference(ctx: WebContext, token: str, choice: str, months: int) -> str | None:
    found = _lead_for(ctx, token)
    if found is None:
        return None
    data, lead = found
    now = ctx.clock.now()
    with ctx.store.begin() as conn:
        if choice == "all":
            _unsubscribe_lead(ctx, conn, data, lead)
            return "You will receive no more e-mails from us."
        if choice == "pause":
            until = pause(conn, ctx.loaded.planner, lead, months, now)
            return f"Paused: you will hear from us again after {until.date().isoformat()}."
        opt_out(conn, lead, data.campaign, now)
        return "You will receive no more of these e-mails."


async def preferences_post(request: Request) -> Response:
    if _is_test(request):
        return _test_page(request)
    form = await request.form()
    choice = str(form.get("choice") or "")
    try:
        months = int(str(form.get("months") or "1"))
    except ValueError:
        months = 0
    if choice not in ("campaign", "all", "pause") or not 1 <= months <= 12:
        return _page(request, "Please choose", "Please go back and choose one of the options.", status=400)
    done = await run_in_threadpool(_set_preference, _state(request), request.path_params["token"], choice, months)
    if done is None:
        return _page(request, "Link not valid", "This link is not valid.", status=404)
    return _page(request, "Saved", done)


def _authorized(request: Request) -> Response | None:
    api_token = _state(request).api_token
    if not api_token:
        return JSONResponse({"error": "set DRIPPER_API_TOKEN to enable this endpoint"}, status_code=403)
    if "token" in request.query_params:  # refused, not ignored: whoever set this up needs to know
        return JSONResponse(
            {
                "error": "send the API token in the header 'Authorization: Bearer TOKEN', never "
                "in the URL (URLs are written to access logs); if it was, change DRIPPER_API_TOKEN"
            },
            status_code=400,
        )
    if not same_secret(bearer(request), api_token):
        return JSONResponse(
            {"error": "invalid API token (expected 'Authorization: Bearer TOKEN')"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="dripper"'},
        )
    return None


async def inbound(request: Request) -> Response:
    if (denied := _authorized(request)) is not None:
        return denied
    ctx = _state(request)
    raw = await request.body()  # at most MAX_BODY: the route's limit answers 413 beyond it
    if not raw:
        return JSONResponse({"error": "expected a raw RFC 5322 message as the body"}, status_code=400)
    notifier = Notifier(ctx.loaded.campaigns, ctx.settings) if ctx.settings else None
    ingestor = Ingestor(ctx.store, ctx.loaded.planner, ctx.tokens, notifier)
    result = await run_in_threadpool(ingestor.ingest_each, raw, "webhook", ctx.clock.now())
    return JSONResponse(result.as_json())


def _record(ctx: WebContext, event: EventRequest) -> dict[str, Any] | None:
    with ctx.store.begin() as conn:
        lead = leadrows.by_email(conn, event.email)
        if lead is None:
            return None
        result = apply_event(conn, ctx.loaded.planner, lead, event.kind, event.at, source="api", stage=event.stage)
    return {
        "lead": lead["email"],
        "kind": event.kind,
        "suppressed": result.suppressed,
        "stage": result.stage_changed_to,
    }


async def events(request: Request) -> Response:
    if (denied := _authorized(request)) is not None:
        return denied
    ctx = _state(request)
    try:
        event = EventRequest.parse(await request.body(), ctx.clock.now())
        done = await run_in_threadpool(_record, ctx, event)
    except (BadRequest, UsageError) as exc:  # UsageError: apply_event's word on the stage
        return JSONResponse({"error": str(exc)}, status_code=400)
    if done is None:
        return JSONResponse({"error": f"no lead {event.email}"}, status_code=404)
    return JSONResponse(done)


def _ping(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(text("SELECT 1"))


async def healthz(request: Request) -> Response:
    try:
        await run_in_threadpool(_ping, _state(request).store)
    except Exception:
        return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
    return JSONResponse({"ok": True, "database": "ok"})


ROUTES = [
    Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
    Route("/u/{token}", unsubscribe_post, methods=["POST"]),
    Route("/p/{token}", preferences_page, methods=["GET", "HEAD"]),
    Route("/p/{token}", preferences_post, methods=["POST"]),
    Route("/inbound", inbound, methods=["POST"], max_body_size=MAX_BODY),
    Route("/events", events, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
]


def create_app(ctx: WebContext) -> Starlette:
    """The app and its state: the endpoints read `app.state.web` (this context), `.templates`
    and `.dashboard` (the dashboard's own, see `dashboard.pages`)."""
    app = Starlette(
        routes=[
            *ROUTES,
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
        page = Jinja2Templates(env=environment()).TemplateResponse(
            request,
            "public/page.html",
            {"title": failure.title, "message": f"{failure.detail[0].upper()}{failure.detail[1:]}."},
            status_code=failure.status,
        )
        page.headers.update(headers)
        return page
    return JSONResponse({"error": failure.detail}, status_code=failure.status, headers=headers)


def bearer(request: Request) -> str:
    """The token of `Authorization: Bearer TOKEN` (any case of `Bearer`), or ""."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def same_secret(given: str, secret: str) -> bool:
    """Constant-time, whatever the characters given."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode("utf-8", "surrogateescape"))


class BadRequest(ValueError):
    """Input we refuse with a 400 and this message."""


@dataclass(frozen=True)
class EventRequest:
    """A POST /events body, checked: `{"email", "kind", "stage"?, "at"?}`."""

    email: str
    kind: str
    stage: str | None
    at: datetime

    @classmethod
    def parse(cls, body: bytes, now: datetime) -> EventRequest:
        try:
            payload = json.loads(body)
        except ValueError:  # not JSON, or not UTF-8
            raise BadRequest("the body must be a JSON object") from None
        if not isinstance(payload, dict):
            raise BadRequest("the body must be a JSON object")
        email, kind, stage, at = (payload.get(key) for key in ("email", "kind", "stage", "at"))
        if not isinstance(email, str) or not 0 < len(email) <= MAX_EMAIL or _CONTROL.search(email):
            raise BadRequest(f'"email" must be an e-mail address (a string of at most {MAX_EMAIL} characters)')
        if kind not in KINDS:
            raise BadRequest(f'"kind" must be one of {", ".join(KINDS)}')
        if stage is not None and (not isinstance(stage, str) or len(stage) > 100 or _CONTROL.search(stage)):
            raise BadRequest('"stage" must be the name of a funnel stage')
        if at is not None and not isinstance(at, str):
            raise BadRequest('"at" must be an ISO-8601 instant, e.g. 2026-11-23T09:00:00+00:00')
        return cls(email, kind, stage or None, now if at is None else _instant(at, now))


def _instant(text: str, now: datetime) -> datetime:
    """When the event happened: not far in the future, where it would outrank what really
    happens next (a stage change dated next year holds back every touch until then)."""
    try:
        at = parse_instant(text)
    except (ValueError, OverflowError):
        raise BadRequest(
            f'"at" is not an ISO-8601 instant within years 1-9999: {text[:60]!r} (e.g. 2026-11-23T09:00:00+00:00)'
        ) from None
    if at > now + FUTURE_SKEW:
        raise BadRequest(
            f'"at" ({at.isoformat()}) is in the future by this server\'s clock ({now.isoformat()}); '
            f"an event is reported when it has happened (allowed clock skew: "
            f"{int(FUTURE_SKEW.total_seconds() // 60)} minutes)"
        )
    return at
