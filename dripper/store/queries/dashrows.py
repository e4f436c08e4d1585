"""Queries the dashboard of `dripper serve` reads (see `dripper.dashboard`). Each one is
bounded: it reads through an index or stops at a LIMIT, so a page costs the same with a
thousand leads or a million (the funnel counts of `report.funnel` excepted)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, case, func, literal, select, text
from sqlalchemy.sql import ColumnElement

from dripper.leads.records import Lead
from dripper.states import TouchState
from dripper.store.queries.touchrows import ROW
from dripper.store.tables import UTCDateTime, calls, events, leads, touches

# Collations under which PostgreSQL orders text by code point, as SQLite's BINARY does: a
# prefix is then a range of the unique index on leads.email.
_CODE_POINT_ORDER = {"C", "POSIX", "C.UTF-8", "C.utf8"}


def _window(start: datetime, end: datetime) -> ColumnElement[bool]:
    # The partial index of planned touches serves this (see tables.py).
    return and_(touches.c.state == TouchState.PLANNED, touches.c.due_at > start, touches.c.due_at < end)


def planned_by_day(conn: Connection, bounds: Sequence[datetime]) -> list[tuple[str, str, str, int, int]]:
    """The planned touches (each lead's next touch) due after bounds[0] and before
    bounds[-1], counted per (campaign, step, channel, day): day i is [bounds[i], bounds[i+1]).
    One aggregate; the day is found by a CASE on the bounds, so local days need no SQL
    time zone support."""
    day = case(*((touches.c.due_at < bound, i) for i, bound in enumerate(bounds[1:])), else_=len(bounds) - 1)
    query = (
        select(touches.c.campaign, touches.c.step_id, touches.c.channel, day.label("day"), func.count())
        .where(_window(bounds[0], bounds[-1]))
        .group_by(touches.c.campaign, touches.c.step_id, touches.c.channel, day)
    )
    return [(c, s, ch, d, n) for c, s, ch, d, n in conn.execute(query)]


def later_candidates(
    conn: Connection, start: datetime, end: datetime, cutoffs: Mapping[tuple[str, str], datetime]
) -> list[int]:
    """The leads whose touch due in the window is the pending one of their current track
    (campaign, step) and who entered the stage before that step's cutoff: only they can
    have a later step of the track due in the window too (see `dashboard.later_cutoffs`)."""
    if not cutoffs:
        return []
    cutoff = case(
        *(
            (and_(touches.c.campaign == c, touches.c.step_id == s), literal(at, UTCDateTime()))
            for (c, s), at in cutoffs.items()
        ),
        else_=None,
    )
    query = (
        select(touches.c.lead_id)
        .distinct()
        .join(leads, leads.c.id == touches.c.lead_id)
        .where(
            _window(start, end),
            touches.c.campaign == leads.c.campaign,
            touches.c.stage == leads.c.stage,
            leads.c.stage_entered_at < cutoff,
        )
        .order_by(touches.c.lead_id)
    )
    return list(conn.scalars(query))


def touches_of(conn: Connection, lead_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Every touch row of these leads (their tracks' rows: a handful each), by lead."""
    out: dict[int, list[dict[str, Any]]] = {lead_id: [] for lead_id in lead_ids}
    if lead_ids:
        query = select(*ROW).where(touches.c.lead_id.in_(list(lead_ids))).order_by(touches.c.due_at, touches.c.id)
        for row in conn.execute(query):
            out[row.lead_id].append(dict(row._mapping))
    return out


def recent_events(conn: Connection, kinds: Iterable[str], limit: int) -> list[RowMapping]:
    """The last `limit` events of these kinds recorded for a lead, newest first, with the
    lead's name. "Last recorded" (the primary key, read backwards) rather than the latest
    `at`: events carry no index on `at` alone, and this stops after `limit` rows."""
    query = (
        select(
            events.c.id,
            events.c.lead_id,
            events.c.kind,
            events.c.at,
            events.c.source,
            events.c.detail,
            leads.c.email,
            leads.c.first_name,
            leads.c.last_name,
            leads.c.company,
        )
        .join(leads, leads.c.id == events.c.lead_id)
        .where(events.c.kind.in_(list(kinds)))
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    return [row._mapping for row in conn.execute(query)]


def inbound_to_review(conn: Connection, limit: int) -> list[RowMapping]:
    """The last `limit` inbound messages that changed no lead (event `unknown`, no lead):
    strangers, unverified claims, messages that could not be read. Newest first."""
    query = (
        select(events.c.id, events.c.at, events.c.detail)
        .where(events.c.kind == "unknown", events.c.lead_id.is_(None), events.c.source == "inbound")
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    return [row._mapping for row in conn.execute(query)]


def touch_steps(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """touch id -> (campaign, step id), for the touches events answer."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(touches.c.id, touches.c.campaign, touches.c.step_id).where(touches.c.id.in_(wanted))
    return {row.id: (row.campaign, row.step_id) for row in conn.execute(query)}


def _code_point_order(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return True  # SQLite compares with BINARY unless told otherwise, and leads.email is not
    if (conn.dialect.server_version_info or (0,)) < (15,):  # no datlocprovider: libc collations only
        return (
            conn.scalar(text("SELECT datcollate FROM pg_database WHERE datname = current_database()"))
            in _CODE_POINT_ORDER
        )
    row = conn.execute(
        text("SELECT datcollate, datlocprovider FROM pg_database WHERE datname = current_database()")
    ).first()
    # libc: as datcollate says; builtin (PostgreSQL 17): code point order; ICU: never.
    return row is not None and (
        row.datlocprovider == "b" or (row.datlocprovider == "c" and row.datcollate in _CODE_POINT_ORDER)
    )


def _successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix` (code point order)."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < 0x10FFFF:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


def search_leads(conn: Connection, query: str, limit: int) -> list[Lead]:
    """Leads whose e-mail starts with `query` (a range of the unique index on leads.email;
    e-mails are stored lower-case), then, unless it has an @, those whose name or company
    contains it (a scan that stops at `limit`), at most `limit` in all."""
    needle = query.strip().lower()
    if not needle:
        return []
    prefix = select(leads).where(func.substr(leads.c.email, 1, len(needle)) == needle)
    if _code_point_order(conn):
        # The range is what the index serves; the substr test keeps the answer exact.
        prefix = prefix.where(leads.c.email >= needle)
        if (upper := _successor(needle)) is not None:
            prefix = prefix.where(leads.c.email < upper)
    found = [Lead.stored(row._mapping) for row in conn.execute(prefix.order_by(leads.c.email).limit(limit))]
    if len(found) < limit and "@" not in needle:  # an address is looked up by the index alone; a name is scanned for
        name = func.lower(leads.c.first_name + " " + leads.c.last_name)
        others = (
            select(leads)
            .where(
                name.contains(needle, autoescape=True) | func.lower(leads.c.company).contains(needle, autoescape=True)
            )
            .order_by(leads.c.id)
            .limit(limit)
        )
        seen = {lead.id for lead in found}
        for row in conn.execute(others):
            if row.id not in seen and len(found) < limit:
                found.append(Lead.stored(row._mapping))
    return found


def latest_leads(conn: Connection, limit: int) -> list[Lead]:
    """The leads added last (the primary key, read backwards)."""
    return [Lead.stored(row._mapping) for row in conn.execute(select(leads).order_by(leads.c.id.desc()).limit(limit))]


def leads_by_stage(conn: Connection) -> dict[str, int]:
    query = select(leads.c.stage, func.count()).group_by(leads.c.stage)
    return {row[0]: row[1] for row in conn.execute(query)}


def calls_by_day_owner(conn: Connection, day: str | None = None, owner: str | None = None) -> list[RowMapping]:
    """(day, owner, open, done) for the call tasks, by day and owner."""
    is_open = case((calls.c.outcome.is_(None), 1), else_=0)
    query = (
        select(
            calls.c.day,
            calls.c.owner,
            func.sum(is_open).label("open"),
            (func.count() - func.sum(is_open)).label("done"),
        )
        .group_by(calls.c.day, calls.c.owner)
        .order_by(calls.c.day, calls.c.owner)
    )
    if day is not None:
        query = query.where(calls.c.day == day)
    if owner is not None:
        query = query.where(calls.c.owner == owner)
    return [row._mapping for row in conn.execute(query)]


__all__ = [
    "calls_by_day_owner",
    "later_candidates",
    "latest_leads",
    "leads_by_stage",
    "planned_by_day",
    "recent_events",
    "search_leads",
    "touch_steps",
    "touches_of",
]
