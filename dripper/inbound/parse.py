"""Reading one inbound message within limits, so that no message can stop the mailbox.

Anyone can write to the mailbox, and the stdlib parser recurses once per nested part: a
message with 3,000 nested multiparts raises RecursionError, and one with 200,000 parts
takes seconds to parse and many more to classify. Every limit below is checked before
the costly step it protects:

- the raw size, before anything is parsed;
- how many parts and containers the raw text can hold at most (lines that may open a
  part, `Content-Type: multipart/…` and `message/…` headers), counted in one linear scan,
  before the recursive parser runs;
- the exact part count and nesting depth, walked without recursion, before the
  classifier (which walks recursively) runs;
- how much text the classifier reads: attachments are dropped and text parts cut, so
  its regular expressions and flufl.bounce's detectors (about 0.6 s per MB) stay bounded.

A message over a limit is `Unreadable`, with the reason: it is recorded as `unknown` and
an IMAP poll moves it to the quarantine folder; the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser

MAX_BYTES = 25 * 1024 * 1024  # the usual mailbox limit; our own messages are ~50 KB
MAX_PART_LINES = 2_000  # lines starting with "--": every part starts with one
MAX_CONTAINERS = 100  # multipart/* and message/* headers: each can nest one level deeper
MAX_PARTS = 1_000
MAX_DEPTH = 40  # real mail nests a handful of levels; the classifier recurses per level
TEXT_BUDGET = 2 * 1024 * 1024  # characters of text parts kept for classification, in all
TEXT_PART_LIMIT = 512 * 1024  # characters kept of any one text part

_CONTAINER = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE)
_PART_LINE = re.compile(rb"^--", re.MULTILINE)
# What the classifier reads besides text: delivery reports, feedback reports, and the
# headers of the message we sent.
_KEPT_LEAVES = frozenset({"message/delivery-status", "message/feedback-report", "text/rfc822-headers"})


@dataclass(frozen=True)
class Parsed:
    message: Message
    key: str  # the idempotency key: the Message-ID, else a hash of the bytes
    trimmed: bool  # attachments or long text were left out of what the classifier reads


@dataclass(frozen=True)
class Unreadable:
    """A message not parsed because it is over a limit (or broken beyond reading)."""

    headers: Message  # the top-level headers alone, for the record (From, Subject, Message-ID)
    key: str
    reason: str


def message_key(raw: bytes, message: Message) -> str:
    """The Message-ID, or a content hash for messages without one: the idempotency key."""
    value = str(message.get("Message-ID") or "").strip()[:300]
    return value or f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@dripper.ingest>"


def headers_only(raw: bytes) -> Message:
    """The top-level header block: cheap and not recursive, whatever follows it."""
    head = raw[: 256 * 1024]  # a header block longer than this is not mail
    return BytesHeaderParser(policy=policy.compat32).parsebytes(head)


def read(raw: bytes) -> Parsed | Unreadable:
    headers = headers_only(raw)
    key = message_key(raw, headers)
    problem = _raw_problem(raw)
    if problem is None:
        try:
            message = message_from_bytes(raw, policy=policy.compat32)
        except (RecursionError, MemoryError, ValueError, LookupError) as exc:
            problem = f"cannot be parsed: {type(exc).__name__}"
        else:
            problem = _structure_problem(message)
            if problem is None:
                return Parsed(message, key, _trim(message))
    return Unreadable(headers, key, problem)


def _raw_problem(raw: bytes) -> str | None:
    if len(raw) > MAX_BYTES:
        return f"larger than {MAX_BYTES // (1024 * 1024)} MiB ({len(raw):,} bytes)"
    if (containers := len(_CONTAINER.findall(raw))) > MAX_CONTAINERS:
        return f"too deeply nested: {containers:,} multipart or message parts (at most {MAX_CONTAINERS})"
    if (lines := len(_PART_LINE.findall(raw))) > MAX_PART_LINES:
        return f"too many parts: {lines:,} lines could open a part (at most {MAX_PART_LINES:,})"
    return None


def _structure_problem(message: Message) -> str | None:
    """Counts parts and depth with an explicit stack (the stdlib's walk() recurses)."""
    count, stack = 0, [(message, 0)]
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            return f"too many parts (more than {MAX_PARTS:,})"
        if depth > MAX_DEPTH:
            return f"too deeply nested (more than {MAX_DEPTH} levels)"
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
    return None


def _trim(message: Message) -> bool:
    """Leave out what the classifier never needs (attachments) and cut long text, within
    TEXT_BUDGET in all; True if anything was left out."""
    budget, trimmed = TEXT_BUDGET, False
    for part in message.walk():  # depth is bounded by now
        payload = part.get_payload()
        if isinstance(payload, list) or not isinstance(payload, str):
            continue
        content_type = part.get_content_type()
        if not (content_type.startswith("text/") or content_type in _KEPT_LEAVES):
            if payload:
                part.set_payload("")
                trimmed = True
            continue
        keep = min(len(payload), TEXT_PART_LIMIT, budget)
        if keep < len(payload):
            # Cut at a line end: a quoted-printable or base64 body stays decodable.
            cut = payload.rfind("\n", 0, keep)
            part.set_payload(payload[: cut + 1 if cut > 0 else keep])
            trimmed = True
        budget -= keep
    return trimmed


__all__ = ["MAX_BYTES", "Parsed", "Unreadable", "headers_only", "message_key", "read"]
