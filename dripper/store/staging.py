"""Set-based work on many leads at once: a batch goes into a temporary table (COPY on
PostgreSQL) and a fixed handful of statements merges it, whatever the batch's size.

Two temporary tables, private to the connection:
  lead_stage   one import batch: the leads as read, then which lead row each one is and
               what the merge does to it (new, same, changed, moved to another track)
  plan_steps   the due times of every step for each group of leads that share a track,
               an entry instant, a time zone and a country; planning joins leads to it
A third, import_seen, remembers the e-mails of the file being imported across its
batches, so that "duplicate of line N" needs no memory in Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import (
    JSON, Boolean, Column, Connection, Integer, MetaData, String, Table, Text, and_, case, cast, delete, func,
    insert, literal, or_, select, text, update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateIndex, CreateTable, Index
from sqlalchemy.sql import ColumnElement, Select

from dripper.leads import LEAD_FIELDS, Lead
from dripper.store.tables import Id, UTCDateTime, leads, touches

_temp = MetaData()  # never part of the schema: these tables live and die with a connection

_FIELDS = tuple(name for name in LEAD_FIELDS if name != "email")

lead_stage = Table(
    "lead_stage", _temp,
    Column("line", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    *(Column(name, String(300), nullable=name == "timezone") for name in _FIELDS),
    Column("attrs", JSON, nullable=False),
    Column("lead_id", Id),
    Column("action", String(8)),  # new | same | changed | moved
    Column("old_campaign", String(200)),
    Column("replan", Boolean),  # NULL until matched: not replanned
    prefixes=["TEMPORARY"],
)
_stage_email = Index("ix_lead_stage_email", lead_stage.c.email)

import_seen = Table(
    "import_seen", _temp,
    Column("email", String(320), primary_key=True),
    Column("line", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)

plan_steps = Table(
    "plan_steps", _temp,
    Column("campaign", String(200), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("entered", UTCDateTime, nullable=False),
    Column("tz", String(64), nullable=False),  # "" = the lead has none (defaults.timezone)
    Column("country", String(64), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("missed", Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)


def _create(conn: Connection, table: Table) -> None:
    conn.execute(CreateTable(table, if_not_exists=True))


def _analyze(conn: Connection, table: Table) -> None:
    # Autovacuum never sees temporary tables: without statistics PostgreSQL plans the
    # merge for an empty table and joins row by row.
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {table.name}"))


# --- an import batch -------------------------------------------------------------------
def load(conn: Connection, batch: Sequence[tuple[int, Lead]]) -> None:
    """Put a batch of leads (with the line each came from) into `lead_stage`."""
    _create(conn, lead_stage)
    conn.execute(CreateIndex(_stage_email, if_not_exists=True))
    conn.execute(delete(lead_stage))
    columns = ["line", "email", *_FIELDS, "attrs"]
    if conn.dialect.name == "postgresql":
        _copy(conn, columns, ((line, lead.email, *(getattr(lead, f) for f in _FIELDS), _json(lead.attrs))
                              for line, lead in batch))
    else:
        conn.execute(insert(lead_stage), [
            {"line": line, "email": lead.email, **{f: getattr(lead, f) for f in _FIELDS}, "attrs": dict(lead.attrs)}
            for line, lead in batch
        ])
    _analyze(conn, lead_stage)


def _json(value: dict[str, str]) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _copy(conn: Connection, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
    # COPY is PostgreSQL's bulk path: one round trip per batch instead of one per row.
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(f"COPY lead_stage ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def start_import(conn: Connection) -> None:
    """A new file: forget the e-mails of any earlier one on this connection."""
    conn.execute(text("DROP TABLE IF EXISTS import_seen"))
    _create(conn, import_seen)


def take_duplicates(conn: Connection, across_batches: bool) -> list[tuple[int, int, str]]:
    """Remove rows whose e-mail came earlier in the file; returns (line, first line, e-mail)."""
    earlier = lead_stage.alias("earlier")
    found = select(lead_stage.c.line, func.min(earlier.c.line), lead_stage.c.email).join(
        earlier, and_(earlier.c.email == lead_stage.c.email, earlier.c.line < lead_stage.c.line)
    ).group_by(lead_stage.c.line, lead_stage.c.email)
    duplicates = [tuple(row) for row in conn.execute(found)]
    if across_batches:
        duplicates += [tuple(row) for row in conn.execute(
            select(lead_stage.c.line, import_seen.c.line, lead_stage.c.email)
            .join(import_seen, import_seen.c.email == lead_stage.c.email))]
    if duplicates:
        conn.execute(delete(lead_stage).where(lead_stage.c.line.in_([line for line, _, _ in duplicates])))
    return sorted(duplicates)  # type: ignore[arg-type]


def remember(conn: Connection) -> None:
    conn.execute(insert(import_seen).from_select(["email", "line"], select(lead_stage.c.email, lead_stage.c.line)))


def _attrs_differ(conn: Connection) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":  # json has no equality in PostgreSQL; jsonb does
        return cast(leads.c.attrs, JSONB) != cast(lead_stage.c.attrs, JSONB)
    return cast(leads.c.attrs, Text) != cast(lead_stage.c.attrs, Text)


def match(conn: Connection) -> None:
    """Find each staged lead's row and decide what the merge does to it."""
    moved = or_(leads.c.stage != lead_stage.c.stage, leads.c.campaign != lead_stage.c.campaign)
    differs = or_(*(leads.c[f].is_distinct_from(lead_stage.c[f]) for f in _FIELDS), _attrs_differ(conn))
    # A new time zone or country moves the due times of what is still planned.
    replan = or_(moved, leads.c.timezone.is_distinct_from(lead_stage.c.timezone),
                 leads.c.country != lead_stage.c.country)
    conn.execute(
        update(lead_stage).where(lead_stage.c.email == leads.c.email).values(
            lead_id=leads.c.id,
            old_campaign=leads.c.campaign,
            action=case((moved, "moved"), (differs, "changed"), else_="same"),
            replan=case((replan, True), else_=False),
        )
    )


def close_moved(conn: Connection, at: datetime) -> None:
    """Leads that change stage or campaign leave their old track's pending touches."""
    for reason, same_campaign in (("stage_changed", True), ("campaign_changed", False)):
        which = select(lead_stage.c.lead_id).where(
            lead_stage.c.action == "moved",
            (lead_stage.c.old_campaign == lead_stage.c.campaign) if same_campaign
            else (lead_stage.c.old_campaign != lead_stage.c.campaign))
        conn.execute(update(touches).where(touches.c.state == "planned", touches.c.lead_id.in_(which))
                     .values(state="skipped", reason=reason, updated_at=at))


def update_changed(conn: Connection, at: datetime) -> None:
    entered = case((lead_stage.c.action == "moved", literal(at, UTCDateTime())), else_=leads.c.stage_entered_at)
    conn.execute(
        update(leads)
        .where(leads.c.id == lead_stage.c.lead_id, lead_stage.c.action.in_(("changed", "moved")))
        .values({**{f: lead_stage.c[f] for f in _FIELDS}, "attrs": lead_stage.c.attrs, "stage_entered_at": entered,
                 "updated_at": at})
    )


def insert_new(conn: Connection, at: datetime) -> None:
    columns = ["email", *_FIELDS, "attrs"]
    instant = literal(at, UTCDateTime())
    conn.execute(insert(leads).from_select(
        [*columns, "stage_entered_at", "created_at", "updated_at"],
        select(*(lead_stage.c[c] for c in columns), instant, instant, instant).where(lead_stage.c.lead_id.is_(None)),
    ))
    conn.execute(
        update(lead_stage).where(lead_stage.c.lead_id.is_(None), lead_stage.c.email == leads.c.email)
        .values(lead_id=leads.c.id, action="new", replan=True)
    )


def counts(conn: Connection) -> dict[str, int]:
    return {action: n for action, n in conn.execute(select(lead_stage.c.action, func.count()).group_by(lead_stage.c.action))}


def replanned(*, new: bool) -> Select[Any]:
    """The staged leads whose track is planned: the new ones, or (new=False) those moved
    to another track or to a new time zone or country."""
    is_new = lead_stage.c.action == "new"
    return select(lead_stage.c.lead_id).where(lead_stage.c.replan, is_new if new else ~is_new)


# --- planning --------------------------------------------------------------------------
def set_plan(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    _create(conn, plan_steps)
    conn.execute(delete(plan_steps))
    if rows:
        conn.execute(insert(plan_steps), list(rows))
    _analyze(conn, plan_steps)


def _opted_out_of_campaign(conn: Connection) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return cast(leads.c.opted_out, JSONB).has_key(leads.c.campaign)
    return text("EXISTS (SELECT 1 FROM json_each(leads.opted_out) WHERE json_each.value = leads.campaign)")  # type: ignore[return-value]


def planned_touches(conn: Connection, which: ColumnElement[bool], at: datetime) -> Select[Any]:
    """Touch rows for the leads `which` selects, from `plan_steps`: suppressed where the
    lead is blocked for good, `missed` where the step was long overdue when planned."""
    blocked = case(
        (leads.c.unsubscribed_at.is_not(None), "unsubscribed"),
        (leads.c.complained_at.is_not(None), "complained"),
        (leads.c.bounced_at.is_not(None), "bounced"),
        (_opted_out_of_campaign(conn), "opted_out"),
        else_=None,
    )
    state = case((blocked.is_not(None), "suppressed"), (plan_steps.c.missed, "skipped"), else_="planned")
    reason = case((blocked.is_not(None), blocked), (plan_steps.c.missed, "missed"), else_=None)
    instant = literal(at, UTCDateTime())
    on = and_(plan_steps.c.campaign == leads.c.campaign, plan_steps.c.stage == leads.c.stage,
              plan_steps.c.entered == leads.c.stage_entered_at, plan_steps.c.tz == func.coalesce(leads.c.timezone, ""),
              plan_steps.c.country == leads.c.country)
    return (
        select(leads.c.id, plan_steps.c.campaign, plan_steps.c.step_id, plan_steps.c.stage, plan_steps.c.channel,
               plan_steps.c.kind, plan_steps.c.due_at, state, reason, literal(0), instant, instant)
        .select_from(leads.join(plan_steps, on))
        .where(which)
    )


TOUCH_COLUMNS = ["lead_id", "campaign", "step_id", "stage", "channel", "kind", "due_at", "state", "reason", "attempts",
                 "planned_at", "updated_at"]

__all__ = ["load", "start_import", "take_duplicates", "remember", "match", "close_moved", "update_changed",
           "insert_new", "counts", "replanned", "set_plan", "planned_touches", "TOUCH_COLUMNS"]
