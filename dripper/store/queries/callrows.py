"""Queries for phone-call tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, select, update

from dripper.store import upsert
from dripper.store.tables import calls, leads, touches

# `call_back`: the lead asked to be called again (a step may follow it up: `when: call_outcome(…) == 'call_back'`).
OUTCOMES = ("reached", "voicemail", "no_answer", "call_back", "converted", "not_interested")
# The outcome of a task closed because the lead stopped (converted, unsubscribed, bounced...):
# nobody is to call, and the note is the stop's reason. Not one a caller records.
CANCELLED = "cancelled"


def add(conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Tasks for call touches that fell due (touch_id, lead_id, day, owner, talking_points);
    a task that exists already (a resend) is kept as it is."""
    if rows:
        conn.execute(upsert.insert(conn, calls).on_conflict_do_nothing(), [{**row, "created_at": now} for row in rows])


def listing(
    conn: Connection,
    day: str | None = None,
    owner: str | None = None,
    open_only: bool = False,
    lead_id: int | None = None,
    limit: int | None = None,
) -> list[Mapping[str, Any]]:
    """Call tasks with their touch and lead, by column name, in the order a call list has them."""
    query = (
        select(
            calls,
            touches.c.campaign,
            touches.c.step_id,
            touches.c.due_at,
            leads.c.email,
            leads.c.first_name,
            leads.c.last_name,
            leads.c.company,
            leads.c.attrs,
            leads.c.timezone,
        )
        .join(touches, touches.c.id == calls.c.touch_id)
        .join(leads, leads.c.id == calls.c.lead_id)
    )
    if day is not None:
        query = query.where(calls.c.day == day)
    if owner is not None:
        query = query.where(calls.c.owner == owner)
    if open_only:
        query = query.where(calls.c.outcome.is_(None))
    if lead_id is not None:
        query = query.where(calls.c.lead_id == lead_id)
    query = query.order_by(calls.c.day, calls.c.owner, touches.c.due_at, leads.c.email)
    rows = conn.execute(query if limit is None else query.limit(limit))
    return [cast(Mapping[str, Any], row._mapping) for row in rows]  # every key a column name


def days_touched(conn: Connection, touch_ids: Sequence[int]) -> set[str]:
    if not touch_ids:
        return set()
    return set(conn.scalars(select(calls.c.day).where(calls.c.touch_id.in_(list(touch_ids)))))


def latest_open(conn: Connection, lead_id: int, campaign: str | None = None) -> RowMapping | None:
    """The call the outcome is about: the lead's most recent task without an outcome."""
    query = (
        select(calls, touches.c.campaign, touches.c.step_id)
        .join(touches, touches.c.id == calls.c.touch_id)
        .where(calls.c.lead_id == lead_id, calls.c.outcome.is_(None))
    )
    if campaign:
        query = query.where(touches.c.campaign == campaign)
    row = conn.execute(query.order_by(calls.c.day.desc(), calls.c.touch_id.desc()).limit(1)).first()
    return row._mapping if row else None


def record_outcome(conn: Connection, touch_id: int, outcome: str, note: str | None, at: datetime) -> None:
    conn.execute(update(calls).where(calls.c.touch_id == touch_id).values(outcome=outcome, note=note, outcome_at=at))


def cancel_open(
    conn: Connection, lead_id: int, reason: str, at: datetime, campaigns: Sequence[str] | None = None
) -> int:
    """Close the lead's open call tasks (of `campaigns`; None: of every campaign) as
    `cancelled`, the stop's reason as their note; returns how many."""
    cond = [calls.c.lead_id == lead_id, calls.c.outcome.is_(None)]
    if campaigns is not None:
        of_campaigns = select(touches.c.id).where(touches.c.lead_id == lead_id, touches.c.campaign.in_(list(campaigns)))
        cond.append(calls.c.touch_id.in_(of_campaigns))
    result = conn.execute(update(calls).where(*cond).values(outcome=CANCELLED, note=reason, outcome_at=at))
    return result.rowcount or 0


__all__ = ["CANCELLED", "OUTCOMES", "add", "cancel_open", "days_touched", "latest_open", "listing", "record_outcome"]
