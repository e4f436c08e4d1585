"""Set-based work on many leads at once: a batch goes into a temporary table (COPY on
PostgreSQL) and a fixed handful of statements merges it, whatever the batch's size.

Two temporary tables, private to the connection:
  lead_stage   one import batch: the leads as read, then which lead row each one is and
               what the merge does to it (NULL: new; same, changed, or moved to another
               track)
  plan_steps   the first touch of each group of new leads that share a track, a time
               zone and a country; planning joins the batch to it
A third, import_seen, remembers the e-mails of the file being imported across its
batches, so that "duplicate of line N" needs no memory in Python.

On PostgreSQL one statement inserts a batch's new leads and, from the rows it returns,
their first touches: nothing has to find the new leads again.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateIndex, CreateTable, Index
from sqlalchemy.sql import ColumnElement, FromClause, Select

from dripper.leads.records import LEAD_FIELDS, Lead
from dripper.states import Reason, TouchState
from dripper.store import upsert
from dripper.store.queries.touchrows import PLANNED_COLUMNS
from dripper.store.tables import Id, UTCDateTime, events, leads, touches

if TYPE_CHECKING:
    import psycopg

_temp = MetaData()  # never part of the schema: these tables live and die with a connection

_FIELDS = tuple(name for name in LEAD_FIELDS if name != "email")

lead_stage = Table(
    "lead_stage",
    _temp,
    Column("line", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    *(
        Column(name, UTCDateTime) if name == "consent_at" else Column(name, String(300), nullable=name == "timezone")
        for name in _FIELDS
    ),
    Column("attrs", JSON, nullable=False),
    Column("lead_id", Id),
    Column("action", String(8)),  # NULL: new | same | changed | moved
    Column("old_campaign", String(200)),
    Column("replan", Boolean),  # NULL until matched: not replanned
    prefixes=["TEMPORARY"],
)
_stage_email = Index("ix_lead_stage_email", lead_stage.c.email)

import_seen = Table(
    "import_seen",
    _temp,
    Column("email", String(320), primary_key=True),
    Column("line", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)

plan_steps = Table(
    "plan_steps",
    _temp,
    Column("campaign", String(200), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("tz", String(64), nullable=False),  # "" = the lead has none (defaults.timezone)
    Column("country", String(64), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("missed", Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)

_is_new = lead_stage.c.action.is_(None)


def _create(conn: Connection, table: Table) -> None:
    conn.execute(CreateTable(table, if_not_exists=True))


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _empty(conn: Connection, table: Table) -> None:
    # TRUNCATE leaves no dead rows behind for the next batch's statements to read past.
    conn.execute(text(f"TRUNCATE {table.name}") if _postgres(conn) else delete(table))


# --- an import batch -------------------------------------------------------------------
_COPY_COLUMNS = ["line", "email", *_FIELDS, "attrs"]
_TZ_CELL = _COPY_COLUMNS.index("timezone")
_CONSENT_CELL = _COPY_COLUMNS.index("consent_at")
_TEXT_FIELDS = tuple(name for name in _FIELDS if name != "consent_at")
_fields = attrgetter(*_TEXT_FIELDS)
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(batch: Sequence[tuple[int, Lead]]) -> bytes:
    """A batch in COPY's text format (tab-separated, \\N for NULL, backslash escapes).

    Made by the importer's reading thread while the database merges the batch before,
    so that the thread talking to the database only sends bytes."""
    tabs = len(_COPY_COLUMNS) - 1
    out = []
    for line, lead in batch:
        cells = [str(line), lead.email, *_fields(lead), json.dumps(lead.attrs, ensure_ascii=False)]
        # The consent instant as the store keeps it: naive UTC (`UTCDateTime`).
        cells.insert(_CONSENT_CELL, _copy_instant(lead.consent_at))
        nulls = [i for i, none in ((_TZ_CELL, lead.timezone is None), (_CONSENT_CELL, lead.consent_at is None)) if none]
        for i in nulls:
            cells[i] = ""
        row = "\t".join(cells)
        escaped = "\\" in row or row.count("\t") != tabs  # rare: a backslash or a tab in a value
        if escaped:
            cells = [cell.translate(_ESCAPE) for cell in cells]
        for i in nulls:
            cells[i] = "\\N"
        if escaped or nulls:
            row = "\t".join(cells)
        out.append(row)
    out.append("")
    return "\n".join(out).encode()


def _copy_instant(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def load(conn: Connection, batch: Sequence[tuple[int, Lead]], copy: bytes | None = None) -> None:
    """Put a batch of leads (with the line each came from) into `lead_stage`; `copy` is
    `copy_text(batch)` if the caller made it already."""
    _create(conn, lead_stage)
    _empty(conn, lead_stage)
    if _postgres(conn):
        # SQLAlchemy leaves the driver's connection untyped; on PostgreSQL it is psycopg's.
        raw = typing.cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        # COPY is PostgreSQL's bulk path: one round trip per batch instead of one per row.
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY lead_stage ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as stream,
        ):
            stream.write(copy if copy is not None else copy_text(batch))
    else:
        # PostgreSQL finds e-mails through the unique index of `leads` (or of `import_seen`);
        # SQLite also joins the batch with itself by e-mail.
        conn.execute(CreateIndex(_stage_email, if_not_exists=True))
        conn.execute(
            insert(lead_stage),
            [
                {"line": line, "email": lead.email, **{f: getattr(lead, f) for f in _FIELDS}, "attrs": dict(lead.attrs)}
                for line, lead in batch
            ],
        )
    # No ANALYZE: PostgreSQL sizes a temporary table it has never analyzed by its pages,
    # and the joins go by the unique e-mail index of `leads` (ANALYZE would cost more than it saves).


def start_import(conn: Connection) -> None:
    """A new file: forget the e-mails of any earlier one on this connection."""
    conn.execute(text("DROP TABLE IF EXISTS import_seen"))
    _create(conn, import_seen)


def take_duplicates(conn: Connection, across_batches: bool) -> list[tuple[int, int, str]]:
    """Remove rows whose e-mail came earlier in the file; returns (line, first line, e-mail).

    `across_batches`: the file's e-mails so far are in `import_seen`; this batch's join
    them (first line first), and a row whose e-mail is there with another line repeats it."""
    if across_batches:
        conn.execute(
            upsert.insert(conn, import_seen)
            .from_select(
                ["email", "line"],
                select(lead_stage.c.email, lead_stage.c.line).where(true()).order_by(lead_stage.c.line),
            )
            .on_conflict_do_nothing(index_elements=["email"])
        )
        found = (
            select(lead_stage.c.line, import_seen.c.line, lead_stage.c.email)
            .join(import_seen, import_seen.c.email == lead_stage.c.email)
            .where(import_seen.c.line != lead_stage.c.line)
        )
    else:
        earlier = lead_stage.alias("earlier")
        found = (
            select(lead_stage.c.line, func.min(earlier.c.line), lead_stage.c.email)
            .join(earlier, and_(earlier.c.email == lead_stage.c.email, earlier.c.line < lead_stage.c.line))
            .group_by(lead_stage.c.line, lead_stage.c.email)
        )
    duplicates = [tuple(row) for row in conn.execute(found)]
    if duplicates:
        conn.execute(delete(lead_stage).where(lead_stage.c.line.in_([line for line, _, _ in duplicates])))
    return sorted(duplicates)


def _attrs_differ(conn: Connection) -> ColumnElement[bool]:
    if _postgres(conn):  # json has no equality in PostgreSQL; jsonb does
        return cast(leads.c.attrs, JSONB) != cast(lead_stage.c.attrs, JSONB)
    return cast(leads.c.attrs, Text) != cast(lead_stage.c.attrs, Text)


def match(conn: Connection) -> dict[str, int]:
    """Find each staged lead's row and decide what the merge does to it; how many leads
    are new, the same, changed, moved."""
    moved = or_(leads.c.stage != lead_stage.c.stage, leads.c.campaign != lead_stage.c.campaign)
    differs = or_(*(leads.c[f].is_distinct_from(lead_stage.c[f]) for f in _FIELDS), _attrs_differ(conn))
    # A new time zone or country moves the due times of what is still planned.
    replan = or_(
        moved, leads.c.timezone.is_distinct_from(lead_stage.c.timezone), leads.c.country != lead_stage.c.country
    )
    conn.execute(
        update(lead_stage)
        .where(lead_stage.c.email == leads.c.email)
        .values(
            lead_id=leads.c.id,
            old_campaign=leads.c.campaign,
            action=case((moved, "moved"), (differs, "changed"), else_="same"),
            replan=case((replan, True), else_=False),
        )
    )
    action = func.coalesce(lead_stage.c.action, "new")
    return {row[0]: row[1] for row in conn.execute(select(action, func.count()).group_by(action))}


def close_moved(conn: Connection, at: datetime) -> None:
    """Leads that change stage or campaign leave their old track's pending touch."""
    for reason, same_campaign in ((Reason.STAGE_CHANGED, True), (Reason.CAMPAIGN_CHANGED, False)):
        which = select(lead_stage.c.lead_id).where(
            lead_stage.c.action == "moved",
            (lead_stage.c.old_campaign == lead_stage.c.campaign)
            if same_campaign
            else (lead_stage.c.old_campaign != lead_stage.c.campaign),
        )
        conn.execute(
            update(touches)
            .where(touches.c.state == TouchState.PLANNED, touches.c.lead_id.in_(which))
            .values(state=TouchState.SKIPPED, reason=reason, detail=None, updated_at=at)
        )


def record_moves(conn: Connection, at: datetime) -> None:
    """An event `stage` (from, to) for each staged lead that moves to another stage, as
    `planner.change_stage` records one: one INSERT … SELECT, run before `update_changed`
    while the lead rows still hold the old stage. A batch of new leads never gets here."""
    build = func.json_build_object if _postgres(conn) else func.json_object
    detail = build(
        "stage", lead_stage.c.stage, "from", leads.c.stage, "to", lead_stage.c.stage, "campaign", lead_stage.c.campaign
    )
    conn.execute(
        insert(events).from_select(
            ["lead_id", "kind", "at", "source", "detail"],
            select(lead_stage.c.lead_id, literal("stage"), literal(at, UTCDateTime()), literal("import"), detail)
            .select_from(lead_stage.join(leads, leads.c.id == lead_stage.c.lead_id))
            .where(lead_stage.c.action == "moved", leads.c.stage != lead_stage.c.stage),
        )
    )


def update_changed(conn: Connection, at: datetime) -> None:
    entered = case((lead_stage.c.action == "moved", literal(at, UTCDateTime())), else_=leads.c.stage_entered_at)
    conn.execute(
        update(leads)
        .where(leads.c.id == lead_stage.c.lead_id, lead_stage.c.action.in_(("changed", "moved")))
        .values(
            {
                **{f: lead_stage.c[f] for f in _FIELDS},
                "attrs": lead_stage.c.attrs,
                "stage_entered_at": entered,
                "updated_at": at,
            }
        )
    )


def replanned() -> Select[Any]:
    """The staged leads already known whose track is planned again: moved to another
    track, or to a new time zone or country."""
    return select(lead_stage.c.lead_id).where(lead_stage.c.replan)


# --- the new leads and their first touches --------------------------------------------
Group = tuple[str, str, "str | None", str]  # campaign, stage, time zone, country


def new_groups(conn: Connection) -> list[Group]:
    """The (campaign, stage, time zone, country) of the batch's new leads."""
    query = (
        select(lead_stage.c.campaign, lead_stage.c.stage, lead_stage.c.timezone, lead_stage.c.country)
        .where(_is_new)
        .distinct()
    )
    return [(campaign, stage, tz, country) for campaign, stage, tz, country in conn.execute(query)]


def insert_new(conn: Connection, first: Sequence[dict[str, Any]], at: datetime) -> None:
    """Insert the batch's new leads (entering their stage at `at`) and their first
    touches: `first` gives each group's (campaign, stage, tz, country, step_id, channel,
    kind, due_at, missed)."""
    _create(conn, plan_steps)
    _empty(conn, plan_steps)
    if first:
        conn.execute(insert(plan_steps), list(first))
    columns = ["email", *_FIELDS, "attrs"]
    instant = literal(at, UTCDateTime())
    new_leads = insert(leads).from_select(
        [*columns, "stage_entered_at", "created_at", "updated_at"],
        select(*(lead_stage.c[c] for c in columns), instant, instant, instant).where(_is_new),
    )
    if _postgres(conn):  # one statement: the touches join the lead rows as they are inserted
        new = new_leads.returning(leads.c.id, leads.c.campaign, leads.c.stage, leads.c.timezone, leads.c.country).cte(
            "new"
        )
        conn.execute(touches.insert().from_select(_TOUCH_COLUMNS, _first_touches(new, new.c.id, at)))
        return
    conn.execute(new_leads)
    conn.execute(update(lead_stage).where(_is_new, lead_stage.c.email == leads.c.email).values(lead_id=leads.c.id))
    staged = select(lead_stage).where(_is_new).subquery("new")
    conn.execute(touches.insert().from_select(_TOUCH_COLUMNS, _first_touches(staged, staged.c.lead_id, at)))


_TOUCH_COLUMNS = ["lead_id", "campaign", "step_id", *PLANNED_COLUMNS]


def _first_touches(new: FromClause, lead_id: ColumnElement[int], at: datetime) -> Select[Any]:
    instant = literal(at, UTCDateTime())
    on = and_(
        plan_steps.c.campaign == new.c.campaign,
        plan_steps.c.stage == new.c.stage,
        plan_steps.c.tz == func.coalesce(new.c.timezone, ""),
        plan_steps.c.country == new.c.country,
    )
    return select(
        lead_id,
        plan_steps.c.campaign,
        plan_steps.c.step_id,
        plan_steps.c.stage,
        plan_steps.c.channel,
        plan_steps.c.kind,
        plan_steps.c.due_at,
        case((plan_steps.c.missed, TouchState.SKIPPED.value), else_=TouchState.PLANNED.value),
        case((plan_steps.c.missed, Reason.MISSED.value)),
        null(),  # detail
        literal(0),
        instant,
        instant,
    ).select_from(new.join(plan_steps, on))


__all__ = [
    "close_moved",
    "insert_new",
    "load",
    "match",
    "new_groups",
    "record_moves",
    "replanned",
    "start_import",
    "take_duplicates",
    "update_changed",
]
