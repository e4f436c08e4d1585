"""The winners `auto_winner:` declared (table ab_winners)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from dripper.store import upsert
from dripper.store.tables import ab_winners, meta

_CHECKED = "ab_winners_checked_at"  # meta key: when auto_winner tests were last looked at


def winners(conn: Connection) -> dict[tuple[str, str], str]:
    """(campaign, step id) -> the variant auto_winner declared the winner."""
    query = select(ab_winners.c.campaign, ab_winners.c.step_id, ab_winners.c.winner)
    return {(campaign, step): winner for campaign, step, winner in conn.execute(query)}


def record(conn: Connection, campaign: str, step_id: str, winner: str, at: datetime, verdict: str) -> None:
    """Record a winner; one recorded first (by another worker) stays: a test ends once."""
    statement = (
        upsert.insert(conn, ab_winners)
        .values(campaign=campaign, step_id=step_id, winner=winner, decided_at=at, verdict=verdict)
        .on_conflict_do_nothing(index_elements=["campaign", "step_id"])
    )
    conn.execute(statement)


def checked_at(conn: Connection) -> datetime | None:
    value = conn.scalar(select(meta.c.value).where(meta.c.key == _CHECKED))
    return datetime.fromisoformat(value) if value else None


def mark_checked(conn: Connection, at: datetime) -> None:
    statement = upsert.insert(conn, meta).values(key=_CHECKED, value=at.isoformat())
    conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": at.isoformat()}))


__all__ = ["checked_at", "mark_checked", "record", "winners"]
