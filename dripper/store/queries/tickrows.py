"""What `dripper tick` shows after it ran: the touches next in line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from dripper.store.tables import leads, touches


@dataclass(frozen=True)
class Upcoming:
    """A planned touch and the lead it goes to."""

    due_at: datetime
    email: str
    campaign: str
    step_id: str
    channel: str


def next_up(conn: Connection, limit: int) -> list[Upcoming]:
    """The `limit` planned touches due first, earliest first."""
    query = (
        select(touches.c.due_at, leads.c.email, touches.c.campaign, touches.c.step_id, touches.c.channel)
        .join(leads, leads.c.id == touches.c.lead_id)
        .where(touches.c.state == "planned")
        .order_by(touches.c.due_at)
        .limit(limit)
    )
    return [Upcoming(*row) for row in conn.execute(query)]
