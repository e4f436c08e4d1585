"""Lead and event queries."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, update

from dripper.leads import LEAD_FIELDS, Lead
from dripper.store.tables import events, leads

SUPPRESSION_COLUMNS = {
    "converted": "converted_at",
    "replied": "replied_at",
    "unsubscribed": "unsubscribed_at",
    "bounced": "bounced_at",
    "complained": "complained_at",
}


def by_email(conn: Connection, email: str) -> RowMapping | None:
    row = conn.execute(select(leads).where(leads.c.email == email.strip().lower())).first()
    return row._mapping if row else None


def by_id(conn: Connection, lead_id: int) -> RowMapping | None:
    row = conn.execute(select(leads).where(leads.c.id == lead_id)).first()
    return row._mapping if row else None


def by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, RowMapping]:
    if not ids:
        return {}
    return {row.id: row._mapping for row in conn.execute(select(leads).where(leads.c.id.in_(list(ids))))}


def existing(conn: Connection, emails: Sequence[str]) -> dict[str, RowMapping]:
    out: dict[str, RowMapping] = {}
    for i in range(0, len(emails), 500):
        chunk = list(emails[i : i + 500])
        for row in conn.execute(select(leads).where(leads.c.email.in_(chunk))):
            out[row.email] = row._mapping
    return out


def _values(lead: Lead) -> dict[str, Any]:
    data = asdict(lead)
    return {name: data[name] for name in LEAD_FIELDS} | {"attrs": dict(lead.attrs)}


def insert_many(conn: Connection, new: Sequence[Lead], at: datetime) -> dict[str, int]:
    """Insert new leads entering their stage at `at`; returns e-mail -> id."""
    if not new:
        return {}
    rows = [_values(lead) | {"stage_entered_at": at, "created_at": at, "updated_at": at} for lead in new]
    conn.execute(insert(leads), rows)
    return {row.email: row.id for row in conn.execute(select(leads.c.email, leads.c.id).where(leads.c.email.in_([l.email for l in new])))}


def update_many(conn: Connection, changed: Sequence[tuple[int, Lead, bool]], at: datetime) -> None:
    """Update leads' fields; those flagged True entered their (new) stage at `at`."""
    plain = [_values(lead) | {"_id": lead_id, "updated_at": at} for lead_id, lead, moved in changed if not moved]
    moved = [_values(lead) | {"_id": lead_id, "updated_at": at, "stage_entered_at": at} for lead_id, lead, m in changed if m]
    base = update(leads).where(leads.c.id == bindparam("_id"))
    if plain:
        conn.execute(base.values({k: bindparam(k) for k in plain[0] if k != "_id"}), plain)
    if moved:
        conn.execute(base.values({k: bindparam(k) for k in moved[0] if k != "_id"}), moved)


def set_fields(conn: Connection, lead_id: int, at: datetime, **values: Any) -> None:
    conn.execute(update(leads).where(leads.c.id == lead_id).values(**values, updated_at=at))


def set_stage(conn: Connection, lead_id: int, stage: str, at: datetime) -> None:
    set_fields(conn, lead_id, at, stage=stage, stage_entered_at=at)


def set_flag(conn: Connection, lead_id: int, kind: str, at: datetime) -> None:
    column = SUPPRESSION_COLUMNS[kind]
    conn.execute(
        update(leads).where(leads.c.id == lead_id, leads.c[column].is_(None)).values({column: at, "updated_at": at})
    )


def in_campaign(conn: Connection, campaign: str, chunk: int = 2000) -> Iterator[list[RowMapping]]:
    """Every lead of a campaign, in id order, a chunk at a time (memory stays flat)."""
    last = 0
    while True:
        rows = conn.execute(
            select(leads).where(leads.c.campaign == campaign, leads.c.id > last).order_by(leads.c.id).limit(chunk)
        ).all()
        if not rows:
            return
        yield [row._mapping for row in rows]
        last = rows[-1].id


def record_event(conn: Connection, lead_id: int | None, kind: str, at: datetime, source: str,
                 detail: dict[str, Any] | None = None, message_id: str | None = None) -> None:
    conn.execute(insert(events).values(lead_id=lead_id, kind=kind, at=at, source=source, detail=detail,
                                       message_id=message_id))


def event_for_message(conn: Connection, message_id: str) -> RowMapping | None:
    row = conn.execute(select(events).where(events.c.message_id == message_id)).first()
    return row._mapping if row else None


def count_events(conn: Connection, lead_id: int, kind: str, since: datetime) -> int:
    from sqlalchemy import func

    return conn.scalar(select(func.count()).where(events.c.lead_id == lead_id, events.c.kind == kind,
                                                  events.c.at >= since)) or 0


def events_for(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    query = select(events).where(events.c.lead_id == lead_id).order_by(events.c.at, events.c.id)
    return [dict(r._mapping) for r in conn.execute(query)]
