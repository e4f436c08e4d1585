"""Holding a lead's pending touches back (an out-of-office until a return date)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from dripper.states import Reason, TouchState
from dripper.store.tables import touches


@dataclass(frozen=True)
class PendingTouch:
    """A planned touch of one lead: which one, and the step it is of."""

    id: int
    campaign: str
    step_id: str


def pending_before(conn: Connection, lead_id: int, start: datetime) -> list[PendingTouch]:
    """The lead's planned touches due before `start`."""
    query = select(touches.c.id, touches.c.campaign, touches.c.step_id).where(
        touches.c.lead_id == lead_id, touches.c.state == TouchState.PLANNED, touches.c.due_at < start
    )
    return [PendingTouch(touch_id, campaign, step_id) for touch_id, campaign, step_id in conn.execute(query)]


def hold(conn: Connection, touch_id: int, due_at: datetime, detail: str, at: datetime) -> None:
    """Move a pending touch to `due_at`, reason `held` with `detail`."""
    conn.execute(
        update(touches)
        .where(touches.c.id == touch_id)
        .values(due_at=due_at, reason=Reason.HELD, detail=detail, updated_at=at)
    )


__all__ = ["PendingTouch", "hold", "pending_before"]
