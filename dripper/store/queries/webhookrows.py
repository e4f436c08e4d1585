"""Webhook subscriptions and the outbox: every query (dripper/webhooks/ drives them).

An event is enqueued in the caller's open transaction, the one that records the event:
both are committed or neither. With no subscription listening, enqueueing is one indexed
read and nothing else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from dripper.store.tables import leads, webhook_outbox, webhook_subscriptions

PENDING = "pending"
DELIVERING = "delivering"
DELIVERED = "delivered"
DEAD = "dead"
OUTBOX_STATES = (PENDING, DELIVERING, DELIVERED, DEAD)


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    events: tuple[str, ...]
    secret: str | None
    secret_env: str | None
    source: str
    created_at: datetime
    removed_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """An outbox row."""

    id: int
    subscription_id: int
    message_id: str
    event: str
    payload: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None


def encode_events(events: Sequence[str]) -> str:
    return "," + ",".join(events) + ","


def _subscription(row: Any) -> Subscription:
    m = row._mapping
    return Subscription(
        m["id"],
        m["url"],
        tuple(e for e in m["events"].split(",") if e),
        m["secret"],
        m["secret_env"],
        m["source"],
        m["created_at"],
        m["removed_at"],
    )


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(*(m[name] for name in Delivery.__dataclass_fields__))


def add_subscription(
    conn: Connection,
    url: str,
    events: Sequence[str],
    at: datetime,
    *,
    source: str = "cli",
    secret: str | None = None,
    secret_env: str | None = None,
) -> int:
    values = {
        "url": url,
        "events": encode_events(events),
        "secret": secret,
        "secret_env": secret_env,
        "source": source,
        "created_at": at,
    }
    return int(
        conn.execute(insert(webhook_subscriptions).values(**values).returning(webhook_subscriptions.c.id)).scalar_one()
    )


def subscriptions(conn: Connection, *, include_removed: bool = False) -> list[Subscription]:
    query = select(webhook_subscriptions).order_by(webhook_subscriptions.c.id)
    if not include_removed:
        query = query.where(webhook_subscriptions.c.removed_at.is_(None))
    return [_subscription(row) for row in conn.execute(query)]


def subscription(conn: Connection, sub_id: int) -> Subscription | None:
    row = conn.execute(select(webhook_subscriptions).where(webhook_subscriptions.c.id == sub_id)).first()
    return _subscription(row) if row is not None else None


def remove_subscription(conn: Connection, sub_id: int, at: datetime) -> bool:
    result = conn.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.id == sub_id, webhook_subscriptions.c.removed_at.is_(None))
        .values(removed_at=at)
    )
    return bool(result.rowcount)


def sync_file_subscriptions(conn: Connection, wanted: Sequence[tuple[str, tuple[str, ...], str]], at: datetime) -> None:
    """Make the `file` subscriptions those of campaigns.yaml (url, events, secret_env):
    one that left the file is marked removed (its deliveries go on), a changed one is
    replaced."""
    current = {(s.url, s.events, s.secret_env or ""): s.id for s in subscriptions(conn) if s.source == "file"}
    keep = {(url, tuple(events), env) for url, events, env in wanted}
    for key, sub_id in current.items():
        if key not in keep:
            remove_subscription(conn, sub_id, at)
    for url, events, env in keep:
        if (url, events, env) not in current:
            add_subscription(conn, url, events, at, source="file", secret_env=env)


def listeners(conn: Connection, events: Sequence[str]) -> dict[str, list[int]]:
    """The live subscriptions listening to each of `events` (one read for all)."""
    t = webhook_subscriptions
    out: dict[str, list[int]] = {event: [] for event in events}
    rows = conn.execute(select(t.c.id, t.c.events).where(t.c.removed_at.is_(None))).all()
    for sub_id, encoded in rows:
        for event in events:
            if ",*," in encoded or f",{event}," in encoded:
                out[event].append(sub_id)
    return out


def envelope(event: str, at: datetime, data: Mapping[str, Any]) -> str:
    """The body per Standard Webhooks: type, timestamp, data."""
    return json.dumps({"type": event, "timestamp": at.isoformat(), "data": data}, default=str, ensure_ascii=False)


def enqueue_many(
    conn: Connection, subscribers: Sequence[int], event: str, at: datetime, payloads: Sequence[Mapping[str, Any]]
) -> int:
    """One outbox row per (payload, subscriber), in one executemany."""
    rows = [
        {
            "subscription_id": sub_id,
            "message_id": f"msg_{uuid.uuid4().hex}",
            "event": event,
            "payload": envelope(event, at, data),
            "state": PENDING,
            "attempts": 0,
            "created_at": at,
            "next_attempt_at": at,
        }
        for data in payloads
        for sub_id in subscribers
    ]
    if rows:
        conn.execute(insert(webhook_outbox), rows)
    return len(rows)


def lead_brief(conn: Connection, lead_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What a payload says of each lead: id, email, stage, campaign."""
    if not lead_ids:
        return {}
    query = select(leads.c.id, leads.c.email, leads.c.stage, leads.c.campaign).where(leads.c.id.in_(set(lead_ids)))
    return {
        row.id: {"id": row.id, "email": row.email, "stage": row.stage, "campaign": row.campaign}
        for row in conn.execute(query)
    }


def enqueue_event(conn: Connection, event: str, lead_id: int | None, at: datetime, data: Mapping[str, Any]) -> int:
    """Enqueue one event about a lead for every subscription listening to it; with none
    listening, nothing but the read of the subscriptions."""
    subscribers = listeners(conn, [event])[event]
    if not subscribers:
        return 0
    lead = lead_brief(conn, [lead_id]).get(lead_id) if lead_id is not None else None
    return enqueue_many(conn, subscribers, event, at, [{"lead": lead, **data}])


# --- delivery --------------------------------------------------------------------------
def claim(conn: Connection, now: datetime, worker: str, lease_until: datetime, limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries (and those whose lease ran out): -> delivering.
    PostgreSQL: FOR UPDATE SKIP LOCKED, so several workers deliver side by side; SQLite
    serialises writers, so there one worker delivers at a time."""
    t = webhook_outbox
    due = (
        select(t.c.id)
        .where(
            or_(
                and_(t.c.state == PENDING, t.c.next_attempt_at <= now),
                and_(t.c.state == DELIVERING, t.c.lease_until < now),
            )
        )
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row[0] for row in conn.execute(due)]
    if not ids:
        return []
    conn.execute(update(t).where(t.c.id.in_(ids)).values(state=DELIVERING, lease_until=lease_until, claimed_by=worker))
    return [_delivery(row) for row in conn.execute(select(t).where(t.c.id.in_(ids)).order_by(t.c.id))]


def purge_delivered(conn: Connection, before: datetime) -> int:
    """Delete the rows delivered before `before` (dead and pending ones stay)."""
    t = webhook_outbox
    return int(conn.execute(delete(t).where(t.c.state == DELIVERED, t.c.delivered_at < before)).rowcount or 0)


def finish(conn: Connection, delivery_id: int, worker: str, **values: Any) -> bool:
    """Record an attempt's result, if this worker still holds the row."""
    t = webhook_outbox
    result = conn.execute(
        update(t)
        .where(t.c.id == delivery_id, t.c.state == DELIVERING, t.c.claimed_by == worker)
        .values(lease_until=None, claimed_by=None, **values)
    )
    return bool(result.rowcount)


def listing(conn: Connection, state: str | None = None, limit: int = 200) -> list[tuple[Delivery, str]]:
    """Outbox rows (newest first) with their subscription's URL."""
    t, s = webhook_outbox, webhook_subscriptions
    query = select(t, s.c.url).join(s, s.c.id == t.c.subscription_id).order_by(t.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(t.c.state == state)
    return [(_delivery(row), row.url) for row in conn.execute(query)]


def counts(conn: Connection) -> dict[str, int]:
    t = webhook_outbox
    found: dict[str, int] = dict(conn.execute(select(t.c.state, func.count()).group_by(t.c.state)).all())
    return {state: int(found.get(state, 0)) for state in OUTBOX_STATES}


def retry(conn: Connection, ids: Sequence[int] | None, at: datetime) -> int:
    """Dead deliveries (these, or all) back to pending, due at once, attempts from zero."""
    t = webhook_outbox
    query = update(t).where(t.c.state == DEAD)
    if ids is not None:
        query = query.where(t.c.id.in_(ids))
    return int(conn.execute(query.values(state=PENDING, attempts=0, next_attempt_at=at, created_at=at)).rowcount or 0)
