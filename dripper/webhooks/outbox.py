"""Enqueueing what a tick's outcomes announce (`touch.sent`, `touch.failed`), in the
commit that records them. Lead events are enqueued where they are recorded
(store/queries/leadrows.record_event, clickrows.insert_click).

The tick is hot: whether anything listens is read once per tick (`Announcer`), and with
no listener an outcome costs nothing more; with one, a commit's touches are one
executemany."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dripper.states import TouchState
from dripper.store.queries import webhookrows
from dripper.store.queries.touchrows import Claimed
from dripper.webhooks.events import WebhookEvent

_BY_STATE = {TouchState.SENT: WebhookEvent.TOUCH_SENT, TouchState.FAILED: WebhookEvent.TOUCH_FAILED}


class Announcer:
    """For one tick: enqueues the touch outcomes that subscriptions listen to."""

    def __init__(self) -> None:
        self._listening: dict[str, list[int]] | None = None

    def outcomes(self, conn: Connection, outcomes: Sequence[tuple[Claimed, Mapping[str, Any]]], at: datetime) -> int:
        """Enqueue each sent or failed touch for its listeners; returns the rows written."""
        if self._listening is None:  # once a tick, on the tick's own connection
            self._listening = webhookrows.listeners(conn, list(_BY_STATE.values()))
        if not any(self._listening.values()):
            return 0
        by_event: dict[WebhookEvent, list[tuple[Claimed, Mapping[str, Any]]]] = {}
        for touch, columns in outcomes:
            event = _BY_STATE.get(TouchState(columns["state"]))
            if event is not None and self._listening[event]:
                by_event.setdefault(event, []).append((touch, columns))
        if not by_event:
            return 0
        leads = webhookrows.lead_brief(conn, [t.lead_id for group in by_event.values() for t, _ in group])
        written = 0
        for event, group in by_event.items():
            payloads = [touch_payload(touch, columns, leads.get(touch.lead_id), at) for touch, columns in group]
            written += webhookrows.enqueue_many(conn, self._listening[event], event, at, payloads)
        return written


def touch_payload(
    touch: Claimed, columns: Mapping[str, Any], lead: Mapping[str, Any] | None, at: datetime
) -> dict[str, Any]:
    return {
        "lead": lead,
        "touch": {
            "id": touch.id,
            "campaign": touch.campaign,
            "step": touch.step_id,
            "stage": touch.stage,
            "channel": touch.channel,
            "kind": touch.kind,
            "state": str(columns.get("state")),
            "reason": columns.get("reason"),
            "detail": columns.get("detail"),
            "message_id": columns.get("message_id"),
            "variant": columns.get("variant"),
        },
        "at": columns.get("sent_at") or columns.get("updated_at") or at,
    }
