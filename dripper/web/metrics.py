"""Prometheus metrics for `GET /metrics` on `dripper serve`, read from the database at scrape time.

Why the database and not in-process counters: workers are separate processes (any number,
on any machine) and `serve` is yet another, so counters kept in memory would each tell a
part of the story and reset on every restart. The `touches` and `events` tables are the
single source of truth, so every scrape reports the same figures whichever worker sent
and however many there are.

Every figure is one aggregate query: nothing is loaded row by row into Python. The
counts and the histogram still read every touch, so a scrape's cost grows with the table
(see the note above the queries); `dripper_metrics_scrape_duration_seconds` shows it.

Metrics (what each one means is in its HELP text, and in the README):
- dripper_touches_due, dripper_touches_oldest_due_seconds   the backlog
- dripper_touches_total{state,channel}                      terminal states (counter)
- dripper_touches_pending{state,channel}                    planned / sending (gauge)
- dripper_touches_sending_expired                           claims past their lease: a dead worker
- dripper_send_delay_seconds{channel}                       histogram of sent_at - due_at
- dripper_events_total{kind}                                inbound events by kind
- dripper_metrics_scrape_duration_seconds                   what this scrape cost

There is no histogram of the SMTP transaction time: the database records when a touch
was claimed and when it was sent, not how long the SMTP conversation took, and the
difference (claim -> sent) mostly measures the queue inside a tick, not the server.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from sqlalchemy import Connection, Engine, case, create_engine, event, func, literal_column, select
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dripper.clock import Clock
from dripper.leads.events import KINDS
from dripper.sending.tick import LEASE
from dripper.store import Store
from dripper.store.tables import PENDING, STATES, events, touches
from dripper.web.guard import RETRY_AFTER, database_unavailable

log = logging.getLogger("dripper.metrics")

CHANNELS = ("email", "letter", "call")  # always exported, at 0 if need be: PromQL rate() needs the series
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


@dataclass
class DelayHistogram:
    """Cumulative counts per bucket bound (as Prometheus wants them), the count and the sum."""

    cumulative: list[int] = field(default_factory=lambda: [0] * len(DELAY_BUCKETS))
    count: int = 0
    total_seconds: float = 0.0

    def buckets(self) -> list[tuple[str, float]]:
        bounds = [floatToGoString(b) for b in DELAY_BUCKETS]
        return [*zip(bounds, map(float, self.cumulative), strict=False), ("+Inf", float(self.count))]


@dataclass
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


def _sending_expired(conn: Connection, now: datetime) -> int:
    # The same condition as the recovery in the sender (touchrows.recover_interrupted).
    query = select(func.count()).where(_state_is("sending"), touches.c.claimed_at <= now - LEASE)
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
        out[channel] = DelayHistogram([int(n or 0) for n in cumulative], int(count), float(total))
    return out


def _events(conn: Connection) -> dict[str, int]:
    query = select(events.c.kind, func.count()).group_by(events.c.kind)
    return {kind: int(n) for kind, n in conn.execute(query)}


def read_figures(conn: Connection, now: datetime) -> Figures:
    due, oldest = _backlog(conn, now)
    return Figures(
        due=due,
        oldest_due_seconds=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        by_state=_by_state(conn),
        sending_expired=_sending_expired(conn, now),
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
    def _read_only(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.isolation_level = None  # type: ignore[attr-defined]  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _deferred_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # one snapshot for all the scrape's queries

    return engine


class DripperCollector(Collector):
    """Reads the figures from the database each time Prometheus scrapes."""

    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock
        self._engine = _sqlite_reader(store) if store.dialect == "sqlite" else store.engine

    def figures(self) -> Figures:
        now = self.clock.now()
        with self._engine.connect() as conn:
            if self.store.is_postgres:
                # One snapshot for every query, so the delay histogram's count matches the
                # sent counter; read only, it never takes a lock a worker waits for.
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                return read_figures(conn, now)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        yield from families(self.figures())
        scrape = GaugeMetricFamily(
            "dripper_metrics_scrape_duration_seconds",
            "Seconds this scrape spent reading the database; watch it as the tables grow.",
        )
        scrape.add_metric([], time.perf_counter() - started)
        yield scrape

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database: describe the names without samples.
        return list(families(Figures()))


# --- the families ------------------------------------------------------------------------


def _backlog_families(figures: Figures) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "dripper_touches_due", "Touches planned and due now, not yet claimed by a worker.", value=figures.due
    )
    yield GaugeMetricFamily(
        "dripper_touches_oldest_due_seconds",
        "Age of the oldest due planned touch, in seconds; 0 when none is due.",
        value=figures.oldest_due_seconds,
    )
    yield GaugeMetricFamily(
        "dripper_touches_sending_expired",
        f"Touches in `sending` whose {int(LEASE.total_seconds())} s lease ran out: a worker died "
        "with them; the next tick resends them.",
        value=figures.sending_expired,
    )


def _state_families(figures: Figures) -> Iterator[Metric]:
    channels = sorted(set(CHANNELS) | {channel for _state, channel in figures.by_state})
    done = CounterMetricFamily(
        "dripper_touches", "Touches that reached a terminal state, by state and channel.", labels=["state", "channel"]
    )
    pending = GaugeMetricFamily(
        "dripper_touches_pending", "Touches not yet done (planned, sending), by channel.", labels=["state", "channel"]
    )
    for state in STATES:
        family = pending if state in PENDING else done
        for channel in channels:
            family.add_metric([state, channel], figures.by_state.get((state, channel), 0))
    yield done
    yield pending


def _delay_family(figures: Figures) -> Metric:
    histogram = HistogramMetricFamily(
        "dripper_send_delay_seconds",
        "How long sent touches waited once due: sent_at - due_at (the last due time: retries, limits and pauses "
        "move it on), in seconds, by channel.",
        labels=["channel"],
    )
    for channel in sorted(set(CHANNELS) | set(figures.delays)):
        found = figures.delays.get(channel, DelayHistogram())
        histogram.add_metric([channel], found.buckets(), sum_value=found.total_seconds)
    return histogram


def _event_family(figures: Figures) -> Metric:
    family = CounterMetricFamily(
        "dripper_events",
        "Events recorded for leads (replies, bounces, unsubscribes, stage changes...), by kind.",
        labels=["kind"],
    )
    for kind in sorted(set(KINDS) | set(figures.events)):
        family.add_metric([kind], figures.events.get(kind, 0))
    return family


def families(figures: Figures) -> Iterator[Metric]:
    yield from _backlog_families(figures)
    yield from _state_families(figures)
    yield _delay_family(figures)
    yield _event_family(figures)


# --- the endpoint ----------------------------------------------------------------------------


def registry_for(store: Store, clock: Clock) -> CollectorRegistry:
    # A registry of our own: the default one would add the `serve` process's own metrics,
    # which say nothing about the drips.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DripperCollector(store, clock))
    return registry


def _token_ok(request: Request, token: str | None) -> bool:
    if not token:
        return True  # no token set: open, on the interface `serve` binds (127.0.0.1 by default)
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def metrics_route(store: Store, clock: Clock, token: str | None) -> Route:
    """GET /metrics; with `token` set, only for `Authorization: Bearer <token>`."""
    registry = registry_for(store, clock)

    async def metrics(request: Request) -> Response:
        if not _token_ok(request, token):
            return PlainTextResponse(
                "a bearer token is required (DRIPPER_METRICS_TOKEN)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        try:
            body = await run_in_threadpool(encoder, registry)
        except Exception as exc:
            if not database_unavailable(exc):
                raise  # a bug: 500, logged by dripper.webguard
            # Prometheus records the failed scrape (up == 0); the log says why.
            log.error("metrics: the database did not answer: %s", exc)
            return PlainTextResponse(
                "database unreachable\n", status_code=503, headers={"Retry-After": str(RETRY_AFTER)}
            )
        return Response(body, media_type=content_type)

    return Route("/metrics", metrics, methods=["GET"])
