"""The figures `GET /metrics` reports, read from the database at scrape time (the
exposition is `dripper.web.metrics`).

Every figure is one aggregate query: nothing is loaded row by row into Python. The
counts and the histogram still read every touch, so a scrape's cost grows with the table
(see the note above the queries)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, case, create_engine, event, func, literal_column, select
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement

from dripper.store.db import Store
from dripper.store.tables import STATES, events, touches

# Upper bounds of the send-delay buckets, in seconds: a tick every minute keeps e-mails in
# the first few; a backlog or a worker that was down reaches the hours and days. (Retries,
# sending limits and pauses move due_at on, so they do not show here: the delay counts
# from the touch's last due time, the only one the database keeps.)
DELAY_BUCKETS: tuple[float, ...] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    21600,
    43200,
    86400,
    172800,
    604800,
)


@dataclass(frozen=True)
class DelayHistogram:
    """Cumulative counts per bucket bound of DELAY_BUCKETS (as Prometheus wants them), the
    count and the sum."""

    cumulative: tuple[int, ...] = (0,) * len(DELAY_BUCKETS)
    count: int = 0
    total_seconds: float = 0.0


@dataclass(frozen=True)
class Figures:
    """Everything one scrape reports, read from the database in one snapshot."""

    due: int = 0
    oldest_due_seconds: float = 0.0
    by_state: dict[tuple[str, str], int] = field(default_factory=dict)  # (state, channel) -> touches
    sending_expired: int = 0
    delays: dict[str, DelayHistogram] = field(default_factory=dict)  # channel -> histogram
    events: dict[str, int] = field(default_factory=dict)  # kind -> events


# --- the queries ---------------------------------------------------------------------------
# The backlog and the expired claims read only pending rows, through the partial indexes
# of the planned and the sending touches: milliseconds at any size (12.5 ms with 8
# million touches). The counts by (state, channel) and the delay
# histogram also need channel and sent_at, which no index has: they scan the table
# (PostgreSQL: in parallel). Measured with 3 million touches (1.2 million sent) on a busy
# 2-core machine: 0.7 s and 1.2 s, the backlog 15 ms. An index on touches (state,
# channel, due_at, sent_at) lets PostgreSQL read the index alone, but saved little there:
# the cost is the aggregation itself. What would make these constant is a table of
# counts kept up to date where touches change state (a migration and the store's write
# path), not an index.


def _state_is(state: str) -> ColumnElement[bool]:
    # The state as a literal, not a bound parameter: a partial index (WHERE state =
    # 'planned') is only used when the query names the same constant; neither SQLite nor
    # a prepared PostgreSQL plan can prove a parameter equal to it.
    assert state in STATES
    return touches.c.state == literal_column(f"'{state}'")


def _backlog(conn: Connection, now: datetime) -> tuple[int, datetime | None]:
    due = _state_is("planned") & (touches.c.due_at <= now)
    row = conn.execute(select(func.count(), func.min(touches.c.due_at)).where(due)).one()
    return int(row[0]), row[1]


def _by_state(conn: Connection) -> dict[tuple[str, str], int]:
    query = select(touches.c.state, touches.c.channel, func.count()).group_by(touches.c.state, touches.c.channel)
    return {(state, channel): int(n) for state, channel, n in conn.execute(query)}


def _sending_expired(conn: Connection, now: datetime, lease: timedelta) -> int:
    # The same condition as the recovery in the sender (touchrows.recover_interrupted).
    query = select(func.count()).where(_state_is("sending"), touches.c.claimed_at <= now - lease)
    return int(conn.scalar(query) or 0)


def _delay_seconds(dialect: str) -> ColumnElement[float]:
    """sent_at - due_at in seconds, computed by the database, as a float."""
    if dialect == "postgresql":
        # date_part gives a float; EXTRACT gives a numeric (PostgreSQL 14+), slower to compute and compare.
        return func.date_part("epoch", touches.c.sent_at - touches.c.due_at)
    # SQLite: julianday() is a float of days; rounding to the millisecond keeps a delay of
    # exactly one bucket bound inside that bucket instead of 1e-5 s past it.
    return func.round((func.julianday(touches.c.sent_at) - func.julianday(touches.c.due_at)) * 86400.0, 3)


def _delays(conn: Connection) -> dict[str, DelayHistogram]:
    """One grouped query, a row per channel: each bucket is a sum of CASE over the sent
    touches, so the database returns the cumulative counts Prometheus wants. (Grouping by
    a CASE bucket instead was slower on PostgreSQL: it misjudges the number of groups and
    sorts rather than hashes.)"""
    sent = (
        select(touches.c.channel, _delay_seconds(conn.dialect.name).label("delay"))
        .where(_state_is("sent"), touches.c.sent_at.is_not(None))
        # OFFSET 0 keeps the subquery from being merged into the outer query, which
        # would compute the delay once per bucket instead of once per row (2x slower).
        .offset(0)
        .subquery("sent")
    )
    within = [func.sum(case((sent.c.delay <= bound, 1), else_=0)) for bound in DELAY_BUCKETS]
    query = select(sent.c.channel, func.count(), func.coalesce(func.sum(sent.c.delay), 0), *within).group_by(
        sent.c.channel
    )
    out: dict[str, DelayHistogram] = {}
    for channel, count, total, *cumulative in conn.execute(query):
        out[channel] = DelayHistogram(tuple(int(n or 0) for n in cumulative), int(count), float(total))
    return out


def _events(conn: Connection) -> dict[str, int]:
    query = select(events.c.kind, func.count()).group_by(events.c.kind)
    return {kind: int(n) for kind, n in conn.execute(query)}


def read_figures(conn: Connection, now: datetime, lease: timedelta) -> Figures:
    """Every figure; a claim older than `lease` counts as expired (its worker died)."""
    due, oldest = _backlog(conn, now)
    return Figures(
        due=due,
        oldest_due_seconds=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        by_state=_by_state(conn),
        sending_expired=_sending_expired(conn, now, lease),
        delays=_delays(conn),
        events=_events(conn),
    )


# --- reading without getting in the workers' way ---------------------------------------


def _sqlite_reader(store: Store) -> Engine:
    """A read-only engine on the same SQLite file.

    The store's engine opens every transaction with BEGIN IMMEDIATE (the write lock), so
    that read-then-write never deadlocks; a scrape only reads, and under WAL a plain
    (deferred) BEGIN reads a snapshot without ever blocking the worker's writes. NullPool:
    the engine holds no connection between scrapes, so it needs no disposing.
    """
    engine = create_engine(store.engine.url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _deferred_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # one snapshot for all the scrape's queries

    return engine


class FigureReader:
    """Reads the figures in one snapshot, on a connection that never holds up a worker."""

    def __init__(self, store: Store, lease: timedelta):
        self.store = store
        self.lease = lease
        self._engine = _sqlite_reader(store) if store.dialect == "sqlite" else store.engine

    def read(self, now: datetime) -> Figures:
        with self._engine.connect() as conn:
            if self.store.is_postgres:
                # One snapshot for every query, so the delay histogram's count matches the
                # sent counter; read only, it never takes a lock a worker waits for.
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                return read_figures(conn, now, self.lease)
