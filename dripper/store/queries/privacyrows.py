"""What lead management and privacy read and write (dripper/leads/actions.py,
dripper/leads/retention.py): listing leads, everything held about one, erasing a lead's
personal data, and purging old events and message text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, null, select, update

from dripper.leads.records import Lead
from dripper.states import EventKind, TouchState
from dripper.store.tables import calls, clicks, events, leads, letters, opens, touches

# The tables that hold rows about one lead, in the order an export lists them.
Rows = list[dict[str, Any]]


def page(conn: Connection, *, campaign: str | None, stage: str | None, after: int, limit: int) -> list[Lead]:
    """Leads in id order after id `after`, of this campaign and stage when given."""
    query = select(leads).where(leads.c.id > after)
    if campaign:
        query = query.where(leads.c.campaign == campaign)
    if stage:
        query = query.where(leads.c.stage == stage)
    return [Lead.stored(row._mapping) for row in conn.execute(query.order_by(leads.c.id).limit(limit))]


def _rows(conn: Connection, query: Any) -> Rows:
    return [dict(row._mapping) for row in conn.execute(query)]


def held_about(conn: Connection, lead_id: int) -> Mapping[str, Rows]:
    """Every row about the lead, by table: what an access request is answered with."""
    return {
        "touches": _rows(conn, select(touches).where(touches.c.lead_id == lead_id).order_by(touches.c.id)),
        "events": _rows(conn, select(events).where(events.c.lead_id == lead_id).order_by(events.c.at, events.c.id)),
        "clicks": _rows(conn, select(clicks).where(clicks.c.lead_id == lead_id).order_by(clicks.c.id)),
        "opens": _rows(conn, select(opens).where(opens.c.lead_id == lead_id).order_by(opens.c.touch_id)),
        "calls": _rows(conn, select(calls).where(calls.c.lead_id == lead_id).order_by(calls.c.touch_id)),
        "letters": _rows(
            conn,
            select(letters)
            .join(touches, touches.c.id == letters.c.touch_id)
            .where(touches.c.lead_id == lead_id)
            .order_by(letters.c.touch_id),
        ),
    }


def _redact(text: str, email: str, placeholder: str) -> str:
    return re.sub(re.escape(email), placeholder, text, flags=re.IGNORECASE)


def erase(conn: Connection, lead_id: int, email: str, placeholder: str, at: datetime) -> None:
    """Blank the lead's personal data and keep its bookkeeping (stage, campaign, states,
    times), so every count the report makes stays what it was.

    Inbound events lose their detail (the sender's address, the subject) and Message-ID;
    other events keep theirs (stage names, campaigns: no personal data), but a call's note.
    Touches' detail text (an SMTP answer may quote the address) has the address replaced
    by the placeholder, the rest kept: the report groups reasons by it; clicks lose their
    user agent; calls their notes and talking points; letters the recipient block."""
    conn.execute(
        update(leads)
        .where(leads.c.id == lead_id)
        .values(
            email=placeholder,
            first_name="",
            last_name="",
            company="",
            timezone=None,
            address_line1="",
            address_line2="",
            city="",
            region="",
            postal_code="",
            country="",
            attrs={},
            language="",
            owner="",
            consent_source="",
            consent_at=None,
            updated_at=at,
        )
    )
    conn.execute(
        update(events)
        .where(events.c.lead_id == lead_id, events.c.source == "inbound")
        .values(detail=null(), message_id=None)
    )
    for event_id, detail in conn.execute(
        select(events.c.id, events.c.detail).where(events.c.lead_id == lead_id, events.c.kind == EventKind.CALLED)
    ):
        kept = {k: v for k, v in (detail or {}).items() if k != "note"}
        conn.execute(update(events).where(events.c.id == event_id).values(detail=kept))
    for touch_id, detail in conn.execute(
        select(touches.c.id, touches.c.detail).where(touches.c.lead_id == lead_id, touches.c.detail.is_not(None))
    ).all():
        redacted = _redact(detail, email, placeholder)
        if redacted != detail:
            conn.execute(update(touches).where(touches.c.id == touch_id).values(detail=redacted))
    conn.execute(update(clicks).where(clicks.c.lead_id == lead_id).values(user_agent=""))
    conn.execute(update(calls).where(calls.c.lead_id == lead_id).values(note=None, talking_points=""))
    touch_ids = select(touches.c.id).where(touches.c.lead_id == lead_id).scalar_subquery()
    conn.execute(update(letters).where(letters.c.touch_id.in_(touch_ids)).values(address=""))


def resume_held(conn: Connection, lead_id: int, at: datetime) -> int:
    """A lifted pause: the lead's planned touches held to a later date are due now (the
    tick then sends the latest and skips the others as `missed`, as after any hold)."""
    result = conn.execute(
        update(touches)
        .where(
            touches.c.lead_id == lead_id,
            touches.c.state == TouchState.PLANNED,
            touches.c.due_at > at,
            touches.c.reason.is_not(None),
        )
        .values(due_at=at, updated_at=at)
    )
    return result.rowcount or 0


def reopen(conn: Connection, lead_id: int, reason: str, at: datetime) -> int:
    """The lead's touches suppressed with `reason` become planned again (a lifted stop)."""
    result = conn.execute(
        update(touches)
        .where(touches.c.lead_id == lead_id, touches.c.state == TouchState.SUPPRESSED, touches.c.reason == reason)
        .values(state=TouchState.PLANNED, reason=None, detail=None, updated_at=at)
    )
    return result.rowcount or 0


def purge_events(conn: Connection, before: datetime) -> int:
    """Delete events older than `before` (clicks keep their row, without the event)."""
    result = conn.execute(delete(events).where(events.c.at < before))
    return result.rowcount or 0


def purge_bodies(conn: Connection, before: datetime) -> int:
    """Blank the text kept from messages older than `before`: inbound events' detail (the
    sender, the subject, what was quoted) and the detail text of touches last changed then."""
    blanked = (
        conn.execute(
            update(events)
            .where(events.c.source == "inbound", events.c.at < before, events.c.detail.is_not(None))
            .values(detail=null())
        ).rowcount
        or 0
    )
    blanked += (
        conn.execute(
            update(touches)
            .where(and_(touches.c.updated_at < before, touches.c.detail.is_not(None)))
            .values(detail=None)
        ).rowcount
        or 0
    )
    return blanked


__all__ = ["erase", "held_about", "page", "purge_bodies", "purge_events", "reopen", "resume_held"]
