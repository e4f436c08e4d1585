"""The report's outcome queries: enrolment, events attributed to the touches they answer,
stage movements, time to conversion, leads by stage, sends by week.

Every figure is a GROUP BY in the database: nothing here reads one row per lead into
Python. The events the report attributes are few next to the touches (a lead replies or
converts once, it is sent a dozen touches), so finding the touch an event answers is an
index probe per event (`uq_touch_key` leads with lead_id), not a join of all touches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql import ColumnElement, Select

from dripper.campaign.timing import Duration
from dripper.states import TouchState
from dripper.store.tables import Id, UTCDateTime, events, leads, touches

# The event kinds the report counts, each with the figure it is counted as.
OUTCOMES = {
    "replied": "replies",
    "converted": "conversions",
    "unsubscribed": "unsubscribes",
    "bounced": "bounces",
    "complained": "complaints",
}


@contextmanager
def without_jit(conn: Connection) -> Iterator[None]:
    """PostgreSQL's JIT compiler off for the statements inside (in this transaction).

    The outcome queries probe an index once per event; PostgreSQL costs each probe as a
    random read, finds the whole well above jit_above_cost, and spent longer compiling
    a statement than it took to run without."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = conn.scalar(text("SHOW jit"))
    conn.execute(text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        conn.execute(text("SELECT set_config('jit', :value, true)"), {"value": before})


def enrolled_by_campaign(conn: Connection) -> dict[str, int]:
    """campaign -> leads with any touch row in it (leads that entered one of its tracks).

    Grouped by (lead, campaign) in that order, the order of `uq_touch_key`: PostgreSQL
    reads the index alone, in order, instead of sorting every touch (docs/performance.md
    has the figures)."""
    pairs = select(touches.c.lead_id, touches.c.campaign).group_by(touches.c.lead_id, touches.c.campaign).subquery()
    query = select(pairs.c.campaign, func.count()).group_by(pairs.c.campaign)
    return {row[0]: row[1] for row in conn.execute(query)}


def _within(
    conn: Connection, at: ColumnElement[Any], sent_at: ColumnElement[Any], window: Duration
) -> ColumnElement[bool]:
    """`at` is no later than `window` after `sent_at` (calendar months and days in UTC)."""
    if conn.dialect.name == "postgresql":
        span: ColumnElement[Any] = literal_column(
            f"interval '{window.months} months {window.days} days {window.seconds} seconds'"
        )
        return at <= sent_at + span
    # SQLite keeps times as text: compared as Julian day numbers, with the window applied
    # by SQLite's own date modifiers.
    return func.julianday(at) <= func.julianday(
        sent_at, f"+{window.months} months", f"+{window.days} days", f"+{window.seconds} seconds"
    )


def _days(conn: Connection, later: ColumnElement[Any], earlier: ColumnElement[Any]) -> ColumnElement[float | Decimal]:
    if conn.dialect.name == "postgresql":
        return func.date_part("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _attributed(conn: Connection, window: Duration) -> Select[Any]:
    """One row per outcome event (id, lead, kind, at): the campaign and step of the touch
    it is counted for (and the A/B variant that touch was sent with), or its lead's
    campaign and no step; for a conversion, when the first touch in that campaign was sent.

    An event whose detail names its touch (inbound mail matched to the message it
    answers, a hard bounce at send time) counts for that touch. Any other counts for the
    last touch sent to the lead before it, if the event came within `window` of it (the
    last one sent is the latest, so if it is too long ago, every earlier one is too);
    else it is unattributed, and counted in the lead's current campaign (an event
    of a lead deleted since has no row here).

    Each event finds its touch by an index probe (by id; by lead in `uq_touch_key`). On
    PostgreSQL that takes LATERAL joins: a plain join with the touch found let it hash
    every touch of the table, however few the events."""
    # In lead order: the probes then walk `uq_touch_key` from one end to the other, rather
    # than all over it (a report with a cold cache spent seconds reading its pages).
    ev = (
        select(events.c.id, events.c.lead_id, events.c.kind, events.c.at, events.c.detail)
        .where(events.c.kind.in_(list(OUTCOMES)), events.c.lead_id.is_not(None))
        .order_by(events.c.lead_id)
        .subquery("ev")
    )
    named = cast(ev.c.detail["touch"].as_string(), BigInteger)
    last = touches.alias("last_sent")
    latest = and_(
        last.c.lead_id == ev.c.lead_id,
        last.c.state == TouchState.SENT,
        last.c.sent_at < ev.c.at,
        _within(conn, ev.c.at, last.c.sent_at, window),
    )
    newest_first = (last.c.sent_at.desc(), last.c.id.desc())
    campaign: ColumnElement[str]
    step: ColumnElement[str]
    variant: ColumnElement[str]
    if conn.dialect.name == "postgresql":
        by_id = touches.alias("named_touch")
        # LIMIT 1 keeps it a probe: PostgreSQL turns a LATERAL subquery without one into a
        # plain join, and merged every touch by id with the events.
        named_touch = (
            select(by_id.c.campaign, by_id.c.step_id, by_id.c.variant)
            .where(by_id.c.id == named)
            .limit(1)
            .lateral("named_touch")
        )
        last_touch = (
            select(last.c.campaign, last.c.step_id, last.c.variant)
            .where(named.is_(None), latest)
            .order_by(*newest_first)
            .limit(1)
            .lateral("last_touch")
        )
        source = ev.outerjoin(named_touch, true()).outerjoin(last_touch, true())
        campaign = func.coalesce(named_touch.c.campaign, last_touch.c.campaign)
        step = func.coalesce(named_touch.c.step_id, last_touch.c.step_id)
        variant = func.coalesce(named_touch.c.variant, last_touch.c.variant)
    else:  # SQLite joins by nested loops, the touch by its rowid
        last_id = select(last.c.id).where(latest).order_by(*newest_first).limit(1).correlate(ev).scalar_subquery()
        touch = touches.alias("touch")
        source = ev.outerjoin(touch, touch.c.id == func.coalesce(named, last_id))
        campaign, step, variant = touch.c.campaign, touch.c.step_id, touch.c.variant
    # The lead's campaign, looked up only for an event no touch was found for: a join with
    # the leads would read all of them.
    own = select(leads.c.campaign).where(leads.c.id == ev.c.lead_id).correlate(ev).scalar_subquery()
    counted_in = func.coalesce(campaign, own)
    # A conversion's first touch sent in its campaign, found here, while the lead's touches
    # were just read for the one it answers.
    sent = touches.alias("sent")
    first_sent = (
        select(func.min(sent.c.sent_at))
        .where(
            sent.c.lead_id == ev.c.lead_id,
            sent.c.campaign == counted_in,
            sent.c.state == TouchState.SENT,
            sent.c.sent_at <= ev.c.at,
        )
        .correlate_except(sent)
        .scalar_subquery()
    )
    return select(
        ev.c.id,
        ev.c.lead_id,
        ev.c.kind,
        ev.c.at,
        counted_in,
        step,
        case((ev.c.kind == "converted", first_sent)),
        variant,
    ).select_from(source)


@dataclass(frozen=True)
class TimeToConversion:
    leads: int
    median_days: float
    p90_days: float


@dataclass
class Outcomes:
    # (campaign, step, kind) -> events counted for touches of that step
    by_step: dict[tuple[str, str, str], int]
    # (campaign, kind) -> events with no touch to count them for
    unattributed: dict[tuple[str, str], int]
    # campaign -> days from first touch to conversion, over its converted leads
    time_to_conversion: dict[str, TimeToConversion]
    # (campaign, step, variant, kind) -> events counted for touches sent with that A/B variant
    by_variant: dict[tuple[str, str, str, str], int] = field(default_factory=dict)


# The outcome events as attributed (see `_attributed`): found once, a probe per event, and
# read twice. A temporary table, as the count of what is to come uses (touchrows).
_temp = MetaData()
report_outcomes = Table(
    "report_outcomes",
    _temp,
    Column("event_id", Id, nullable=False),
    Column("lead_id", Id, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("campaign", String(200)),
    Column("step_id", String(200)),  # NULL: unattributed
    Column("first_sent", UTCDateTime),  # conversions: the first touch sent in the campaign
    Column("variant", String(64)),  # the A/B variant of the touch it is counted for
    prefixes=["TEMPORARY"],
)


def outcomes(conn: Connection, window: Duration) -> Outcomes:
    """The outcome events (replies, conversions, ...) counted by the touch they answer,
    and the time from first touch to conversion."""
    conn.execute(DropTable(report_outcomes, if_exists=True))
    conn.execute(CreateTable(report_outcomes))
    conn.execute(
        insert(report_outcomes).from_select(
            ["event_id", "lead_id", "kind", "at", "campaign", "step_id", "first_sent", "variant"],
            _attributed(conn, window),
        )
    )
    if conn.dialect.name == "postgresql":  # autovacuum never sees temporary tables
        conn.execute(text("ANALYZE report_outcomes"))
    rows = report_outcomes
    query = select(rows.c.campaign, rows.c.step_id, rows.c.kind, func.count()).group_by(
        rows.c.campaign, rows.c.step_id, rows.c.kind
    )
    out = Outcomes({}, {}, {})
    for campaign, step, kind, n in conn.execute(query):
        if step is not None:
            out.by_step[(campaign, step, kind)] = n
        else:
            out.unattributed[(campaign, kind)] = n
    by_variant = (
        select(rows.c.campaign, rows.c.step_id, rows.c.variant, rows.c.kind, func.count())
        .where(rows.c.variant.is_not(None))
        .group_by(rows.c.campaign, rows.c.step_id, rows.c.variant, rows.c.kind)
    )
    out.by_variant = {(c, s, v, k): n for c, s, v, k, n in conn.execute(by_variant)}
    out.time_to_conversion = _time_to_conversion(conn)
    conn.execute(DropTable(report_outcomes))
    return out


def _time_to_conversion(conn: Connection) -> dict[str, TimeToConversion]:
    """campaign -> days from a converted lead's first touch sent in the campaign to its
    (first) conversion: how many leads, the median, the 90th percentile.

    The conversion's campaign is the one it is counted in (see `_attributed`). Ranked in
    the database: only the rows at the two percentiles' ranks come back."""
    rows = report_outcomes
    first_conversion = (
        select(
            rows.c.campaign,
            rows.c.at,
            rows.c.first_sent,
            func.row_number().over(partition_by=rows.c.lead_id, order_by=(rows.c.at, rows.c.event_id)).label("n"),
        )
        .where(rows.c.kind == "converted")
        .subquery("first_conversion")
    )
    spans = (
        select(
            first_conversion.c.campaign, _days(conn, first_conversion.c.at, first_conversion.c.first_sent).label("days")
        )
        .where(first_conversion.c.n == 1, first_conversion.c.first_sent.is_not(None))
        .subquery("spans")
    )
    ranked = select(
        spans.c.campaign,
        spans.c.days,
        func.row_number().over(partition_by=spans.c.campaign, order_by=spans.c.days).label("rank"),
        func.count().over(partition_by=spans.c.campaign).label("leads"),
    ).subquery("ranked")
    n = ranked.c.leads
    # percentile_cont's ranks (1-based), in integer arithmetic that both databases share:
    # the median lies between ranks (n-1)//2+1 and n//2+1, the 90th between 9(n-1)//10+1
    # and (9(n-1)+9)//10+1.
    wanted = [(n - 1) // 2 + 1, n // 2 + 1, (9 * (n - 1)) // 10 + 1, (9 * (n - 1) + 9) // 10 + 1]
    query = select(ranked.c.campaign, ranked.c.leads, ranked.c.rank, ranked.c.days).where(
        or_(*(ranked.c.rank == rank for rank in wanted))
    )
    found: dict[str, tuple[int, dict[int, float]]] = {}
    for campaign, count, rank, value in conn.execute(query):
        found.setdefault(campaign, (count, {}))[1][rank] = float(value)
    return {
        campaign: TimeToConversion(count, _percentile(values, count, 5), _percentile(values, count, 9))
        for campaign, (count, values) in found.items()
    }


def _percentile(by_rank: dict[int, float], n: int, tenths: int) -> float:
    """The `tenths`/10 percentile of n values known by rank at the ranks around it: linear
    interpolation between them, as PostgreSQL's percentile_cont (in integer arithmetic,
    so that the ranks are the ones the query chose)."""
    scaled = tenths * (n - 1)  # ten times the 0-based position
    low, high = scaled // 10, -(-scaled // 10)
    below, above = by_rank[low + 1], by_rank[high + 1]
    return below + (scaled - 10 * low) / 10 * (above - below)


def sent_by_variant(conn: Connection) -> dict[tuple[str, str, str], int]:
    """(campaign, step, A/B variant) -> touches sent with that variant."""
    query = (
        select(touches.c.campaign, touches.c.step_id, touches.c.variant, func.count())
        .where(touches.c.state == TouchState.SENT, touches.c.variant.is_not(None))
        .group_by(touches.c.campaign, touches.c.step_id, touches.c.variant)
    )
    return {(c, s, v): n for c, s, v, n in conn.execute(query)}


def movements(conn: Connection) -> dict[tuple[str, str | None, str], int]:
    """(campaign, from stage, to stage) -> stage changes recorded (events `stage` that say
    where from and where to; older ones only say where to, and are left out)."""
    # Grouped by the columns of a subquery: an expression with bound values (the JSON keys)
    # written twice is two expressions to PostgreSQL, which then refuses the GROUP BY.
    own = select(leads.c.campaign).where(leads.c.id == events.c.lead_id).correlate(events).scalar_subquery()
    moves = (
        select(
            func.coalesce(events.c.detail["campaign"].as_string(), own).label("campaign"),
            events.c.detail["from"].as_string().label("moved_from"),
            events.c.detail["to"].as_string().label("moved_to"),
        )
        .where(events.c.kind == "stage", events.c.lead_id.is_not(None))
        .subquery("moves")
    )
    query = (
        select(moves.c.campaign, moves.c.moved_from, moves.c.moved_to, func.count())
        .where(moves.c.moved_to.is_not(None))
        .group_by(moves.c.campaign, moves.c.moved_from, moves.c.moved_to)
    )
    return {(c, f, t): n for c, f, t, n in conn.execute(query)}


def leads_by_stage(conn: Connection) -> dict[tuple[str, str], int]:
    """(campaign, stage) -> leads there now."""
    query = select(leads.c.campaign, leads.c.stage, func.count()).group_by(leads.c.campaign, leads.c.stage)
    return {(campaign, stage): n for campaign, stage, n in conn.execute(query)}


def sent_by_week(conn: Connection) -> dict[tuple[str, date, str], int]:
    """(campaign, the Monday of the week (UTC), channel) -> touches sent that week."""
    if conn.dialect.name == "postgresql":
        week: ColumnElement[Any] = func.date_trunc("week", touches.c.sent_at)
    else:  # the Sunday on or after the day, less six days: its Monday
        week = func.date(touches.c.sent_at, "weekday 0", "-6 days")
    sent = (
        select(touches.c.campaign, week.label("week"), touches.c.channel)
        .where(touches.c.state == TouchState.SENT, touches.c.sent_at.is_not(None))
        .subquery("sent")
    )
    query = select(sent.c.campaign, sent.c.week, sent.c.channel, func.count()).group_by(
        sent.c.campaign, sent.c.week, sent.c.channel
    )
    return {(campaign, _as_date(monday), channel): n for campaign, monday, channel, n in conn.execute(query)}


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


__all__ = [
    "OUTCOMES",
    "Outcomes",
    "TimeToConversion",
    "enrolled_by_campaign",
    "leads_by_stage",
    "movements",
    "outcomes",
    "sent_by_variant",
    "sent_by_week",
]
