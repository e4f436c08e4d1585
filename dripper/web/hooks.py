"""What other programs call: inbound mail from a provider's webhook, events from a CRM,
the health check. JSON in and out; the API token from the Authorization header only, never
from the URL, which access logs and proxies record.

- POST /inbound     raw MIME from a mail provider's inbound webhook     (API token)
- POST /events      a CRM reports converted / replied / a stage change  (API token)
- GET  /healthz     the database answers
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dripper.clock import parse_instant
from dripper.errors import UsageError
from dripper.inbound import Ingestor
from dripper.inbound.notify import Notifier
from dripper.leads.events import KINDS, apply_event
from dripper.store.queries import leadrows
from dripper.web.context import WebContext, context

MAX_BODY = 10 * 1024 * 1024  # a raw message larger than this is not one of ours (413)
FUTURE_SKEW = timedelta(minutes=5)  # an event's `at` may be this far ahead of our clock, no further
MAX_EMAIL = 320  # the longest e-mail address
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in no address or stage name (PostgreSQL refuses NUL)


def _authorized(request: Request) -> Response | None:
    api_token = context(request).api_token
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
    ctx = context(request)
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
        "lead": lead.email,
        "kind": event.kind,
        "suppressed": result.suppressed,
        "stage": result.stage_changed_to,
    }


async def events(request: Request) -> Response:
    if (denied := _authorized(request)) is not None:
        return denied
    ctx = context(request)
    try:
        event = EventRequest.parse(await request.body(), ctx.clock.now())
        done = await run_in_threadpool(_record, ctx, event)
    except (BadRequest, UsageError) as exc:  # UsageError: apply_event's word on the stage
        return JSONResponse({"error": str(exc)}, status_code=400)
    if done is None:
        return JSONResponse({"error": f"no lead {event.email}"}, status_code=404)
    return JSONResponse(done)


async def healthz(request: Request) -> Response:
    try:
        await run_in_threadpool(context(request).store.ping)
    except Exception:
        return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
    return JSONResponse({"ok": True, "database": "ok"})


ROUTES = [
    Route("/inbound", inbound, methods=["POST"], max_body_size=MAX_BODY),
    Route("/events", events, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
]


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


__all__ = ["MAX_BODY", "ROUTES", "BadRequest", "EventRequest", "bearer", "events", "healthz", "inbound", "same_secret"]
