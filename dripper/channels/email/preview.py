"""An e-mail as `dripper preview --open` shows it: its HTML part as a page, with the
headers a mail client shows above it."""

from __future__ import annotations

import re
from datetime import datetime

from markupsafe import Markup

from dripper.campaign import timing
from dripper.campaign.templates import RenderedEmail
from dripper.channels.base import NotForStep, Preview, PreviewRequest
from dripper.pages import render

PREVIEW_NOTE = "A preview. Its unsubscribe and preference links are test links: following them changes nothing."


def display_address(name: str, addr: str) -> str:
    """`Name <address>` for people to read (not RFC 2047-encoded, unlike the header)."""
    return f"{name} <{addr}>" if name else addr


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_HEAD_OPEN = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def email_page(rendered: RenderedEmail, from_: str, to: str, when: datetime, note: str) -> str:
    """The e-mail's HTML part as a complete page, with the subject, From, To and Date shown
    above it the way a mail client shows them (`from_`/`to` as display_address gives them,
    `when` on the lead's clock). The message's own HTML is kept as it is: the header block
    (templates/previews/email_header.html) is inserted after its <body> tag."""
    block = render(
        "previews/email_header.html",
        subject=rendered.subject,
        rows=(("From", from_), ("To", to), ("Date", when.strftime("%a, %d %b %Y %H:%M %Z").strip())),
        note=note,
    )
    html = rendered.html
    body = _BODY_OPEN.search(html)
    if body is None:  # a fragment: give it a document of its own
        return render("previews/email_page.html", subject=rendered.subject, header=Markup(block), message=Markup(html))
    html = html[: body.end()] + block + html[body.end() :]
    opened = _HEAD_OPEN.search(html)
    if opened is None:
        head = render("previews/email_head.html", whole=True, charset=True, title=True, subject=rendered.subject)
        return html[: body.start()] + head + html[body.start() :]
    extra = render(
        "previews/email_head.html",
        whole=False,
        charset="charset" not in html[opened.end() : body.start()].lower(),
        title=re.search(r"<title\b", html[: body.start()], re.IGNORECASE) is None,
        subject=rendered.subject,
    )
    return html[: opened.end()] + extra + html[opened.end() :]


def preview(request: PreviewRequest, fmt: str) -> Preview:
    """`dripper preview --format FMT` of an e-mail step: its subject and text part, its
    HTML part, or the whole message (eml)."""
    composer, view, campaign, step, now = request.composer, request.view, request.campaign, request.step, request.now
    if fmt == "pdf":
        raise NotForStep("--format pdf is for letter steps")
    if fmt == "eml":
        return Preview(composer.email(0, view, campaign, step, now).data.decode("ascii", "replace"))
    ctx, _url, _token = composer.context(view, campaign, step, now)
    rendered = composer.loaded.renderer.email(campaign, step, ctx)
    return Preview(rendered.html if fmt == "html" else f"Subject: {rendered.subject}\n\n{rendered.text}")


def page(request: PreviewRequest) -> bytes:
    """The HTML part in a page with its headers above it, dated on the lead's clock."""
    composer, view, campaign, step, now = request.composer, request.view, request.campaign, request.step, request.now
    ctx, _url, _token = composer.context(view, campaign, step, now)
    email = composer.loaded.renderer.email(campaign, step, ctx)
    sender = composer.sender(view, campaign)  # the identity the lead's owner chooses
    try:
        local = now.astimezone(timing.zone(view.timezone))
    except ValueError:
        local = now
    shown = email_page(
        email,
        display_address(sender.name, sender.address),
        display_address(view.full_name, view.email),
        local,
        PREVIEW_NOTE,
    )
    return shown.encode("utf-8")


__all__ = ["PREVIEW_NOTE", "display_address", "email_page", "page", "preview"]
