"""GET/HEAD /c/{token}: the redirect of a tracked link (`tracking: {clicks: true}`);
GET/HEAD /o/{token}: the open pixel (`tracking: {opens: true}`).

The token signs the touch and the target URL (tokens.py), so the redirect goes only to a
URL we wrote into a message: an unknown, tampered or foreign token, or one signed with a
secret no longer listed (DRIPPER_SECRET_OLD), gets a page saying the link is not valid
(404), never a redirect. Tokens do not expire: a link in a year-old message still lands.

The click is recorded (inbound/clicks.py tells a person from a scanner) and then
redirected. When the database cannot record it, the person still lands where the link
said: losing one click beats an error page, and nobody retries a click.

The open pixel answers the same 1×1 transparent GIF to every request, valid token or not
(a mail reader should never show a broken image), and counts the first load of a valid
one as an event `opened`. Opens are unreliable (image proxies and Apple Mail Privacy
Protection load images unread); the report says so.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from dripper.channels.email.links import LinkRules, trackable
from dripper.inbound.clicks import record_click, record_open
from dripper.tokens import ClickData
from dripper.web.context import WebContext, context

log = logging.getLogger("dripper.web.clicks")
_ANY_LINK = LinkRules(utm=(), wrap=None, keep=(), own="")


def _valid_target(url: str) -> bool:
    """Signed by us, and still an absolute http(s) URL: checked again all the same, so that
    a bug on the writing side cannot make this an open redirect to another scheme."""
    return trackable(url, _ANY_LINK) and urlsplit(url).scheme.lower() in ("http", "https")


def _record(ctx: WebContext, data: ClickData, method: str, user_agent: str) -> None:
    try:
        with ctx.store.begin() as conn:
            record_click(conn, data.touch_id, data.url, ctx.clock.now(), method=method, user_agent=user_agent)
    except SQLAlchemyError as exc:
        log.warning("click on touch %s not recorded: %s", data.touch_id, type(exc).__name__)


def _not_valid(request: Request) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "public/page.html",
        {
            "title": "Link not valid",
            "message": "This link is not valid, or no longer works. "
            "If you copied it, please check that it is complete.",
        },
        status_code=404,
        headers={"Cache-Control": "no-store"},
    )


async def click(request: Request) -> Response:
    ctx = context(request)
    token = request.path_params["token"]
    data = ctx.tokens.read_click(token)
    test = data is None
    if data is None:
        data = ctx.tokens.read_test_click(token)  # a test send's link: lands, records nothing
    if data is None or not _valid_target(data.url):
        return _not_valid(request)
    if not test:
        user_agent = request.headers.get("user-agent", "")
        await run_in_threadpool(_record, ctx, data, request.method, user_agent)
    # no-referrer: the target never learns the token; no-store: every click comes back here.
    return RedirectResponse(
        data.url, status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


# The smallest transparent GIF (43 bytes).
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def _record_open(ctx: WebContext, touch_id: int, method: str) -> None:
    try:
        with ctx.store.begin() as conn:
            record_open(conn, touch_id, ctx.clock.now(), method=method)
    except SQLAlchemyError as exc:
        log.warning("open of touch %s not recorded: %s", touch_id, type(exc).__name__)


async def opened(request: Request) -> Response:
    ctx = context(request)
    touch_id = ctx.tokens.read_open(request.path_params["token"])
    if touch_id is not None:
        await run_in_threadpool(_record_open, ctx, touch_id, request.method)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


ROUTES = [Route("/c/{token}", click, methods=["GET", "HEAD"]), Route("/o/{token}", opened, methods=["GET", "HEAD"])]

__all__ = ["PIXEL", "ROUTES", "click", "opened"]
