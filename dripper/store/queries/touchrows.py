"""Touch queries: planning upserts, the atomic claim, state transitions, counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql import ColumnElement, Select

from dripper.planning.track import Known
from dripper.states import PENDING, REPLANNABLE, STATES, Reason, TouchState, reason_text
from dripper.store import upsert
from dripper.store.tables import Id, leads, touches


def reason_columns(text: str | None) -> dict[str, str | None]:
    """A reason as the touches table keeps it: the reason itself, and what went wrong (its
    detail) in a column of its own. Text that names no known reason is kept whole."""
    reason, detail = Reason.parse(text)
    if reason is None:
        return {"reason": text, "detail": None}
    return {"reason": reason.value, "detail": detail}


def _reason_text() -> ColumnElement[Any]:
    """The reason joined with its detail, as `plan` and `report` show it (states.reason_text)."""
    # Literal SQL, not parameters: PostgreSQL matches a GROUP BY expression to the selected
    # one only when they are written alike, which two sets of parameters are not.
    separator = case(
        (touches.c.reason == literal_column(f"'{Reason.PAUSED.value}'"), literal_column("' '")),
        else_=literal_column("': '"),
    )
    return case(
        (touches.c.detail.is_(None), touches.c.reason),
        else_=touches.c.reason + separator + touches.c.detail,
    )


REASON_TEXT = _reason_text()
# A whole touches row, its reason shown with its detail.
ROW = tuple(REASON_TEXT.label("reason") if column.name == "reason" else column for column in touches.c)


# What planning writes into a touch row after its key (lead, campaign, step id).
PLANNED_COLUMNS = (
    "stage",
    "channel",
    "kind",
    "due_at",
    "state",
    "reason",
    "detail",
    "attempts",
    "planned_at",
    "updated_at",
)


def _insert(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    return upsert.insert(conn, touches)


def known(conn: Connection, lead_ids: Sequence[int]) -> dict[tuple[int, str], dict[str, Known]]:
    """The touch rows these leads have, as their tracks see them: (lead, campaign) -> step id -> row."""
    out: dict[tuple[int, str], dict[str, Known]] = {}
    for row in _track_rows(conn, lead_ids, touches.c.campaign):
        out.setdefault((row.lead_id, row.campaign), {})[row.step_id] = Known(row.state, row.reason, row.planned_at)
    return out


@dataclass(frozen=True)
class Stored:
    """A touch row as `dripper diff` replays a re-plan on it: the track's view, its stage
    (what `skip_removed_steps` keys on) and its due time (what a re-plan moves)."""

    known: Known
    stage: str
    due_at: datetime


def stored(conn: Connection, lead_ids: Sequence[int], campaign: str) -> dict[int, dict[str, Stored]]:
    """The rows these leads have in `campaign`: lead -> step id -> row."""
    out: dict[int, dict[str, Stored]] = {}
    rows = _track_rows(conn, lead_ids, touches.c.stage, touches.c.due_at, where=touches.c.campaign == campaign)
    for row in rows:
        known = Known(row.state, row.reason, row.planned_at)
        out.setdefault(row.lead_id, {})[row.step_id] = Stored(known, row.stage, row.due_at)
    return out


def _track_rows(
    conn: Connection, lead_ids: Sequence[int], *columns: ColumnElement[Any], where: ColumnElement[bool] | None = None
) -> Sequence[Row[Any]]:
    """These leads' touch rows (`where` they are): lead, step id, what a track sees of
    each (state, reason, planned_at), and `columns`."""
    if not lead_ids:
        return []
    query = select(
        touches.c.lead_id, touches.c.step_id, touches.c.state, touches.c.reason, touches.c.planned_at, *columns
    ).where(touches.c.lead_id.in_(list(lead_ids)))
    if where is not None:
        query = query.where(where)
    return conn.execute(query).all()


def steps_seen(conn: Connection, campaign: str) -> set[tuple[str, str]]:
    """The (stage, step id) pairs that touches of `campaign` have."""
    query = select(touches.c.stage, touches.c.step_id).where(touches.c.campaign == campaign).distinct()
    return {(stage, step_id) for stage, step_id in conn.execute(query)}


def upsert_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write planned touches (whole rows, at most one per key). An existing row keeps its
    state unless it is still pending (then only its due time follows the campaign, unless
    it was held back later) or was closed by dripper itself (then it is planned again);
    anything else stays as it is."""
    if not rows:
        return
    stmt = _insert(conn)
    excluded = stmt.excluded
    replannable = _replannable()
    is_planned = touches.c.state == TouchState.PLANNED
    # A pending touch held back for a reason (an out-of-office, a pause, SMTP retries, a
    # sending limit) keeps its later due time: an edit of the campaign must not send it early.
    held = and_(is_planned, touches.c.reason.is_not(None), touches.c.due_at > excluded.due_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["lead_id", "campaign", "step_id"],
        set_={
            "due_at": case((held, touches.c.due_at), else_=excluded.due_at),
            "stage": excluded.stage,
            "channel": excluded.channel,
            "kind": excluded.kind,
            "state": case((is_planned, touches.c.state), else_=excluded.state),
            "reason": case((is_planned, touches.c.reason), else_=excluded.reason),
            "detail": case((is_planned, touches.c.detail), else_=excluded.detail),
            "planned_at": case((is_planned, touches.c.planned_at), else_=excluded.planned_at),
            "updated_at": excluded.updated_at,
        },
        where=is_planned | replannable,
    )
    conn.execute(stmt, list(rows))


def insert_next(conn: Connection, rows: Sequence[dict[str, Any]]) -> bool:
    """Write the next touches of tracks (at most one row a key); True if every row was.

    A row is written where its step has no row yet, or one dripper closed itself (then it
    is planned again). Where the step has a row, it is left alone, and the caller plans
    those tracks from their stored rows instead (False)."""
    if not rows:
        return True
    result = conn.execute(_next_statement(conn.dialect.name), list(rows))
    return result.rowcount == len(rows)


@lru_cache(maxsize=4)
def _next_statement(dialect: str) -> Any:
    # Built once: it runs in every commit of outcomes. An executemany without RETURNING, so
    # that the driver sends one prepared statement for all rows (a multi-row VALUES list
    # would be parsed and planned anew for each size).
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(touches)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["lead_id", "campaign", "step_id"],
        set_={name: excluded[name] for name in PLANNED_COLUMNS},
        where=_replannable(),
    ).execution_options(preserve_rowcount=True)  # an executemany's rowcount: the rows written in all


def _replannable() -> ColumnElement[bool]:
    # Spelled out, not IN (…): an expanding IN cannot go into an executemany.
    return and_(touches.c.state == TouchState.SKIPPED, or_(*(touches.c.reason == reason for reason in REPLANNABLE)))


def close_pending(
    conn: Connection,
    lead_ids: Iterable[int],
    *,
    state: str,
    reason: str,
    at: datetime,
    campaigns: Iterable[str] | None = None,
) -> int:
    """Move a lead's planned touches to `state` (skipped/suppressed) with `reason`."""
    ids = list(lead_ids)
    if not ids:
        return 0
    cond = and_(touches.c.lead_id.in_(ids), touches.c.state == TouchState.PLANNED)
    if campaigns is not None:
        cond = and_(cond, touches.c.campaign.in_(list(campaigns)))
    result = conn.execute(update(touches).where(cond).values(state=state, reason=reason, detail=None, updated_at=at))
    return result.rowcount or 0


def skip_removed_steps(conn: Connection, campaign: str, tracks: dict[str, list[str]], at: datetime) -> int:
    """Pending touches of steps no longer in the campaign (or moved to another stage)."""
    cond = and_(touches.c.campaign == campaign, touches.c.state == TouchState.PLANNED)
    keep = [and_(touches.c.stage == stage, touches.c.step_id.in_(ids)) for stage, ids in tracks.items() if ids]
    if keep:
        cond = and_(cond, not_(or_(*keep)))
    result = conn.execute(
        update(touches)
        .where(cond)
        .values(state=TouchState.SKIPPED, reason=Reason.STEP_REMOVED, detail=None, updated_at=at)
    )
    return result.rowcount or 0


def rename_step(conn: Connection, campaign: str, old: str, new: str, at: datetime) -> int:
    """Carry a step's rows over to its new id (unless a lead already has the new one)."""
    taken = select(touches.c.lead_id).where(touches.c.campaign == campaign, touches.c.step_id == new)
    result = conn.execute(
        update(touches)
        .where(touches.c.campaign == campaign, touches.c.step_id == old, touches.c.lead_id.not_in(taken))
        .values(step_id=new, updated_at=at)
    )
    return result.rowcount or 0


def recover_interrupted(
    conn: Connection, now: datetime, lease: timedelta, *, updated_at: datetime | None = None
) -> int:
    """Touches left in `sending` by a dead worker go back to the queue, marked. `now` is
    the instant on the clock the leases were written with (the real one, whatever
    instant a tick runs at); `updated_at` what the rows record (default `now`)."""
    result = conn.execute(
        update(touches)
        .where(touches.c.state == TouchState.SENDING, touches.c.claimed_at <= now - lease)
        .values(
            state=TouchState.PLANNED,
            reason=Reason.RESENT_AFTER_INTERRUPTION,
            detail=None,
            claimed_by=None,
            updated_at=updated_at or now,
        )
    )
    return result.rowcount or 0


def renew(conn: Connection, worker: str, now: datetime, ids: Iterable[int]) -> set[int]:
    """Extend the lease on these touches where `worker` still holds them in `sending`;
    the ids it still holds. A touch missing from the answer was taken over by another
    worker (recovered after the lease ran out): it is that worker's to send now, or was
    recorded meanwhile."""
    wanted = list(ids)
    if not wanted:
        return set()
    result = conn.execute(
        update(touches)
        .where(touches.c.id.in_(wanted), _still_held(worker))
        .values(claimed_at=now)
        .returning(touches.c.id)
    )
    return {row.id for row in result}


@dataclass(frozen=True)
class Claimed:
    id: int
    lead_id: int
    campaign: str
    step_id: str
    stage: str
    channel: str
    kind: str
    due_at: datetime
    reason: str | None
    attempts: int
    planned_at: datetime


def claim(conn: Connection, at: datetime, now: datetime, worker: str, limit: int) -> list[Claimed]:
    """Atomically take up to `limit` due touches: planned -> sending, with a lease.

    PostgreSQL: FOR UPDATE SKIP LOCKED lets several workers claim side by side.
    SQLite: the transaction holds the database write lock (BEGIN IMMEDIATE), so the
    select-and-update is atomic there too.
    """
    due: Select[Any] = (
        select(touches.c.id)
        .where(touches.c.state == TouchState.PLANNED, touches.c.due_at <= at)
        .order_by(touches.c.due_at, touches.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(touches)
        .where(touches.c.id.in_(due.scalar_subquery()))
        .values(
            state=TouchState.SENDING, claimed_at=now, claimed_by=worker, attempts=touches.c.attempts + 1, updated_at=now
        )
        .returning(
            touches.c.id,
            touches.c.lead_id,
            touches.c.campaign,
            touches.c.step_id,
            touches.c.stage,
            touches.c.channel,
            touches.c.kind,
            touches.c.due_at,
            touches.c.reason,
            touches.c.detail,  # joined here: SQLite (3.40) misreads `detail IS NULL` in RETURNING
            touches.c.attempts,
            touches.c.planned_at,
        )
    )
    rows = []
    for row in conn.execute(stmt):
        values = dict(row._mapping)
        values["reason"] = reason_text(values["reason"], values.pop("detail"))
        rows.append(Claimed(**values))
    rows.sort(key=lambda r: (r.due_at, r.id))
    return rows


def _still_held(worker: Any) -> ColumnElement[bool]:
    """The row is still in `sending`, claimed by `worker`. For a row looked up by its id.

    The state is compared as an expression (`state || ''`) on purpose: a plain `state =
    'sending'` lets PostgreSQL read the partial index of touches in `sending`, which its
    statistics (taken between ticks) show empty, and it then filters every claimed row for
    each one it records, instead of going to the row by its primary key."""
    return and_((touches.c.state + "") == TouchState.SENDING.value, touches.c.claimed_by == worker)


def finish(conn: Connection, touch_id: int, worker: str, **values: Any) -> bool:
    """Record the outcome of a claimed touch, only if this worker still holds it."""
    result = conn.execute(update(touches).where(touches.c.id == touch_id, _still_held(worker)).values(**values))
    return bool(result.rowcount)


@lru_cache(maxsize=64)
def _finish_statement(columns: tuple[str, ...]) -> Any:
    # Built once per set of columns: the hot path of every send reuses it (and SQLAlchemy's
    # compiled form), instead of paying for a new construct each time.
    return (
        update(touches)
        .where(touches.c.id == bindparam("t_id"), _still_held(bindparam("t_worker")))
        .values({column: bindparam(f"v_{column}") for column in columns})
    )


def finish_many(conn: Connection, worker: str, outcomes: Sequence[tuple[int, dict[str, Any]]]) -> int:
    """Record many outcomes at once (one executemany per set of columns); returns how
    many rows this worker still held."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for touch_id, values in outcomes:
        row = {f"v_{k}": v for k, v in values.items()}
        row.update(t_id=touch_id, t_worker=worker)
        groups.setdefault(tuple(sorted(values)), []).append(row)
    return sum(conn.execute(_finish_statement(columns), rows).rowcount or 0 for columns, rows in groups.items())


def counts_by_step(conn: Connection) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    query = select(touches.c.campaign, touches.c.step_id, touches.c.state, func.count()).group_by(
        touches.c.campaign, touches.c.step_id, touches.c.state
    )
    for campaign, step, state, n in conn.execute(query):
        out.setdefault(campaign, {}).setdefault(step, dict.fromkeys(STATES, 0))[state] = n
    return out


def reasons_by_step(conn: Connection, waiting: tuple[str, ...] = ()) -> dict[tuple[str, str, str], int]:
    """(campaign, step, reason) -> touches closed with that reason, and the planned touches
    waiting for one of the `waiting` reasons (`letters_unavailable`: what holds them is on
    our side, and someone has to act). Each reason is shown with its detail."""
    closed = touches.c.state.in_((TouchState.SKIPPED, TouchState.SUPPRESSED, TouchState.FAILED))
    held = [and_(touches.c.state == TouchState.PLANNED, touches.c.reason == reason) for reason in waiting]
    query = (
        select(touches.c.campaign, touches.c.step_id, REASON_TEXT, func.count())
        .where(or_(closed, *held), touches.c.reason.is_not(None))
        .group_by(touches.c.campaign, touches.c.step_id, REASON_TEXT)
    )
    return {(c, s, r): n for c, s, r, n in conn.execute(query)}


@dataclass
class Upcoming:
    """What `dripper.track.upcoming` finds for every lead, counted."""

    # (campaign, step, the reason the track was stopped or None) -> leads whose track has
    # yet to reach the step
    ahead: dict[tuple[str, str, str | None], int]
    # (campaign, step, reason) -> rows closed by dripper itself (stage_changed, ...) that
    # a track will reach again: counted as to come, not as skipped
    reopened: dict[tuple[str, str, str], int]


# Temporary tables of the report's count of what is to come (see `upcoming_counts`):
# PostgreSQL plans joins with them well once it has their statistics, which it cannot
# have of a VALUES list or a CTE (its guess of one row made it probe the index of touches
# again and again on a large store).
_temp = MetaData()
track_steps = Table(
    "track_steps",
    _temp,
    Column("campaign", String(200), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("n", Integer, nullable=False),  # the step's place in its track's sending order
    prefixes=["TEMPORARY"],
)
track_stand = Table(
    "track_stand",
    _temp,
    Column("lead_id", Id, nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("n", Integer, nullable=False),  # the place of its pending (or closing) touch
    Column("stopped", Text),  # why the track was stopped, or NULL
    prefixes=["TEMPORARY"],
)


def upcoming_counts(conn: Connection, orders: Mapping[tuple[str, str], Sequence[str]]) -> Upcoming:
    """The steps leads' tracks have yet to reach. `orders` gives each (campaign, stage)
    track's steps in sending order.

    A lead's track is planned one touch ahead: the steps after its pending touch (or the
    suppressed one that closed the track) have no rows yet (see `dripper.track`). Counted
    set-based, whatever the number of leads: where each lead's track stands (a scan of the
    pending and suppressed touches), leads by that point, then the rows beyond it, from an
    earlier stay in the stage or a campaign edit that changed the order of steps."""
    positions = [
        {"campaign": campaign, "stage": stage, "step_id": step, "n": n}
        for (campaign, stage), steps in orders.items()
        for n, step in enumerate(steps)
    ]
    if not positions:
        return Upcoming({}, {})
    for table in (track_steps, track_stand):
        conn.execute(DropTable(table, if_exists=True))
        conn.execute(CreateTable(table))
    conn.execute(insert(track_steps), positions)
    _analyze(conn, "track_steps")
    steps, stand = track_steps, track_stand
    in_stay = or_(
        touches.c.state.in_(PENDING),
        and_(touches.c.state == TouchState.SUPPRESSED, touches.c.planned_at >= leads.c.stage_entered_at),
    )
    stopped = func.coalesce(
        func.max(case((touches.c.state == TouchState.SUPPRESSED, touches.c.reason))),
        # Stopped for good, though the pending touch is not suppressed yet (written by another process).
        func.max(
            case(
                (leads.c.unsubscribed_at.is_not(None), "unsubscribed"),
                (leads.c.complained_at.is_not(None), "complained"),
                (leads.c.bounced_at.is_not(None), "bounced"),
            )
        ),
    )
    conn.execute(
        insert(stand).from_select(
            ["lead_id", "campaign", "stage", "n", "stopped"],
            select(touches.c.lead_id, leads.c.campaign, leads.c.stage, func.max(steps.c.n), stopped)
            .select_from(
                touches.join(
                    leads,
                    and_(
                        leads.c.id == touches.c.lead_id,
                        leads.c.campaign == touches.c.campaign,
                        leads.c.stage == touches.c.stage,
                    ),
                ).join(steps, _step_of_touch(steps, touches.c.stage))
            )
            .where(in_stay)
            .group_by(touches.c.lead_id, leads.c.campaign, leads.c.stage),
        )
    )
    _analyze(conn, "track_stand")
    out: dict[tuple[str, str, str | None], int] = {}
    groups = select(stand.c.campaign, stand.c.stage, stand.c.n, stand.c.stopped, func.count()).group_by(
        stand.c.campaign, stand.c.stage, stand.c.n, stand.c.stopped
    )
    for campaign, stage, n, why, leads_there in conn.execute(groups):
        for step in orders[(campaign, stage)][n + 1 :]:
            out[(campaign, step, why)] = out.get((campaign, step, why), 0) + leads_there
    reopens = and_(touches.c.state == TouchState.SKIPPED, touches.c.reason.in_(REPLANNABLE))
    beyond = (
        select(
            steps.c.campaign, steps.c.step_id, stand.c.stopped, reopens.label("reopens"), touches.c.reason, func.count()
        )
        .select_from(
            stand.join(
                touches, and_(touches.c.lead_id == stand.c.lead_id, touches.c.campaign == stand.c.campaign)
            ).join(steps, and_(_step_of_touch(steps, stand.c.stage), steps.c.n > stand.c.n))
        )
        .where(touches.c.state.not_in(PENDING))
        .group_by(steps.c.campaign, steps.c.step_id, stand.c.stopped, reopens, touches.c.reason)
    )
    reopened: dict[tuple[str, str, str], int] = {}
    for campaign, step, why, reopening, reason, n in conn.execute(beyond):
        if reopening:  # still to come: the track will plan it again
            reopened[(campaign, step, reason)] = reopened.get((campaign, step, reason), 0) + n
        else:  # done on an earlier stay, or before an edit moved it: the track will pass it by
            out[(campaign, step, why)] -= n
    for table in (stand, steps):
        conn.execute(DropTable(table))
    return Upcoming({key: n for key, n in out.items() if n}, reopened)


def _step_of_touch(steps: Table, stage: ColumnElement[str]) -> ColumnElement[bool]:
    """Joins a touch to its step's place in the track of `stage` (a `track_steps` row)."""
    return and_(steps.c.campaign == touches.c.campaign, steps.c.stage == stage, steps.c.step_id == touches.c.step_id)


def _analyze(conn: Connection, table: str) -> None:
    if conn.dialect.name == "postgresql":  # autovacuum never sees temporary tables
        conn.execute(text(f"ANALYZE {table}"))


def for_lead(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    query = select(*ROW).where(touches.c.lead_id == lead_id).order_by(touches.c.due_at, touches.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def count_due(conn: Connection, at: datetime, channel: str | None = None, *, up_to: int) -> int:
    """How many planned touches (of `channel`) are due at `at`, counting no further than
    `up_to`: the rows are read in due order from the index of planned touches, so the
    cost follows `up_to`. (A plain count let PostgreSQL, which takes "planned and due"
    for a fifth of the table, scan all of it.)"""
    due = select(touches.c.id).where(touches.c.state == TouchState.PLANNED, touches.c.due_at <= at)
    if channel is not None:
        due = due.where(touches.c.channel == channel)
    due = due.order_by(touches.c.due_at, touches.c.id).limit(up_to)
    return conn.scalar(select(func.count()).select_from(due.subquery())) or 0


def next_due(conn: Connection, after: datetime) -> datetime | None:
    due: datetime | None = conn.scalar(
        select(func.min(touches.c.due_at)).where(touches.c.state == TouchState.PLANNED, touches.c.due_at > after)
    )
    return due


# --- inbound: the touch a bounce or reply is about -------------------------------------------


def by_id(conn: Connection, touch_id: int) -> Mapping[str, Any] | None:
    row = conn.execute(select(*ROW).where(touches.c.id == touch_id)).first()
    return cast(Mapping[str, Any], row._mapping) if row else None


def by_message_id(conn: Connection, message_id: str) -> Mapping[str, Any] | None:
    """The touch that went out with this Message-ID (ix_touches_message_id)."""
    row = conn.execute(select(*ROW).where(touches.c.message_id == message_id).limit(1)).first()
    return cast(Mapping[str, Any], row._mapping) if row else None


def send_again(conn: Connection, touch_id: int, due: datetime, reason: str, at: datetime) -> bool:
    """A sent touch that did not arrive (a soft bounce) goes back to the queue, due at `due`."""
    result = conn.execute(
        update(touches)
        .where(touches.c.id == touch_id, touches.c.state == TouchState.SENT)
        .values(state=TouchState.PLANNED, due_at=due, claimed_by=None, updated_at=at, **reason_columns(reason))
    )
    return bool(result.rowcount)
