"""Lead and event queries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.sql import ColumnElement

from dripper.leads.records import Lead
from dripper.store.queries import webhookrows
from dripper.store.tables import events, leads
from dripper.webhooks.events import announced as webhook_for

# A stored event row, by column name.
EventRow = Mapping[str, Any]

SUPPRESSION_COLUMNS = {
    "converted": "converted_at",
    "replied": "replied_at",
    "unsubscribed": "unsubscribed_at",
    "bounced": "bounced_at",
    "complained": "complained_at",
}


def _by_name(row: Row[Any]) -> EventRow:
    return cast(EventRow, row._mapping)


def _lead(row: Row[Any]) -> Lead:
    """The one place a lead row becomes the lead record every caller gets."""
    return Lead.stored(row._mapping)


def by_email(conn: Connection, email: str) -> Lead | None:
    row = conn.execute(select(leads).where(leads.c.email == email.strip().lower())).first()
    return _lead(row) if row else None


def by_id(conn: Connection, lead_id: int) -> Lead | None:
    row = conn.execute(select(leads).where(leads.c.id == lead_id)).first()
    return _lead(row) if row else None


def by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Lead]:
    if not ids:
        return {}
    return {row.id: _lead(row) for row in conn.execute(select(leads).where(leads.c.id.in_(list(ids))))}


def languages_by_campaign(conn: Connection) -> dict[str, set[str]]:
    """The languages leads name, per campaign ("" for a lead that names none)."""
    found: dict[str, set[str]] = {}
    for campaign, language in conn.execute(select(leads.c.campaign, leads.c.language).distinct()):
        found.setdefault(campaign, set()).add(language)
    return found


def set_fields(conn: Connection, lead_id: int, at: datetime, **values: Any) -> None:
    conn.execute(update(leads).where(leads.c.id == lead_id).values(**values, updated_at=at))


def set_stage(conn: Connection, lead_id: int, stage: str, at: datetime) -> None:
    set_fields(conn, lead_id, at, stage=stage, stage_entered_at=at)


def set_flag(conn: Connection, lead_id: int, kind: str, at: datetime) -> None:
    column = SUPPRESSION_COLUMNS[kind]
    conn.execute(
        update(leads).where(leads.c.id == lead_id, leads.c[column].is_(None)).values({column: at, "updated_at": at})
    )


def matching(conn: Connection, which: ColumnElement[bool], chunk: int = 5000) -> Iterator[list[Lead]]:
    """The leads `which` selects, whole rows in id order, a chunk at a time (memory stays flat)."""
    last = 0
    while True:
        rows = conn.execute(select(leads).where(which, leads.c.id > last).order_by(leads.c.id).limit(chunk)).all()
        if not rows:
            return
        yield [_lead(row) for row in rows]
        last = rows[-1].id


def record_event(
    conn: Connection,
    lead_id: int | None,
    kind: str,
    at: datetime,
    source: str,
    detail: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> None:
    conn.execute(
        insert(events).values(lead_id=lead_id, kind=kind, at=at, source=source, detail=detail, message_id=message_id)
    )
    announced = webhook_for(kind, detail)
    if announced is not None:  # in this transaction: the event and its webhooks, or neither
        webhookrows.enqueue_event(conn, announced, lead_id, at, {"at": at, "source": source, "detail": detail or {}})


def event_for_message(conn: Connection, message_id: str) -> EventRow | None:
    row = conn.execute(select(events).where(events.c.message_id == message_id)).first()
    return _by_name(row) if row else None


def count_events(conn: Connection, lead_id: int, kind: str, since: datetime) -> int:
    from sqlalchemy import func

    return (
        conn.scalar(
            select(func.count()).where(events.c.lead_id == lead_id, events.c.kind == kind, events.c.at >= since)
        )
        or 0
    )


def events_of(conn: Connection, lead_ids: Sequence[int], kinds: Sequence[str]) -> dict[int, list[EventRow]]:
    """The events of these kinds of each of these leads, oldest first (kind, at, detail):
    what step conditions read (`when: call_outcome('call-1') == 'call_back'`)."""
    out: dict[int, list[EventRow]] = {lead_id: [] for lead_id in lead_ids}
    query = (
        select(events.c.lead_id, events.c.kind, events.c.at, events.c.detail)
        .where(events.c.lead_id.in_(list(lead_ids)), events.c.kind.in_(list(kinds)))
        .order_by(events.c.lead_id, events.c.at, events.c.id)
    )
    for row in conn.execute(query):
        out[row.lead_id].append(cast(EventRow, row._mapping))
    return out


def events_for(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    query = select(events).where(events.c.lead_id == lead_id).order_by(events.c.at, events.c.id)
    return [dict(r._mapping) for r in conn.execute(query)]
