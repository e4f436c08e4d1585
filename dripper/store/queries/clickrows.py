"""Clicks on tracked links (`tracking: {clicks: true}`): recorded, reclassified as a
scanner's, and read back for conditions, reports and a lead's timeline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from dripper.states import EventKind
from dripper.store import upsert
from dripper.store.queries import webhookrows
from dripper.store.tables import clicks, events, opens, touches
from dripper.webhooks.events import WebhookEvent


@dataclass(frozen=True)
class ClickedTouch:
    """The touch a click token names, as the click is recorded against it."""

    id: int
    lead_id: int
    campaign: str
    step_id: str
    sent_at: datetime | None


@dataclass(frozen=True)
class Click:
    """One recorded request to a tracked link."""

    id: int
    touch_id: int
    url: str
    at: datetime
    scanner: str | None


@dataclass(frozen=True)
class NewClick:
    touch: ClickedTouch
    url: str
    at: datetime
    method: str
    user_agent: str
    scanner: str | None


def touch_for_click(conn: Connection, touch_id: int) -> ClickedTouch | None:
    """The touch, or None when it is gone (its lead forgotten): the click still lands."""
    row = conn.execute(
        select(touches.c.id, touches.c.lead_id, touches.c.campaign, touches.c.step_id, touches.c.sent_at).where(
            touches.c.id == touch_id
        )
    ).first()
    return ClickedTouch(*row) if row is not None else None


def count_for_link(conn: Connection, touch_id: int, url: str) -> int:
    return conn.scalar(select(func.count()).where(clicks.c.touch_id == touch_id, clicks.c.url == url)) or 0


def insert_click(conn: Connection, click: NewClick) -> int:
    """Record the click; a person's click (no `scanner`) is also an event `clicked`."""
    touch = click.touch
    event_id = None
    if click.scanner is None:
        event_id = conn.execute(
            insert(events)
            .values(
                lead_id=touch.lead_id,
                kind=EventKind.CLICKED,
                at=click.at,
                source="click",
                detail={"campaign": touch.campaign, "step": touch.step_id, "touch": touch.id, "url": click.url},
            )
            .returning(events.c.id)
        ).scalar_one()
        detail = {"campaign": touch.campaign, "step": touch.step_id, "touch": touch.id, "url": click.url}
        webhookrows.enqueue_event(conn, WebhookEvent.CLICK, touch.lead_id, click.at, {"at": click.at, **detail})
    return int(
        conn.execute(
            insert(clicks)
            .values(
                touch_id=touch.id,
                lead_id=touch.lead_id,
                campaign=touch.campaign,
                step_id=touch.step_id,
                url=click.url,
                at=click.at,
                method=click.method[:8],
                user_agent=click.user_agent[:300],
                scanner=click.scanner,
                event_id=event_id,
            )
            .returning(clicks.c.id)
        ).scalar_one()
    )


def clicks_between(conn: Connection, touch_id: int, start: datetime, end: datetime) -> list[Click]:
    """The touch's clicks from `start` to `end`, inclusive, in order."""
    query = (
        select(clicks.c.id, clicks.c.touch_id, clicks.c.url, clicks.c.at, clicks.c.scanner)
        .where(clicks.c.touch_id == touch_id, clicks.c.at >= start, clicks.c.at <= end)
        .order_by(clicks.c.at, clicks.c.id)
    )
    return [Click(*row) for row in conn.execute(query)]


def mark_scanner(conn: Connection, click_ids: Iterable[int], scanner: str) -> None:
    """Take these clicks for a scanner's: each loses its `clicked` event, if it had one."""
    ids = list(click_ids)
    if not ids:
        return
    owned = select(clicks.c.event_id).where(clicks.c.id.in_(ids), clicks.c.event_id.is_not(None))
    event_ids = [row[0] for row in conn.execute(owned)]
    conn.execute(update(clicks).where(clicks.c.id.in_(ids)).values(scanner=scanner, event_id=None))
    if event_ids:
        conn.execute(delete(events).where(events.c.id.in_(event_ids)))


def has_clicked(
    conn: Connection, lead_id: int, campaign: str, step_id: str | None = None, *, url: str | None = None
) -> bool:
    """Whether a person (not a scanner) followed a tracked link in a message of the lead's
    campaign: of the step `step_id` when given, to `url` when given. What a step's
    condition asks (`when: clicked('research-new-products')`)."""
    query = select(clicks.c.id).where(
        clicks.c.lead_id == lead_id, clicks.c.campaign == campaign, clicks.c.scanner.is_(None)
    )
    if step_id is not None:
        query = query.where(clicks.c.step_id == step_id)
    if url is not None:
        query = query.where(clicks.c.url == url)
    return conn.execute(query.limit(1)).first() is not None


@dataclass(frozen=True)
class StepClicks:
    """Per (campaign, step[, url]): the touches a person clicked in, their clicks, and the
    clicks taken for a scanner's."""

    touches: int
    clicks: int
    scanner_clicks: int


def _figures(keys: tuple[str, ...], conn: Connection) -> dict[tuple[str, ...], StepClicks]:
    columns = [getattr(clicks.c, k) for k in keys]
    person = clicks.c.scanner.is_(None)
    query = select(
        *columns,
        func.count(func.distinct(clicks.c.touch_id)).filter(person),
        func.count().filter(person),
        func.count().filter(clicks.c.scanner.is_not(None)),
    ).group_by(*columns)
    return {tuple(row[: len(keys)]): StepClicks(*(int(n) for n in row[len(keys) :])) for row in conn.execute(query)}


def by_step(conn: Connection) -> dict[tuple[str, str], StepClicks]:
    """(campaign, step) -> its click figures."""
    return {(c, s): v for (c, s), v in _figures(("campaign", "step_id"), conn).items()}


def by_link(conn: Connection) -> dict[tuple[str, str, str], StepClicks]:
    """(campaign, step, target URL) -> its click figures."""
    return {(c, s, u): v for (c, s, u), v in _figures(("campaign", "step_id", "url"), conn).items()}


def clicked_by_variant(conn: Connection) -> dict[tuple[str, str, str], int]:
    """(campaign, step, A/B variant) -> touches of that variant a person clicked a link in."""
    query = (
        select(clicks.c.campaign, clicks.c.step_id, touches.c.variant, func.count(func.distinct(clicks.c.touch_id)))
        .join(touches, touches.c.id == clicks.c.touch_id)
        .where(clicks.c.scanner.is_(None), touches.c.variant.is_not(None))
        .group_by(clicks.c.campaign, clicks.c.step_id, touches.c.variant)
    )
    return {(c, s, v): int(n) for c, s, v, n in conn.execute(query)}


def record_open(conn: Connection, touch: ClickedTouch, at: datetime) -> bool:
    """Count a load of the touch's open pixel; True when it is the first (then also an
    event `opened`, so the lead's course shows it once)."""
    counted = conn.execute(
        update(opens).where(opens.c.touch_id == touch.id).values(count=opens.c.count + 1, last_at=at)
    ).rowcount
    if counted:
        return False
    first = conn.execute(
        upsert.insert(conn, opens)
        .values(
            touch_id=touch.id,
            lead_id=touch.lead_id,
            campaign=touch.campaign,
            step_id=touch.step_id,
            first_at=at,
            last_at=at,
            count=1,
        )
        .on_conflict_do_nothing(index_elements=["touch_id"])
    ).rowcount
    if not first:  # another request recorded the first load meanwhile
        return record_open(conn, touch, at)
    conn.execute(
        insert(events).values(
            lead_id=touch.lead_id,
            kind=EventKind.OPENED,
            at=at,
            source="open",
            detail={"campaign": touch.campaign, "step": touch.step_id, "touch": touch.id},
        )
    )
    return True


def opened_by_step(conn: Connection) -> dict[tuple[str, str], int]:
    """(campaign, step) -> messages whose open pixel loaded at least once."""
    query = select(opens.c.campaign, opens.c.step_id, func.count()).group_by(opens.c.campaign, opens.c.step_id)
    return {(c, s): int(n) for c, s, n in conn.execute(query)}


__all__ = [
    "Click",
    "ClickedTouch",
    "NewClick",
    "StepClicks",
    "by_link",
    "by_step",
    "clicked_by_variant",
    "clicks_between",
    "count_for_link",
    "has_clicked",
    "insert_click",
    "mark_scanner",
    "opened_by_step",
    "record_open",
    "touch_for_click",
]
