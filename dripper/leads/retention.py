"""Retention (`retention:` in campaigns.yaml): events older than `events` are deleted, and
the text kept from messages older than `bodies` is blanked. Run by `dripper leads purge`
and every hour by `dripper run`'s housekeeping; the instant is the caller's clock's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from dripper.campaign.model import Retention
from dripper.campaign.timing import Duration
from dripper.store.queries import privacyrows


@dataclass(frozen=True)
class Purged:
    events_before: datetime
    events: int  # deleted
    bodies_before: datetime
    bodies: int  # rows whose text was blanked


def cutoff(keep: Duration, now: datetime) -> datetime:
    """`now` less `keep` (calendar months counted on UTC's calendar)."""
    return Duration(-keep.months, -keep.days, -keep.seconds).add_to(now, UTC)


def purge(conn: Connection, retention: Retention, now: datetime) -> Purged:
    events_before = cutoff(retention.events, now)
    bodies_before = cutoff(retention.bodies, now)
    bodies = privacyrows.purge_bodies(conn, bodies_before)
    events = privacyrows.purge_events(conn, events_before)
    return Purged(events_before, events, bodies_before, bodies)


__all__ = ["Purged", "cutoff", "purge"]
