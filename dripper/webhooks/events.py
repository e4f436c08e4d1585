"""The webhook event types (the public contract, design.md) and which recorded lead
event announces which. A leaf module: the store imports it."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from dripper.states import EventKind


class WebhookEvent(StrEnum):
    TOUCH_SENT = "touch.sent"
    TOUCH_FAILED = "touch.failed"
    LEAD_BOUNCED = "lead.bounced"
    LEAD_COMPLAINED = "lead.complained"
    LEAD_UNSUBSCRIBED = "lead.unsubscribed"
    LEAD_REPLIED = "lead.replied"
    LEAD_CONVERTED = "lead.converted"
    LEAD_STAGE_CHANGED = "lead.stage_changed"
    CALL_COMPLETED = "call.completed"
    CLICK = "click"


# The recorded events (table `events`) that are announced, by kind. Others (an auto-reply,
# a soft bounce, a pause) stay inside dripper.
FROM_EVENT_KIND: dict[str, WebhookEvent] = {
    EventKind.BOUNCED: WebhookEvent.LEAD_BOUNCED,
    EventKind.COMPLAINED: WebhookEvent.LEAD_COMPLAINED,
    EventKind.UNSUBSCRIBED: WebhookEvent.LEAD_UNSUBSCRIBED,
    EventKind.REPLIED: WebhookEvent.LEAD_REPLIED,
    EventKind.CONVERTED: WebhookEvent.LEAD_CONVERTED,
    EventKind.STAGE: WebhookEvent.LEAD_STAGE_CHANGED,
    EventKind.CALLED: WebhookEvent.CALL_COMPLETED,
    EventKind.CLICKED: WebhookEvent.CLICK,
}

ALL = "*"


def announced(kind: str, detail: Mapping[str, Any] | None) -> WebhookEvent | None:
    """The webhook a recorded event makes, if any. A `stage` event to the stage the lead
    is in already changes nothing (it is recorded, with a warning): no `lead.stage_changed`;
    a real move is recorded with where from and where to (planner.change_stage)."""
    event = FROM_EVENT_KIND.get(kind)
    if event is WebhookEvent.LEAD_STAGE_CHANGED and not (
        detail and "from" in detail and detail["from"] != detail.get("to")
    ):
        return None
    return event


def parse_events(text: str) -> tuple[str, ...]:
    """`touch.sent,lead.replied` (or `*`) as a tuple; ValueError names an unknown one."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise ValueError("no events given: name at least one, or * for all")
    known = {e.value for e in WebhookEvent}
    for name in names:
        if name != ALL and name not in known:
            raise ValueError(f"unknown webhook event {name!r}: use {', '.join(sorted(known))} or *")
    return (ALL,) if ALL in names else names
