"""Looking at a touch before leads do: a preview file opened in the browser, a test send
to a colleague's address, and the simulated timeline as a page with a picture per track.

Nothing here writes to the store. Previews and test sends carry *test tokens* in their
unsubscribe and preference links (see tokens.py): `dripper serve` answers them with "this
was a test message; nothing changed", so a click in a preview or a test e-mail never
unsubscribes the real lead it was rendered for.
"""

from __future__ import annotations

import os
import secrets
import sys
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from dripper.campaign import variants
from dripper.campaign.model import Campaign, Step
from dripper.campaign.templates import LeadView
from dripper.channels import registry
from dripper.channels.base import NotForStep, Preview, PreviewFile, PreviewRequest
from dripper.channels.calls.preview import call_page
from dripper.channels.compose import Composed, Composer, safe_name
from dripper.channels.email.preview import PREVIEW_NOTE, display_address, email_page
from dripper.channels.email.transports import Envelope, Transport
from dripper.leads.records import normalize_email
from dripper.pages import render
from dripper.reports import charts
from dripper.states import CHANNELS

PREVIEW_DIR = Path("previews")
TEST_HEADER = "X-Dripper-Test"
TEST_PREFIX = "[TEST] "

# Browsers that take over the terminal (webbrowser offers them when TERM is set): `preview
# --open` would then block until the user quits one, so they count as "no browser".
_CONSOLE_BROWSERS = frozenset({"www-browser", "links", "links2", "elinks", "lynx", "w3m"})

Opener = Callable[[str], bool]  # a file:// URI -> whether a browser took it


class PreviewComposer(Composer):
    """A Composer whose unsubscribe, preference and tracked links carry test tokens."""

    def context(self, view: LeadView, campaign: Campaign, step: Step, now: datetime) -> tuple[dict[str, Any], str, str]:
        token = self.tokens.make_test(view.id, campaign.name)
        url = f"{self.base_url}/u/{token}"
        ctx = self.loaded.renderer.context(view, campaign, step, url, now, f"{self.base_url}/p/{token}")
        return ctx, url, token

    def click_url(self, touch_id: int, target: str) -> str:
        # A test's tracked links redirect like the real ones and record nothing.
        return f"{self.base_url}/c/{self.tokens.make_test_click(touch_id, target)}"


# --- preview files ------------------------------------------------------------------------


def default_path(campaign: str, step: str, lead_email: str, suffix: str) -> Path:
    """previews/CAMPAIGN_STEP_LEAD.html (or .pdf): one file per touch, rewritten each time."""
    return PREVIEW_DIR / f"{safe_name(campaign, step, lead_email)}{suffix}"


def preview_suffix(step: Step) -> str:
    """What --open writes for a step: letters as printed (PDF), e-mails and calls as pages
    (each channel's part says)."""
    return registry.PARTS[step.channel].preview_suffix


def write_preview(
    composer: PreviewComposer,
    view: LeadView,
    campaign: Campaign,
    step: Step,
    now: datetime,
    target: Path,
    templates: Path,
) -> Path:
    """Write the touch to `target` as its channel's part shows it: an e-mail as its HTML
    part in a page with its headers above it, a call as its talking points, a letter as
    the printed PDF. Raises jinja2.TemplateError when the template cannot render for this
    lead."""
    from dripper.channels.letters.layout import write_atomic

    step = variants.for_lead(step, view.email, campaign)  # the lead's A/B variant, unless one was chosen
    request = PreviewRequest(composer, view, campaign, step, now, templates)
    return write_atomic(target, registry.PARTS[step.channel].preview_page(request))


def browser_opener(env: Mapping[str, str] | None = None, platform: str | None = None) -> Opener | None:
    """The system's web browser, or None when there is none to use: DRIPPER_NO_BROWSER set
    (tests set it), no display on a Unix desktop (a server, an SSH session, CI), or only a
    console browser that would take over the terminal."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("DRIPPER_NO_BROWSER", "").strip() not in ("", "0"):
        return None
    if platform not in ("darwin", "win32", "cygwin") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return None
    if Path(getattr(browser, "name", "") or "").name in _CONSOLE_BROWSERS:
        return None

    def open_uri(uri: str) -> bool:
        try:
            return bool(browser.open(uri))
        except (webbrowser.Error, OSError):
            return False

    return open_uri


def open_file(path: Path, opener: Opener | None) -> bool:
    """Hand the file to the browser; False when there is no browser or it refused."""
    return opener is not None and opener(path.resolve().as_uri())


# --- test sends ---------------------------------------------------------------------------


def test_address(value: str) -> str:
    """The address a test goes to; raises ValueError with a clear message when it is not one."""
    raw = value.strip()
    if "<" in raw or ">" in raw or " " in raw:
        raise ValueError(f"--to {value!r}: give the bare address, e.g. --to you@example.com")
    try:
        return normalize_email(raw)
    except ValueError:
        raise ValueError(f"--to {value!r} is not a valid e-mail address (e.g. --to you@example.com)") from None


def test_message_id(domain: str) -> str:
    """Random, never derived from the touch: a reply to a test can never match a real touch."""
    return f"<test.{secrets.token_hex(16)}.drip@{domain}>"


def compose_test(
    composer: PreviewComposer, view: LeadView, campaign: Campaign, step: Step, now: datetime, to: str
) -> Composed:
    """The touch rendered for `view`, as a test to `to`: subject "[TEST] …", an
    X-Dripper-Test header, its own Message-ID, test-token links, To and envelope = `to`.
    The envelope sender is the plain bounce mailbox (no VERP token: a bounce of a test
    names no touch). No Feedback-ID: complaints about tests stay out of the campaign's
    figures. Raises jinja2.TemplateError when the template cannot render for this lead."""
    sender = composer.sender(view, campaign)  # the identity the lead's owner chooses
    msgid = test_message_id(sender.domain)
    recipient = LeadView(email=to, stage=view.stage, campaign=view.campaign, timezone=view.timezone)
    data = composer.message(
        view,
        recipient,
        campaign,
        step,
        now,
        msgid=msgid,
        extra_headers={TEST_HEADER: "yes"},
        subject_prefix=TEST_PREFIX,
    )
    # Its own outbox file name: a test must never overwrite the real touch's .eml.
    name = f"test_{safe_name(campaign.name, step.id, to)}_{msgid[6:14]}"
    return Composed(sender.bounces, to, data, msgid, name)


async def send_test(composed: Composed, transport: Transport) -> str:
    """Hand the test to the transport: the outbox file written, or the SMTP server's reply.
    Raises transports.SendError when it did not go."""
    await transport.open()
    try:
        return await transport.send(Envelope(composed.mail_from, composed.recipient, composed.data, composed.name))
    finally:
        await transport.close()


def touch_preview(
    composer: Composer, view: LeadView, campaign: Campaign, step: Step, now: datetime, fmt: str, templates: Path
) -> Preview:
    """One touch as `dripper preview --format FMT` shows it (each channel's part says how):
    text to print, or the text a file is made from (`preview_file`). Raises NotForStep for
    a format the step's channel has not."""
    step = variants.for_lead(step, view.email, campaign)  # the lead's A/B variant, unless one was chosen
    request = PreviewRequest(composer, view, campaign, step, now, templates)
    return registry.PARTS[step.channel].preview(request, fmt)


def preview_file(step: Step, shown: Preview, templates: Path) -> PreviewFile:
    """The file a preview with a `file_suffix` stands for (a letter printed as PDF)."""
    return registry.PARTS[step.channel].preview_file(shown.text, templates)


def touch_text(composer: Composer, view: LeadView, campaign: Campaign, step: Step, now: datetime, fmt: str) -> str:
    """One touch as text in `fmt`: text, html or eml; for a letter's pdf, the page printed."""
    return touch_preview(composer, view, campaign, step, now, fmt, Path()).text


# --- the simulated timeline as a page -------------------------------------------------------


@dataclass(frozen=True)
class Track:
    campaign: str
    stage: str
    rows: Sequence[Mapping[str, Any]]  # simulate's rows for this track, in sending order


_COLOURS = {c: charts.PALETTE[i] for i, c in enumerate(CHANNELS)}  # a channel has one colour on every chart


def timeline_page(
    tracks: Sequence[Track], *, start: datetime, days: int, zone: str, local: Callable[[str], str], country: str = ""
) -> str:
    """A self-contained page (inline CSS and SVG; no script, font or file from a network):
    per track a picture of its touches on a day axis, coloured by channel, then the table
    of day, local date, step, channel, kind and subject. `local` turns a due instant (ISO)
    into the local date shown."""
    pages = []
    for track in tracks:
        title = f"{track.campaign} · {track.stage}"
        n = len(track.rows)
        marks = [(float(r["day"]), str(r["step"]), str(r["channel"])) for r in track.rows]
        picture = charts.timeline(
            marks, days, f"{title}: {n} touch{'es' if n != 1 else ''} in {days} days", colours=_COLOURS
        )
        pages.append((title, Markup(picture), [(r, local(r["date"])) for r in track.rows]))
    return render(
        "previews/timeline.html",
        start=start.isoformat(timespec="minutes"),
        where=f"{zone}, holidays of {country}" if country else zone,
        days=days,
        colours=_COLOURS,
        tracks=pages,
    )


__all__ = [
    "PREVIEW_DIR",
    "PREVIEW_NOTE",
    "TEST_HEADER",
    "TEST_PREFIX",
    "NotForStep",
    "Opener",
    "PreviewComposer",
    "Track",
    "browser_opener",
    "call_page",
    "compose_test",
    "default_path",
    "display_address",
    "email_page",
    "open_file",
    "preview_file",
    "preview_suffix",
    "send_test",
    "test_address",
    "test_message_id",
    "timeline_page",
    "touch_preview",
    "touch_text",
    "write_preview",
]
