"""MIME assembly of one e-mail touch (stdlib `email`, policy SMTP: CRLF, RFC 2047, folding)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from urllib.parse import quote

from dripper.campaigns import Sender
from dripper.render import LeadView, RenderedEmail, one_line


def message_id(lead_email: str, campaign: str, step_id: str, domain: str) -> str:
    """Derived from the touch key, so a resend after a crash carries the same Message-ID."""
    digest = hashlib.sha256(f"{lead_email}\0{campaign}\0{step_id}".encode()).hexdigest()[:32]
    return f"<{digest}.drip@{domain}>"


def list_unsubscribe(url: str, mailbox: str, token: str) -> str:
    return f"<{url}>, <mailto:{mailbox}?subject={quote('unsubscribe ' + token)}>"


def recipient(lead: LeadView) -> str | Address:
    name = one_line(lead.full_name)
    try:
        return Address(display_name=name, addr_spec=lead.email) if name else Address(addr_spec=lead.email)
    except (ValueError, IndexError):
        return lead.email


def build_email(sender: Sender, lead: LeadView, rendered: RenderedEmail, *, msgid: str, date: datetime,
                unsubscribe: str, extra_headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender.from_
    msg["To"] = recipient(lead)
    if sender.reply_to:
        msg["Reply-To"] = sender.reply_to
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msgid
    for name, value in (extra_headers or {}).items():
        msg[name] = one_line(value)
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # List-Unsubscribe must reach the mailbox provider exactly as written: plain ASCII,
    # never folded or encoded (RFC 8058). The generator would fold it, so it goes in raw.
    raw = (
        f"List-Unsubscribe: {unsubscribe}\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    ).encode("ascii")
    return raw + msg.as_bytes()
