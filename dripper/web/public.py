"""The pages a lead reaches from a message: the one-click unsubscribe (RFC 8058) and the
preference page, rendered from templates/public/.

- GET  /u/{token}   a confirmation page with a POST form; changes nothing (mail scanners
                    and link previewers fetch GETs)
- POST /u/{token}   unsubscribes at once: `List-Unsubscribe=One-Click` from a mailbox
                    provider, or the page's button. No cookies, no CSRF token; repeating it
                    is harmless
- GET/POST /p/{token}  the preference page: stop this campaign, stop everything, pause

A forged, tampered or foreign token gets a 404. The test token of a test send or a preview
(`dripper preview --to/--open`) gets "this was a test message; nothing changed" (200),
whatever the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from babel.dates import format_date
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from dripper import translations
from dripper.campaign import languages
from dripper.campaign.model import humanise
from dripper.leads.events import apply_event, opt_out, pause
from dripper.leads.records import Lead
from dripper.store.queries import leadrows
from dripper.tokens import TokenData
from dripper.web.context import WebContext, context

PAUSE_MONTHS = (1, 2, 3, 6)  # what the preference page offers


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
    language: str = languages.FALLBACK,
    **values: Any,
) -> Response:
    """One of the pages a lead sees (public/*.html): a title and a message, or a form,
    in `language` (the texts given are translated already)."""
    return _templates(request).TemplateResponse(
        request,
        template,
        {"title": title, "message": message, "language": language, **values},
        status_code=status,
    )


def _lead_language(ctx: WebContext, lead: Lead, campaign: str) -> str:
    """The language the lead's e-mails are written in (campaign/languages.py)."""
    config = ctx.loaded.campaigns
    found = config.campaigns.get(campaign)
    return languages.resolve(lead.language, found.language if found else None, config.defaults.language)


def _browser_language(request: Request) -> str:
    """For a page that knows no lead (a link not valid, a test): the first language of the
    browser's Accept-Language that dripper speaks, else English."""
    from babel import negotiate_locale

    wanted = [part.split(";")[0].strip() for part in request.headers.get("accept-language", "").split(",")[:20]]
    found = negotiate_locale([w for w in wanted if w], [languages.FALLBACK, *translations.SHIPPED], sep="-")
    return found or languages.FALLBACK


def _messages(language: str) -> Any:
    """The gettext of `language` (called `gettext` where used, so that the messages are
    found by the extraction tests/test_translations.py runs)."""
    return translations.translations(language).gettext


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}{'•' * max(1, len(local) - 2)}@{domain}"


def _test_page(request: Request) -> Response:
    """What a test send's (or a preview's) unsubscribe and preference links get, GET or POST."""
    language = _browser_language(request)
    gettext = _messages(language)
    return _page(
        request,
        gettext("This was a test message"),
        gettext(
            "This was a test message; nothing changed. The links in the e-mails your leads receive work as they should."
        ),
        language=language,
    )


def _is_test(request: Request) -> bool:
    # Test tokens (`dripper preview --to/--open`) name the lead a test was rendered for;
    # following one must not unsubscribe that lead.
    return context(request).tokens.read_test(request.path_params["token"]) is not None


def _lead_for(ctx: WebContext, token: str) -> tuple[TokenData, Any] | None:
    data = ctx.tokens.read(token)
    if data is None:
        return None
    with ctx.store.begin() as conn:
        lead = leadrows.by_id(conn, data.lead_id)
    return (data, lead) if lead is not None else None


@dataclass(frozen=True)
class _TokenLead:
    """The lead a link's token names, with the context its page answers from."""

    ctx: WebContext
    data: TokenData
    lead: Lead


async def _token_lead(request: Request) -> _TokenLead | None:
    ctx = context(request)
    found = await run_in_threadpool(_lead_for, ctx, request.path_params["token"])
    return None if found is None else _TokenLead(ctx, *found)


async def unsubscribe_page(request: Request) -> Response:
    if _is_test(request):
        return _test_page(request)
    found = await _token_lead(request)
    if found is None:
        language = _browser_language(request)
        gettext = _messages(language)
        return _page(
            request,
            gettext("Link not valid"),
            gettext("This unsubscribe link is not valid. If you copied it, please check that it is complete."),
            status=404,
            language=language,
        )
    sender = found.ctx.loaded.campaigns.sender
    email, name = _masked(found.lead.email), sender.name or sender.address
    language = _lead_language(found.ctx, found.lead, found.data.campaign)
    gettext = _messages(language)
    if found.lead.unsubscribed_at is not None:
        return _page(
            request,
            gettext("You are unsubscribed"),
            template="public/unsubscribed.html",
            email=email,
            sender=name,
            language=language,
        )
    return _page(
        request,
        gettext("Unsubscribe"),
        template="public/unsubscribe.html",
        token=request.path_params["token"],
        email=email,
        sender=name,
        language=language,
    )


def _unsubscribe_lead(ctx: WebContext, conn: Connection, data: TokenData, lead: Lead) -> None:
    if lead.unsubscribed_at is None:  # once is enough: a repeated POST changes nothing
        apply_event(
            conn,
            ctx.loaded.planner,
            lead,
            "unsubscribed",
            ctx.clock.now(),
            source="web",
            detail={"campaign": data.campaign},
        )


def _unsubscribe(ctx: WebContext, token: str) -> str | None:
    """The lead's language once it is unsubscribed; None for a link not valid."""
    found = _lead_for(ctx, token)
    if found is None:
        return None
    with ctx.store.begin() as conn:
        _unsubscribe_lead(ctx, conn, *found)
    return _lead_language(ctx, found[1], found[0].campaign)


async def unsubscribe_post(request: Request) -> Response:
    await request.body()  # unused, but read: one over the limit is refused (413) before anything changes
    if _is_test(request):
        return _test_page(request)
    language = await run_in_threadpool(_unsubscribe, context(request), request.path_params["token"])
    if language is None:
        language = _browser_language(request)
        gettext = _messages(language)
        return _page(
            request,
            gettext("Link not valid"),
            gettext("This unsubscribe link is not valid."),
            status=404,
            language=language,
        )
    gettext = _messages(language)
    return _page(
        request,
        gettext("You are unsubscribed"),
        gettext("You will receive no more e-mails from us. Sorry to see you go."),
        language=language,
    )


async def preferences_page(request: Request) -> Response:
    if _is_test(request):
        return _test_page(request)
    found = await _token_lead(request)
    if found is None:
        return _not_valid(request)
    data = found.data
    campaigns = found.ctx.loaded.campaigns
    campaign = campaigns.campaigns.get(data.campaign)
    # A campaign removed since the message was sent still gets a readable name; the
    # `description` is the marketer's note and never reaches a lead.
    about = campaign.public_label if campaign else humanise(data.campaign)
    language = _lead_language(found.ctx, found.lead, data.campaign)
    gettext = _messages(language)
    return _page(
        request,
        gettext("Your e-mail preferences"),
        template="public/preferences.html",
        language=language,
        email=_masked(found.lead.email),
        about=about,
        sender=campaigns.sender.name or campaigns.sender.address,
        months=PAUSE_MONTHS,
    )


def _not_valid(request: Request) -> Response:
    language = _browser_language(request)
    gettext = _messages(language)
    return _page(request, gettext("Link not valid"), gettext("This link is not valid."), status=404, language=language)


def _set_preference(ctx: WebContext, token: str, choice: str, months: int) -> tuple[str, str] | None:
    """What the page says once the choice is saved, and in which language."""
    found = _lead_for(ctx, token)
    if found is None:
        return None
    data, lead = found
    now = ctx.clock.now()
    language = _lead_language(ctx, lead, data.campaign)
    gettext = _messages(language)
    with ctx.store.begin() as conn:
        if choice == "all":
            _unsubscribe_lead(ctx, conn, data, lead)
            return gettext("You will receive no more e-mails from us."), language
        if choice == "pause":
            until = pause(conn, ctx.loaded.planner, lead, months, now)
            day = format_date(until.date(), format="long", locale=languages.locale_of(language, lead.country))
            return gettext("Paused: you will hear from us again after {day}.").format(day=day), language
        opt_out(conn, lead, data.campaign, now)
        return gettext("You will receive no more of these e-mails."), language


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
        language = _browser_language(request)
        gettext = _messages(language)
        return _page(
            request,
            gettext("Please choose"),
            gettext("Please go back and choose one of the options."),
            status=400,
            language=language,
        )
    done = await run_in_threadpool(_set_preference, context(request), request.path_params["token"], choice, months)
    if done is None:
        return _not_valid(request)
    message, language = done
    gettext = _messages(language)
    return _page(request, gettext("Saved"), message, language=language)


ROUTES = [
    Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
    Route("/u/{token}", unsubscribe_post, methods=["POST"]),
    Route("/p/{token}", preferences_page, methods=["GET", "HEAD"]),
    Route("/p/{token}", preferences_post, methods=["POST"]),
]

__all__ = ["PAUSE_MONTHS", "ROUTES", "preferences_page", "preferences_post", "unsubscribe_page", "unsubscribe_post"]
