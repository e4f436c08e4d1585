"""Events a lead causes (conversion, reply, unsubscribe, bounce, complaint, stage change)
and what they do to its touches. Inbound mail, the CLI and the web all end up here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from dripper.campaign.model import ALWAYS_STOP
from dripper.campaign.timing import Duration
from dripper.errors import UsageError
from dripper.leads.records import Lead
from dripper.planning.planner import Planner, change_stage, hold_until
from dripper.states import USER_EVENTS, EventKind, Reason, TouchState
from dripper.store.queries import callrows, leadrows
from dripper.store.queries import touchrows as touch_q

KINDS: tuple[str, ...] = tuple(USER_EVENTS)


@dataclass(frozen=True)
class EventResult:
    lead_id: int
    kind: str
    suppressed: int
    stage_changed_to: str | None
    # Recorded all the same, but likely not what was meant (see `stage_warnings`).
    warnings: tuple[str, ...] = ()


def apply_event(
    conn: Connection,
    planner: Planner,
    lead: Lead,
    kind: str,
    at: datetime,
    *,
    source: str = "cli",
    stage: str | None = None,
    detail: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> EventResult:
    """Record the event, suppress what it stops, and switch stage when asked."""
    if kind not in KINDS:
        raise UsageError(f"unknown event kind {kind!r}: use one of {', '.join(KINDS)}")
    config = planner.config
    if kind == EventKind.STAGE and not stage:
        raise UsageError("a stage event needs --stage")
    if stage and stage not in config.stages:
        from dripper.campaign.model import did_you_mean

        raise UsageError(f"unknown stage {stage!r}{did_you_mean(stage, config.stages)}")
    recorded = {**(detail or {}), **({"stage": stage} if stage else {})}
    moving = bool(stage) and stage != lead.stage
    warnings = stage_warnings(planner, lead, stage) if kind == EventKind.STAGE and stage else ()
    if kind != EventKind.STAGE or not moving:  # a move records its own event `stage` (from, to), below
        leadrows.record_event(conn, lead.id, kind, at, source, recorded, message_id=message_id)
    suppressed = 0
    if kind != EventKind.STAGE:
        leadrows.set_flag(conn, lead.id, kind, at)
        # None: every campaign
        campaigns = None if kind in ALWAYS_STOP else [n for n, c in config.campaigns.items() if c.stops_on(kind)]
        suppressed = touch_q.close_pending(
            conn, [lead.id], state=TouchState.SUPPRESSED, reason=Reason(kind), at=at, campaigns=campaigns
        )
        # A call task is a touch already handed to sales: nobody is to call a lead that stopped.
        callrows.cancel_open(conn, lead.id, Reason(kind), at, campaigns)
    moved_to = None
    if stage and moving:
        fresh = leadrows.by_id(conn, lead.id)
        assert fresh is not None
        if kind == EventKind.STAGE:
            change_stage(conn, planner, fresh, stage, at, source=source, detail=recorded, message_id=message_id)
        else:  # e.g. converted --stage customer: the event above, and the move it caused
            change_stage(conn, planner, fresh, stage, at, source=source, detail={"cause": kind})
        moved_to = stage
    return EventResult(lead.id, kind, suppressed, moved_to, warnings)


def stage_warnings(planner: Planner, lead: Lead, stage: str) -> tuple[str, ...]:
    """What is odd about moving `lead` to `stage`: it is already there (nothing changes),
    or its campaign has no track for that stage (it gets no touches there). Neither is an
    error: a lead may well sit in a stage a campaign does not write to."""
    if stage == lead.stage:
        return (f"{lead.email} is already in stage {stage!r}: recorded, but nothing changes (its track goes on)",)
    campaign = planner.config.campaigns.get(lead.campaign)
    if campaign is None or campaign.track(stage):
        return ()
    tracks = ", ".join(s for s, steps in campaign.stages.items() if steps) or "none"
    return (
        f"campaign {lead.campaign!r} has no track for stage {stage!r}: {lead.email} gets no touches "
        f"from it until it moves to a stage that has one (stages with a track: {tracks})",
    )


def opt_out(conn: Connection, lead: Lead, campaign: str, at: datetime, *, source: str = "web") -> int:
    """Stop one campaign for this lead (the preference page); other campaigns go on."""
    leadrows.set_fields(conn, lead.id, at, opted_out=sorted({*lead.opted_out, campaign}))
    leadrows.record_event(conn, lead.id, EventKind.OPTED_OUT, at, source, {"campaign": campaign})
    callrows.cancel_open(conn, lead.id, Reason.OPTED_OUT, at, [campaign])
    return touch_q.close_pending(
        conn, [lead.id], state=TouchState.SUPPRESSED, reason=Reason.OPTED_OUT, at=at, campaigns=[campaign]
    )


def pause(
    conn: Connection, planner: Planner, lead: Lead, months: int, at: datetime, *, source: str = "web"
) -> datetime:
    """Hold every touch for `months` calendar months (the preference page)."""
    until = Duration(months=months).add_to(at, UTC)
    leadrows.set_fields(conn, lead.id, at, paused_until=until)
    leadrows.record_event(conn, lead.id, EventKind.PAUSED, at, source, {"until": until.isoformat(), "months": months})
    hold_until(conn, planner, lead, (until - timedelta(days=1)).date(), at)
    return until
