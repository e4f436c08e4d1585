"""Which lead (and which touch) an inbound message is about, and whether it proves it.

Anyone can write to the mailbox, so a message changes a lead only when it carries proof
that it concerns mail we sent, something an outsider cannot compute:

- a VERP envelope address whose HMAC verifies (bounces come back to it);
- one of our Message-IDs (keyed with the secret) in In-Reply-To or References, or as the
  Message-ID of the original a report carries; for a bounce or complaint, the report must
  not name other recipients than the lead it was sent to;
- the signed token of our List-Unsubscribe mailto, in the Subject;
- a From address that a trusted receiving server authenticated (see authenticated.py).

Without proof the message is still matched as well as it can be (the recipient a report
names, the From address) so that a person can see whom it claims to be about; ingest
records it as `unknown` and never applies it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from dripper.channels.email.mime import legacy_message_id
from dripper.inbound.authenticated import authenticated_sender
from dripper.inbound.classify import Classification
from dripper.leads.records import Lead
from dripper.states import InboundKind
from dripper.store.queries import leadrows
from dripper.store.queries import touchrows as touch_q
from dripper.tokens import Tokens

_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,298}>")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")  # itsdangerous: payload.signature
MAX_REFERENCES = 50  # the newest Message-IDs of a thread looked up; a long References is not proof of more


class MatchedBy(StrEnum):
    """How a message was tied to its lead. The first four are proof; the last two are not."""

    VERP = "verp"
    """The envelope address of one touch, its HMAC verified: the message came back to it."""
    MESSAGE_ID = "in_reply_to"
    """One of our Message-IDs, keyed with the secret: the writer had our message."""
    UNSUBSCRIBE_TOKEN = "unsubscribe_token"
    """The signed token of our List-Unsubscribe mailto, in the Subject."""
    AUTHENTICATED_SENDER = "authenticated_sender"
    """The From address, authenticated by a trusted receiving server (DMARC, DKIM or SPF)."""
    REPORT_RECIPIENT = "report_recipient"
    """Not proof: the recipient a bounce or complaint names; anyone can write one."""
    SENDER = "sender"
    """Not proof: the From address, unauthenticated; anyone can write one."""

    @property
    def proves(self) -> bool:
        return self not in (MatchedBy.REPORT_RECIPIENT, MatchedBy.SENDER)


@dataclass(frozen=True)
class Match:
    lead: Lead | None  # the stored lead
    touch: Mapping[Any, Any] | None
    how: MatchedBy | None
    doubt: str = ""  # why a match is not proof (empty when it is)

    @property
    def verified(self) -> bool:
        return self.lead is not None and self.how is not None and self.how.proves and not self.doubt


NO_MATCH = Match(None, None, None)


def match(
    conn: Connection, message: Message, found: Classification, tokens: Tokens, trusted_servers: Sequence[str] = ()
) -> Match:
    """The best match: the first with proof, else the first without (for a person to see)."""
    doubtful: Match | None = None
    for attempt in (_by_verp, _by_message_id, _by_token):
        hit = attempt(conn, message, found, tokens)
        if hit is not None and hit.verified:
            return hit
        doubtful = doubtful or hit
    hit = _by_report_recipient(conn, found) or _by_sender(conn, message, found, trusted_servers)
    if hit is not None and hit.verified:
        return hit
    return doubtful or hit or NO_MATCH


def _with_lead(conn: Connection, touch: Mapping[str, Any] | None, how: MatchedBy) -> Match | None:
    if touch is None:
        return None
    lead = leadrows.by_id(conn, touch["lead_id"])
    return Match(lead, touch, how) if lead is not None else None


def _by_verp(conn: Connection, message: Message, found: Classification, tokens: Tokens) -> Match | None:
    # A report carries the message we sent (or its headers): its Return-Path is our VERP
    # address even when the report's own envelope is lost in forwarding.
    for source in (message, found.original):
        if source is None:
            continue
        for header in _ENVELOPE_HEADERS:
            for _, address in getaddresses([str(v) for v in source.get_all(header) or []]):
                touch_id = tokens.read_bounce_address(address)
                if touch_id is not None and (hit := _with_lead(conn, touch_q.by_id(conn, touch_id), MatchedBy.VERP)):
                    return hit
    return None


def _message_ids(message: Message, found: Classification) -> list[str]:
    """Our candidates, the most recent first: the original a report carries, then the
    thread's references from the newest back."""
    references = " ".join(str(message.get(h) or "") for h in ("In-Reply-To", "References"))
    found_ids = list(reversed(_MESSAGE_ID.findall(references)))[:MAX_REFERENCES]
    if found.original is not None:
        found_ids = _MESSAGE_ID.findall(str(found.original.get("Message-ID") or ""))[:1] + found_ids
    return list(dict.fromkeys(found_ids))


def _by_message_id(conn: Connection, message: Message, found: Classification, tokens: Tokens) -> Match | None:
    doubtful = None
    for message_id in _message_ids(message, found):
        hit = _with_lead(conn, touch_q.by_message_id(conn, message_id), MatchedBy.MESSAGE_ID)
        if hit is None:
            continue
        doubt = _message_id_doubt(hit, message_id, found)
        if not doubt:
            return hit
        doubtful = doubtful or Match(hit.lead, hit.touch, MatchedBy.MESSAGE_ID, doubt)
    return doubtful


def _message_id_doubt(hit: Match, message_id: str, found: Classification) -> str:
    assert hit.lead is not None and hit.touch is not None
    email = hit.lead.email
    domain = message_id.rpartition("@")[2].rstrip(">")
    if message_id == legacy_message_id(email, hit.touch["campaign"], hit.touch["step_id"], domain):
        return "it names a Message-ID of a version before keyed Message-IDs, which anyone can compute"
    if _is_report(found) and found.recipients and email not in found.recipients:
        return f"the report names our message to {email}, but about {', '.join(found.recipients[:3])}"
    return ""


_REPORTS = frozenset({InboundKind.BOUNCE_HARD, InboundKind.BOUNCE_SOFT, InboundKind.COMPLAINT})


def _is_report(found: Classification) -> bool:
    """A bounce or a feedback report (complaint or opt-out): about the recipients it names."""
    return found.kind in _REPORTS or bool(found.recipients)


def _by_token(conn: Connection, message: Message, found: Classification, tokens: Tokens) -> Match | None:
    """The List-Unsubscribe mailto's Subject, `unsubscribe TOKEN`: signed for one lead."""
    for candidate in _TOKEN.findall(str(message.get("Subject") or "")[:1000]):
        data = tokens.read(candidate)
        if data is not None and (lead := leadrows.by_id(conn, data.lead_id)) is not None:
            return Match(lead, None, MatchedBy.UNSUBSCRIBE_TOKEN)
    return None


def _by_report_recipient(conn: Connection, found: Classification) -> Match | None:
    for address in found.recipients[:20]:
        if (lead := leadrows.by_email(conn, address)) is not None:
            return Match(
                lead,
                None,
                MatchedBy.REPORT_RECIPIENT,
                f"a report naming {address} without our VERP address or one of our Message-IDs",
            )
    return None


def _by_sender(conn: Connection, message: Message, found: Classification, trusted: Sequence[str]) -> Match | None:
    if _is_report(found):  # its From is a machine's
        return None
    address = parseaddr(str(message.get("From") or ""))[1]
    if not address or (lead := leadrows.by_email(conn, address)) is None:
        return None
    if authenticated_sender(message, trusted) == lead.email:
        return Match(lead, None, MatchedBy.AUTHENTICATED_SENDER)
    why = (
        "no trusted receiving server authenticated its From address"
        if trusted
        else "its From address is unauthenticated (list your receiving server in inbound.trusted_authserv_ids)"
    )
    return Match(lead, None, MatchedBy.SENDER, f"from {address} but not a reply to our mail: {why}")


__all__ = ["NO_MATCH", "Match", "MatchedBy", "match"]
