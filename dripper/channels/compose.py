"""From a claimed touch to what goes out: the bytes of one e-mail (rendered, CSS-inlined,
assembled, DKIM-signed, with its VERP envelope sender), the HTML of a letter, the notes
of a call. The same inputs give the same message, so this runs in the sender's own
process or in a render worker process (see sender.py)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from dripper.campaign import variants
from dripper.campaign.model import Campaign, Sender, Step
from dripper.campaign.templates import LeadView, plain_personal_url
from dripper.campaign.tracking import utm_parameters, with_utm
from dripper.channels.email import links
from dripper.channels.email.dkim import DkimKey, DkimKeys
from dripper.channels.email.mime import build_email, list_unsubscribe
from dripper.channels.letters import layout as letters
from dripper.config import Loaded
from dripper.leads import postal
from dripper.tokens import Tokens


@dataclass(frozen=True)
class Composed:
    mail_from: str  # the per-message (VERP) envelope sender
    recipient: str
    data: bytes
    message_id: str
    name: str  # stable per touch: a resend rewrites the same outbox file


def feedback_id(campaign: str, step: str, sender: str) -> str:
    """Gmail Postmaster's Feedback-ID: complaint rates per campaign and step."""
    return ":".join(part.replace(":", "-") for part in (campaign, step, sender))


# --- file names -------------------------------------------------------------------------
# A file named after a lead must be distinct from every other lead's: `a/b@x` and `a-b@x`
# (or `a\0b` and `a-b`) must not become the same file once made safe. Names stay short:
# a 64-octet local part, a long domain, a campaign and a step would pass 255 bytes.
PART_CHARS = 48  # each part of a name is cut to this many characters
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+\-]+")
# Plain: no `_` (the separator), no upper case (a case-insensitive file system), no leading `.` or `-`.
_PLAIN = re.compile(rf"[a-z0-9][a-z0-9@.+\-]{{0,{PART_CHARS - 1}}}")


def _readable(part: str) -> str:
    """The part as a file name can hold it: unsafe runs become `-`, cut to PART_CHARS."""
    return _UNSAFE.sub("-", part)[:PART_CHARS]


def touch_name(touch_id: int, campaign: str, step: str, email: str) -> str:
    """The name of a touch's file (outbox .eml, letter PDF): `ID_CAMPAIGN_STEP_EMAIL`.
    The touch id first makes it unique (the id holds no `_`), the rest makes it readable;
    a resend of the touch has the same id, so it rewrites the same file."""
    return "_".join((str(touch_id), _readable(campaign), _readable(step), _readable(email)))


def safe_name(*parts: str) -> str:
    """A file name made of the parts, distinct for distinct parts. Plain parts (lower-case
    letters, digits, `@.+-`, at most PART_CHARS) are joined with `_` as they are; otherwise
    the parts, made safe and cut, are followed by a digest of their exact values (that
    name has one `_`-separated field more, so it never equals a plain one)."""
    if all(_PLAIN.fullmatch(p) for p in parts):
        return "_".join(parts)
    digest = hashlib.blake2b(json.dumps(parts).encode(), digest_size=8).hexdigest()
    return "_".join([*(_readable(p).replace("_", "-") for p in parts), digest]).lstrip(".-")


@dataclass(frozen=True)
class ComposedLetter:
    html: str  # the template's HTML inside dripper's first-page frame
    format: str
    address: list[str]
    sort_key: str  # country and postal code: the print order
    name: str  # stable per touch: a resend rewrites the same PDF


def letter_date(view: LeadView, now: datetime, lang: str | None = None, locale: str | None = None) -> str:
    """Today in the lead's own time zone, written in the letter's language (`lang`, from
    its template's <html lang>), else in the lead's locale (`locale`, as the renderer
    resolved it: campaign/languages.py), else the way the lead's country writes dates."""
    from babel.dates import format_date

    from dripper.campaign import timing

    try:
        day = now.astimezone(timing.zone(view.timezone)).date()
    except ValueError:
        day = now.date()
    written_in = letters.date_locale(lang, postal.country_code(view.country)) or locale or postal.locale_for(view)
    return str(format_date(day, format="long", locale=written_in))


class Composer:
    def __init__(self, loaded: Loaded, base_url: str, secret: str, dkim: DkimKeys | DkimKey | None = None):
        self.loaded = loaded
        self.base_url = base_url
        self.tokens = Tokens(secret)
        # One key (the single-sender case) signs every domain; DkimKeys picks the From domain's.
        self.dkim = DkimKeys(fallback=dkim) if isinstance(dkim, DkimKey) else dkim or DkimKeys()

    def sender(self, view: LeadView, campaign: Campaign) -> Sender:
        """The identity this touch goes out from: chosen by the lead's owner (campaign/senders.py)."""
        return self.loaded.campaigns.sender_for(campaign.name, view.owner)

    def context(self, view: LeadView, campaign: Campaign, step: Step, now: datetime) -> tuple[dict[str, Any], str, str]:
        step = variants.for_lead(step, view.email, campaign)
        token = self.tokens.make(view.id, campaign.name)
        url = f"{self.base_url}/u/{token}"
        ctx = self.loaded.renderer.context(view, campaign, step, url, now, f"{self.base_url}/p/{token}")
        return ctx, url, token

    def email(self, touch_id: int, view: LeadView, campaign: Campaign, step: Step, now: datetime) -> Composed:
        """Raises jinja2.TemplateError when the template cannot render for this lead."""
        sender = self.sender(view, campaign)
        msgid = self.tokens.message_id(view.email, campaign.name, step.id, sender.domain)
        feedback = {"Feedback-ID": feedback_id(campaign.name, step.id, sender.domain)}
        data = self.message(view, view, campaign, step, now, msgid=msgid, extra_headers=feedback, touch_id=touch_id)
        return Composed(
            self.tokens.bounce_address(touch_id, sender.bounces),
            view.email,
            data,
            msgid,
            touch_name(touch_id, campaign.name, step.id, view.email),
        )

    def message(
        self,
        view: LeadView,
        recipient: LeadView,
        campaign: Campaign,
        step: Step,
        now: datetime,
        *,
        msgid: str,
        extra_headers: Mapping[str, str],
        subject_prefix: str = "",
        touch_id: int = 0,
    ) -> bytes:
        """The e-mail rendered for `view` and addressed to `recipient` (the lead itself, or
        the address of a test), DKIM-signed when a key is set. `touch_id`: the touch its
        tracked links name (0 for none: a click on them is recorded nowhere)."""
        sender = self.sender(view, campaign)
        step = variants.for_lead(step, view.email, campaign)  # an A/B test's variant for this lead
        ctx, url, token = self.context(view, campaign, step, now)
        rendered = self.loaded.renderer.email(campaign, step, ctx)
        # After rendering: the links as the lead will see them, footer included (left alone).
        rules = self.link_rules(campaign, step, touch_id, (url, str(ctx.get("preferences_url") or url)))
        rendered = links.rewrite(rendered, rules)
        if campaign.tracking.opens and touch_id:  # asked for explicitly; never in tests or previews
            rendered = replace(rendered, html=links.with_open_pixel(rendered.html, self.open_url(touch_id)))
        if subject_prefix:
            rendered = replace(rendered, subject=subject_prefix + rendered.subject)
        data = build_email(
            sender,
            recipient,
            rendered,
            msgid=msgid,
            date=now,
            unsubscribe=list_unsubscribe(url, sender.reply_to or sender.address, token),
            extra_headers=dict(extra_headers),
        )
        return self.dkim.sign(data, sender.domain)

    def link_rules(self, campaign: Campaign, step: Step, touch_id: int, keep: tuple[str, ...]) -> links.LinkRules:
        """How the links of this step's e-mail are rewritten (UTM, click tracking)."""
        utm = utm_parameters(campaign.utm, step.utm, campaign.name, step.id)
        wrap = (lambda target: self.click_url(touch_id, target)) if campaign.tracking.clicks else None
        return links.LinkRules(utm=utm, wrap=wrap, keep=keep, own=self.base_url)

    def personal_url_for(self, campaign: Campaign, step: Step, touch_id: int) -> Callable[[object], str]:
        """`{{ personal_url('https://…') }}` in a letter: the URL with the step's UTM
        parameters, through the click redirect when the campaign tracks clicks, so that a
        printed letter's response is measured like an e-mail's."""
        utm = utm_parameters(campaign.utm, step.utm, campaign.name, step.id)

        def personal_url(url: object) -> str:
            target = with_utm(plain_personal_url(url), utm)
            return self.click_url(touch_id, target) if campaign.tracking.clicks else target

        return personal_url

    def open_url(self, touch_id: int) -> str:
        """The open pixel of this touch's message: /o/TOKEN."""
        return f"{self.base_url}/o/{self.tokens.make_open(touch_id)}"

    def click_url(self, touch_id: int, target: str) -> str:
        """The tracked link to `target` in the message of this touch: /c/TOKEN."""
        return f"{self.base_url}/c/{self.tokens.make_click(touch_id, target)}"

    @cached_property
    def home_country(self) -> str | None:
        """Letters to this country get no country line."""
        config = self.loaded.campaigns
        given = config.letters.home_country or config.sender.postal_address.rpartition(",")[2]
        return postal.country_code(given)

    def letter(
        self, view: LeadView, campaign: Campaign, step: Step, now: datetime, touch_id: int | None = None
    ) -> ComposedLetter:
        """Raises jinja2.TemplateError when the template cannot render for this lead.
        `touch_id`: the touch it is for (its file's name); None for a preview."""
        config = self.loaded.campaigns
        step = variants.for_lead(step, view.email, campaign)
        ctx, _url, _token = self.context(view, campaign, step, now)
        ctx["personal_url"] = self.personal_url_for(campaign, step, touch_id or 0)
        body = self.loaded.renderer.letter_html(step, ctx)
        country = postal.country_code(view.country)
        chosen = campaign.letter_format or config.letters.format
        frame = letters.FRAMES[postal.paper_format(country) if chosen == "auto" else chosen]
        address = postal.address_lines(view, self.home_country)
        parts = letters.LetterParts(
            address,
            config.letters.return_address or self.sender(view, campaign).postal_address,
            letter_date(view, now, letters.document_lang(body), str(ctx["locale"])),
        )
        return ComposedLetter(
            letters.frame_letter(body, frame, parts),
            frame.name,
            address,
            f"{country or '~'}:{view.postal_code.replace(' ', '').upper()}",
            touch_name(touch_id, campaign.name, step.id, view.email)
            if touch_id is not None
            else safe_name(campaign.name, step.id, view.email),
        )

    def call_notes(self, view: LeadView, campaign: Campaign, step: Step, now: datetime) -> str:
        step = variants.for_lead(step, view.email, campaign)
        ctx, _url, _token = self.context(view, campaign, step, now)
        return self.loaded.renderer.call_notes(step, ctx)
