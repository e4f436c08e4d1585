"""Which lead (and which touch) an inbound message is about. In order of certainty:
the VERP envelope address, In-Reply-To/References against the Message-IDs we sent, the
recipient a delivery report names, then the sender's own address."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any, Mapping

from sqlalchemy import Connection, select

from dripper.inbound.classify import Classification
from dripper.store import leadrows, touches
from dripper.tokens import Tokens

_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Match:
    lead: Mapping[str, Any] | None
    touch: Mapping[str, Any] | None
    how: str | None  # verp | in_reply_to | report_recipient | sender


def _touch(conn: Connection, **where: Any) -> Mapping[str, Any] | None:
    query = select(touches)
    for column, value in where.items():
        query = query.where(touches.c[column] == value)
    row = conn.execute(query.limit(1)).first()
    return row._mapping if row else None


def _with_lead(conn: Connection, touch: Mapping[str, Any] | None, how: str) -> Match | None:
    if touch is None:
        return None
    lead = leadrows.by_id(conn, touch["lead_id"])
    return Match(lead, touch, how) if lead is not None else None


def match(conn: Connection, message: Message, found: Classification, tokens: Tokens) -> Match:
    for header in _ENVELOPE_HEADERS:
        for _, address in getaddresses(message.get_all(header) or []):
            touch_id = tokens.read_bounce_address(address)
            if touch_id is not None and (hit := _with_lead(conn, _touch(conn, id=touch_id), "verp")):
                return hit
    references = " ".join(str(message.get(h) or "") for h in ("In-Reply-To", "References"))
    if found.original is not None:
        references += " " + str(found.original.get("Message-ID") or "")
    for message_id in reversed(_MESSAGE_ID.findall(references)):  # the most recent first
        if hit := _with_lead(conn, _touch(conn, message_id=message_id), "in_reply_to"):
            return hit
    for address in found.recipients:
        if (lead := leadrows.by_email(conn, address)) is not None:
            return Match(lead, None, "report_recipient")
    if not found.kind.startswith("bounce") and found.kind != "complaint":  # their From is a machine's
        address = parseaddr(message.get("From") or "")[1]
        if address and (lead := leadrows.by_email(conn, address)) is not None:
            return Match(lead, None, "sender")
    return Match(None, None, None)
