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

A forged, tampered or foreign token gets a 4xx; no input gets a 5xx. The test token of a
test send or a preview (`dripper preview --to/--open`) gets "this was a test message;
nothing changed" (200) on /u and /p, whatever the method.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from html import escape
from typing import Any, Awaitable, Callable

from sqlalchemy import Connection, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dripper.clock import Clock, parse_instant
from dripper.config import Loaded
from dripper.dashboard import dashboard_routes
from dripper.errors import UsageError
from dripper.events import KINDS, apply_event, opt_out, pause
from dripper.inbound import Ingestor
from dripper.inbound.notify import Notifier
from dripper.metrics import metrics_route
from dripper.settings import Settings
from dripper.store import Store, leadrows
from dripper.tokens import TokenData, Tokens

log = logging.getLogger("dripper.web")
MAX_BODY = 10 * 1024 * 1024  # a raw message larger than this is not one of ours


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


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:4em auto;"
        "padding:0 1em;color:#222}button{font-size:1em;padding:.6em 1.2em}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}{'•' * max(1, len(local) - 2)}@{domain}"


def _test_page() -> HTMLResponse:
    """What a test send's (or a preview's) unsubscribe and preference links get, GET or POST."""
    return _page("This was a test message", "<p>This was a test message; nothing changed. The links in the "
                 "e-mails your leads receive work as they should.</p>")


def create_app(ctx: WebContext) -> Starlette:
    def is_test(request: Request) -> bool:
        # Test tokens (`dripper preview --to/--open`) name the lead a test was rendered for;
        # following one must not unsubscribe that lead.
        return ctx.tokens.read_test(request.path_params["token"]) is not None

    def lead_for(token: str) -> tuple[TokenData, Any] | None:
        data = ctx.tokens.read(token)
        if data is None:
            return None
        with ctx.store.begin() as conn:
            lead = leadrows.by_id(conn, data.lead_id)
        return (data, lead) if lead is not None else None

    async def unsubscribe_page(request: Request) -> Response:
        if is_test(request):
            return _test_page()
        found = await run_in_threadpool(lead_for, request.path_params["token"])
        if found is None:
            return _page("Link not valid", "<p>This unsubscribe link is not valid. If you copied it, please "
                         "check that it is complete.</p>", status=404)
        _data, lead = found
        sender = ctx.loaded.campaigns.sender
        if lead["unsubscribed_at"] is not None:
            return _page("You are unsubscribed", f"<p>{escape(_masked(lead['email']))} receives no more e-mails "
                         f"from {escape(sender.name or sender.address)}.</p>")
        return _page(
            "Unsubscribe",
            f"<p>Stop all e-mails from {escape(sender.name or sender.address)} to "
            f"{escape(_masked(lead['email']))}?</p>"
            "<form method='post'><input type='hidden' name='List-Unsubscribe' value='One-Click'>"
            "<button type='submit'>Unsubscribe</button></form>"
            f"<p>Or <a href='/p/{escape(request.path_params['token'], quote=True)}'>choose what you receive</a>: "
            "stop only these e-mails, or pause them for a while.</p>",
        )

    def unsubscribe_lead(conn: Connection, data: TokenData, lead: Any) -> None:
        if lead["unsubscribed_at"] is None:  # once is enough: a repeated POST changes nothing
            apply_event(conn, ctx.loaded.planner, lead, "unsubscribed", ctx.clock.now(), source="web",
                        detail={"campaign": data.campaign})

    def unsubscribe(token: str) -> bool:
        found = lead_for(token)
        if found is None:
            return False
        with ctx.store.begin() as conn:
            unsubscribe_lead(conn, *found)
        return True

    async def unsubscribe_post(request: Request) -> Response:
        if is_test(request):
            return _test_page()
        if not await run_in_threadpool(unsubscribe, request.path_params["token"]):
            return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", status=404)
        return _page("You are unsubscribed", "<p>You will receive no more e-mails from us. "
                     "Sorry to see you go.</p>")

    async def preferences_page(request: Request) -> Response:
        if is_test(request):
            return _test_page()
        found = await run_in_threadpool(lead_for, request.path_params["token"])
        if found is None:
            return _page("Link not valid", "<p>This link is not valid.</p>", status=404)
        data, lead = found
        campaign = ctx.loaded.campaigns.campaigns.get(data.campaign)
        about = escape(campaign.description or data.campaign) if campaign else escape(data.campaign)
        months = "".join(f"<option value='{m}'>{m} month{'s' if m > 1 else ''}</option>" for m in (1, 2, 3, 6))
        return _page(
            "Your e-mail preferences",
            f"<p>For {escape(_masked(lead['email']))}:</p><form method='post'>"
            f"<p><label><input type='radio' name='choice' value='campaign' checked> Stop these e-mails ({about})"
            "</label></p>"
            "<p><label><input type='radio' name='choice' value='all'> Stop all e-mails from us</label></p>"
            f"<p><label><input type='radio' name='choice' value='pause'> Pause all e-mails for</label> "
            f"<select name='months'>{months}</select></p><button type='submit'>Save</button></form>",
        )

    def set_preference(token: str, choice: str, months: int) -> str | None:
        found = lead_for(token)
        if found is None:
            return None
        data, lead = found
        now = ctx.clock.now()
        with ctx.store.begin() as conn:
            if choice == "all":
                unsubscribe_lead(conn, data, lead)
                return "You will receive no more e-mails from us."
            if choice == "pause":
                until = pause(conn, ctx.loaded.planner, lead, months, now)
                return f"Paused: you will hear from us again after {until.date().isoformat()}."
            opt_out(conn, lead, data.campaign, now)
            return "You will receive no more of these e-mails."

    async def preferences_post(request: Request) -> Response:
        if is_test(request):
            return _test_page()
        form = await request.form()
        choice = str(form.get("choice") or "")
        try:
            months = int(str(form.get("months") or "1"))
        except ValueError:
            months = 0
        if choice not in ("campaign", "all", "pause") or not 1 <= months <= 12:
            return _page("Please choose", "<p>Please go back and choose one of the options.</p>", status=400)
        done = await run_in_threadpool(set_preference, request.path_params["token"], choice, months)
        if done is None:
            return _page("Link not valid", "<p>This link is not valid.</p>", status=404)
        return _page("Saved", f"<p>{escape(done)}</p>")

    def authorized(request: Request) -> Response | None:
        if not ctx.api_token:
            return JSONResponse({"error": "set DRIPPER_API_TOKEN to enable this endpoint"}, status_code=403)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), ctx.api_token.encode()):
            return JSONResponse({"error": "invalid API token"}, status_code=401)
        return None

    async def inbound(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        raw = await request.body()
        if not raw or len(raw) > MAX_BODY:
            return JSONResponse({"error": "expected a raw RFC 5322 message as the body"}, status_code=400)
        notifier = Notifier(ctx.loaded.campaigns, ctx.settings) if ctx.settings else None
        ingestor = Ingestor(ctx.store, ctx.loaded.planner, ctx.tokens, notifier)
        result = await run_in_threadpool(ingestor.ingest, raw, "webhook", ctx.clock.now())
        return JSONResponse(result.as_json())

    def record(payload: dict[str, Any]) -> dict[str, Any]:
        email, kind = payload.get("email"), payload.get("kind")
        if not isinstance(email, str) or kind not in KINDS:
            raise UsageError(f"expected {{\"email\": …, \"kind\": one of {', '.join(KINDS)}}}")
        stage = payload.get("stage")
        at = parse_instant(payload["at"]) if isinstance(payload.get("at"), str) else ctx.clock.now()
        with ctx.store.begin() as conn:
            lead = leadrows.by_email(conn, email)
            if lead is None:
                raise LookupError(f"no lead {email!r}")
            result = apply_event(conn, ctx.loaded.planner, lead, kind, at, source="api",
                                 stage=stage if isinstance(stage, str) else None)
        return {"lead": lead["email"], "kind": kind, "suppressed": result.suppressed, "stage": result.stage_changed_to}

    async def events(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        try:
            payload = json.loads(await request.body())
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
            return JSONResponse(await run_in_threadpool(record, payload))
        except LookupError as exc:
            return JSONResponse({"error": str(exc).strip("'\"")}, status_code=404)
        except (ValueError, UsageError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def healthz(request: Request) -> Response:
        def ping() -> None:
            with ctx.store.begin() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception:  # noqa: BLE001
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True, "database": "ok"})

    async def never_5xx(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "bad request"}, status_code=400)

    routes = [
        Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/u/{token}", unsubscribe_post, methods=["POST"]),
        Route("/p/{token}", preferences_page, methods=["GET", "HEAD"]),
        Route("/p/{token}", preferences_post, methods=["POST"]),
        Route("/inbound", inbound, methods=["POST"]),
        Route("/events", events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        metrics_route(ctx.store, ctx.clock, ctx.metrics_token),
        *dashboard_routes(ctx),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {Exception: never_5xx}
    return Starlette(routes=routes, exception_handlers=handlers)
