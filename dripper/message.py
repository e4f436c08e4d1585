"""MIME assembly of one e-mail touch.

The stdlib's EmailMessage costs ~1.5 ms a message, most of it in its header registry
and generator. The shape of our messages is fixed (multipart/alternative, text then
HTML, UTF-8, quoted-printable), so we assemble it directly from the stdlib's
encoding primitives: `binascii.b2a_qp` (C) for bodies, `email.header.Header` for RFC 2047
words, `email.utils.formataddr` for addresses. Tests parse every produced message back
with the stdlib parser.
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
from datetime import datetime
from functools import lru_cache
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

from dripper.campaigns import Sender
from dripper.render import LeadView, RenderedEmail, one_line

CRLF = "\r\n"


def message_id(lead_email: str, campaign: str, step_id: str, domain: str) -> str:
    """Derived from the touch key, so a resend after a crash carries the same Message-ID."""
    digest = hashlib.sha256(f"{lead_email}\0{campaign}\0{step_id}".encode()).hexdigest()[:32]
    return f"<{digest}.drip@{domain}>"


def list_unsubscribe(url: str, mailbox: str, token: str) -> str:
    return f"<{url}>, <mailto:{mailbox}?subject={quote('unsubscribe ' + token)}>"


def header(name: str, value: str) -> str:
    """`Name: value`, RFC 2047-encoded and folded only when it must be."""
    value = one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= 998:
        return f"{name}: {value}"
    charset = "us-ascii" if value.isascii() else "utf-8"
    return f"{name}: " + Header(value, charset, header_name=name).encode(linesep=CRLF)


def address(display_name: str, addr: str) -> str:
    """An address header value; a non-ASCII name becomes an RFC 2047 word."""
    return formataddr((one_line(display_name), one_line(addr)), charset="utf-8")


@lru_cache(maxsize=64)  # the sender's own addresses: the same for every message
def _reformat(raw: str) -> str:
    name, addr = parseaddr(raw)
    return address(name, addr) if addr else one_line(raw)


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def build_email(sender: Sender, lead: LeadView, rendered: RenderedEmail, *, msgid: str, date: datetime,
                unsubscribe: str, extra_headers: dict[str, str] | None = None) -> bytes:
    # "=_" can never occur in quoted-printable text (it would be "=3D_"), so this
    # boundary cannot collide with any body.
    boundary = f"=_drip_{secrets.token_hex(12)}"
    lines = [
        # List-Unsubscribe must reach the mailbox provider exactly as written: plain
        # ASCII, never folded or encoded (RFC 8058).
        f"List-Unsubscribe: {one_line(unsubscribe)}",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        f"From: {_reformat(sender.from_)}",
        f"To: {address(lead.full_name, lead.email)}",
    ]
    if sender.reply_to:
        lines.append(f"Reply-To: {_reformat(sender.reply_to)}")
    lines += [
        header("Subject", rendered.subject),
        f"Date: {format_datetime(date)}",
        f"Message-ID: {one_line(msgid)}",
        "MIME-Version: 1.0",
    ]
    lines += [header(name, value) for name, value in (extra_headers or {}).items()]
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    head = (CRLF.join(lines) + CRLF + CRLF).encode("ascii")
    part = (f"--{boundary}{CRLF}Content-Type: text/%s; charset=\"utf-8\"{CRLF}"
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}")
    return b"".join((
        head,
        (part % "plain").encode("ascii"), _qp(rendered.text), CRLF.encode(),
        (part % "html").encode("ascii"), _qp(rendered.html), CRLF.encode(),
        f"--{boundary}--{CRLF}".encode("ascii"),
    ))
