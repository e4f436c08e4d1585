"""MIME assembly of one e-mail touch.

The stdlib's EmailMessage is slow (docs/performance.md), mostly in its header registry
and generator. The shape of our messages is fixed (multipart/alternative, text then
HTML, UTF-8, quoted-printable), so we assemble it directly from the stdlib's
encoding primitives: `binascii.b2a_qp` (C) for bodies, `email.header.Header` for RFC 2047
words, `email.utils.formataddr` for addresses. Tests parse every produced message back
with the stdlib parser.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from datetime import datetime
from email.charset import Charset
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from urllib.parse import quote

from dripper.campaign.model import Sender
from dripper.campaign.templates import LeadView, RenderedEmail
from dripper.leads.records import one_line

CRLF = "\r\n"


def legacy_message_id(lead_email: str, campaign: str, step_id: str, domain: str) -> str:
    """The Message-ID versions before 0.2 gave a touch: a hash of the touch key alone, which
    anyone can compute. Inbound mail that names only such an ID proves nothing."""
    digest = hashlib.sha256(f"{lead_email}\0{campaign}\0{step_id}".encode()).hexdigest()[:32]
    return f"<{digest}.drip@{domain}>"


def list_unsubscribe(url: str, mailbox: str, token: str) -> str:
    return f"<{url}>, <mailto:{mailbox}?subject={quote('unsubscribe ' + token)}>"


MAX_NAME = 200  # a display name longer than this is not a name; keep headers sane


def _encoded(value: str, name: str) -> str:
    """RFC 2047 words of at most 75 characters, folded onto lines of their own."""
    return Header(value, "utf-8", header_name=name).encode(linesep=CRLF)


def header(name: str, value: str) -> str:
    """`Name: value`: as it is when it is short ASCII, else RFC 2047-encoded and folded
    (encoded words can be split anywhere, so no line exceeds 998 octets)."""
    value = one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    if value.isascii() and max(map(len, value.split(" "))) < 900:
        return f"{name}: " + Header(value, "us-ascii", header_name=name).encode(linesep=CRLF)
    return f"{name}: {_encoded(value, name)}"


_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")


def _runs(name: str) -> list[tuple[str, bool]]:
    """The name's words in runs: (text, True) for a run of words that need encoding, kept
    together with the spaces between them; (word, False) for a plain atom."""
    runs: list[tuple[str, bool]] = []
    for word in name.split():
        plain = bool(_ATEXT.match(word))
        if not plain and runs and runs[-1][1]:
            runs[-1] = (f"{runs[-1][0]} {word}", True)
        else:
            runs.append((word, not plain))
    return runs


ENCODED_WORD_MAX = 75  # RFC 2047, 2: the longest an encoded word may be
_UTF8 = Charset("utf-8")


def _encoded_run(text: str, header_name: str) -> str:
    """A run of words as few encoded words as the length limit allows, the spaces between
    the words inside them: a decoder drops the white space between adjacent encoded words
    (RFC 2047, 6.2), so a space left between two would vanish. Where the limit forces a
    split, it comes after a word's trailing space, never inside a word when the words fit
    (a parser that wrongly keeps the folding white space, as Python's headerregistry does
    in display names, then shows two spaces there, not a space inside a word)."""
    chunks: list[str] = []
    for word in text.split(" "):
        if chunks and len(_UTF8.header_encode(f"{chunks[-1]} {word} ")) <= ENCODED_WORD_MAX:
            chunks[-1] = f"{chunks[-1]} {word}"
        else:
            if chunks:
                chunks[-1] += " "
            chunks.append(word)
    # A chunk that fits is one encoded word; a single word too long for one is split by
    # Header wherever it must be (within the word: nothing else can be done).
    return (CRLF + " ").join(
        _UTF8.header_encode(chunk)
        if len(_UTF8.header_encode(chunk)) <= ENCODED_WORD_MAX
        else _encoded(chunk, header_name)
        for chunk in chunks
    )


def _phrase(name: str, header_name: str) -> str:
    """A display name as a phrase of atoms and RFC 2047 encoded words, folded so lines stay
    near 78 characters. Words that need encoding are never encoded one by one: a run of
    them is encoded whole (`_encoded_run`). Between an atom and an encoded word the space
    is an ordinary one, and shows."""
    out, width = "", len(header_name) + 2
    for text, encode in _runs(name):
        token = _encoded_run(text, header_name) if encode else text
        first, last = token.split(CRLF, 1)[0], token.rsplit(CRLF, 1)[-1]
        if out and width + 1 + len(first) > 78:
            out, width = out + CRLF + " " + token, 1 + len(first)
        else:
            out, width = out + (" " if out else "") + token, width + (1 if out else 0) + len(first)
        if CRLF in token:  # the token folded itself: the line now ends with its last piece
            width = len(last)
    return out


def address(display_name: str, addr: str, header_name: str = "To") -> str:
    """An address header value; a non-ASCII name becomes RFC 2047 words. Names are cut
    at MAX_NAME characters: nothing longer is a name, and it keeps lines within limits."""
    name = one_line(display_name)[:MAX_NAME].strip()
    addr = one_line(addr)
    if name and not name.isascii():
        phrase = _phrase(name, header_name)
        last = phrase.rsplit(CRLF, 1)[-1] if CRLF in phrase else f"{header_name}: {phrase}"
        space = CRLF + " " if len(last) + 3 + len(addr) > 78 else " "  # fold before the address
        return f"{phrase}{space}<{addr}>"
    return formataddr((name, addr))


@lru_cache(maxsize=64)  # the sender's own addresses: the same for every message
def _reformat(raw: str) -> str:
    name, addr = parseaddr(raw)
    return address(name, addr) if addr else one_line(raw)


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def build_email(
    sender: Sender,
    lead: LeadView,
    rendered: RenderedEmail,
    *,
    msgid: str,
    date: datetime,
    unsubscribe: str,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
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
    part = (
        f'--{boundary}{CRLF}Content-Type: text/%s; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
    )
    return b"".join(
        (
            head,
            (part % "plain").encode("ascii"),
            _qp(rendered.text),
            CRLF.encode(),
            (part % "html").encode("ascii"),
            _qp(rendered.html),
            CRLF.encode(),
            f"--{boundary}--{CRLF}".encode("ascii"),
        )
    )
