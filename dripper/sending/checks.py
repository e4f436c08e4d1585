"""Check: what can be decided about a claimed touch without doing its work.

A touch goes to its channel only if its step still exists, the lead is still on that
track, no later step has superseded it, nothing stops the lead (suppression is checked
again here, at send time, not only when the touch was planned), the lead asked for no
break and the step's send window is open on the lead's clock (a tick run late, e.g. from
cron after a pause, must not mail at midnight what fell due at noon) and its condition
(`when:`) holds. Anything else is its outcome at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from dripper.campaign import conditions, timing
from dripper.campaign.model import Campaign, CampaignFile, Step
from dripper.channels.base import Job
from dripper.channels.outcomes import Outcome
from dripper.config import Loaded
from dripper.leads.records import Lead
from dripper.planning import track
from dripper.planning.planner import Planner, stop_reason
from dripper.states import Reason, TouchState
from dripper.store.queries import leadrows
from dripper.store.queries.touchrows import Claimed


def check(
    touch: Claimed,
    lead: Lead | None,
    loaded: Loaded,
    at: datetime,
    now: datetime,
    history: conditions.History = conditions.EMPTY,
) -> Outcome | Job:
    """Decide what can be decided without doing the work: removed steps, stage
    changes, catching up, suppression, pauses, send windows, the step's condition
    (`history`: the lead's events a condition reads, loaded by the tick only for steps
    that need them)."""
    config = loaded.campaigns
    campaign = config.campaigns.get(touch.campaign)
    found = campaign.step(touch.step_id) if campaign else None
    if lead is None or campaign is None or found is None or found[0] != touch.stage:
        return Outcome(TouchState.SKIPPED, Reason.STEP_REMOVED)
    if (lead.campaign, lead.stage) != (touch.campaign, touch.stage):
        # a touch of the track the lead left (planned as it moved): never sent
        moved = Reason.STAGE_CHANGED if lead.campaign == touch.campaign else Reason.CAMPAIGN_CHANGED
        return Outcome(TouchState.SKIPPED, moved)
    if superseded(loaded.planner, lead, touch, at):
        # held, or the worker was down: only the latest due step goes out
        return Outcome(TouchState.SKIPPED, Reason.MISSED)
    stop = stop_reason(campaign.stop_on, lead, touch.planned_at, campaign.name)
    if stop:  # suppression is checked again here, at send time
        return Outcome(TouchState.SUPPRESSED, stop)
    paused = lead.paused_until
    if paused is not None and paused > now:  # the lead asked for a break
        until = f"until {paused.date().isoformat()}"
        return Outcome(TouchState.PLANNED, Reason.PAUSED.with_detail(until), due_at=paused, attempts=touch.attempts - 1)
    closed = outside_window(loaded, campaign, found[1], lead, touch, now)
    if closed is not None:
        return closed
    if found[1].when is not None:  # evaluated now, on the lead as it is now (not when planned)
        held = condition_outcome(loaded, found[1].when, touch.campaign, lead, history)
        if held is not None:
            return held
    return Job(touch, lead.for_templates(config.defaults.timezone), campaign, found[1])


def outside_window(
    loaded: Loaded, campaign: Campaign, step: Step, lead: Lead, touch: Claimed, now: datetime
) -> Outcome | None:
    """Deferred to the next opening of the step's send window when `now` lies outside it
    on the lead's own clock (holidays included, when the window skips them); None when the
    window is open. The due time was moved into the window when the touch was planned, but
    the tick that sends it may run much later (a worker that was down, a cron tick after a
    pause). Not an attempt: the deferral gives the claim's attempt back."""
    window = loaded.campaigns.window_for(campaign, step)
    if window.always:
        return None
    zone = timing.zone(loaded.planner.lead_zone(lead.timezone))
    opens = window.next_open(now, zone, lead.country or None)
    if opens <= now:
        return None
    return Outcome(TouchState.PLANNED, _deferred_reason(touch, opens, zone), due_at=opens, attempts=touch.attempts - 1)


def _deferred_reason(touch: Claimed, opens: datetime, zone: ZoneInfo) -> str:
    """`outside_window: opens …`, unless the touch already waits for a reason of its own
    (SMTP retries, a soft bounce, an out-of-office): that reason is kept, so that a run of
    retries still knows when it began (and gives up on time) and `plan` still says why."""
    kept, _ = Reason.parse(touch.reason)
    if kept is not None and kept is not Reason.OUTSIDE_WINDOW and kept.states == (TouchState.PLANNED,):
        return str(touch.reason)
    return Reason.OUTSIDE_WINDOW.with_detail(f"opens {opens.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}")


def condition_outcome(
    loaded: Loaded, when: str, campaign: str, lead: Lead, history: conditions.History
) -> Outcome | None:
    """None when the condition holds; skipped (`condition`) when it does not; failed
    (`render_error`, like a template that fails for this lead) when it cannot be evaluated."""
    try:
        if conditions.holds(when, conditions.subject_for(loaded.campaigns, campaign, lead, history)):
            return None
    except conditions.ConditionError as exc:
        return Outcome(TouchState.FAILED, Reason.RENDER_ERROR.with_detail(str(exc)))
    return Outcome(TouchState.SKIPPED, Reason.CONDITION)


def histories(conn: Connection, config: CampaignFile, claimed: Sequence[Claimed]) -> dict[int, conditions.History]:
    """The events a condition reads, for the leads of the claimed touches whose step has a
    condition that reads them: one query per batch, and none at all for a batch without
    such a step (the common case: the tick costs nothing more)."""
    needing = set()
    for touch in claimed:
        campaign = config.campaigns.get(touch.campaign)
        found = campaign.step(touch.step_id) if campaign else None
        if found is not None and found[1].when is not None and conditions.uses_history(found[1].when):
            needing.add(touch.lead_id)
    if not needing:
        return {}
    rows = leadrows.events_of(conn, sorted(needing), conditions.HISTORY_KINDS)
    return {lead_id: conditions.History.of(events) for lead_id, events in rows.items()}


def superseded(planner: Planner, lead: Lead, touch: Claimed, at: datetime) -> bool:
    """The touch's step fell due more than a day before `at` and a later step of its track
    is due by `at` too (see `track.superseded`). By the step's own due time, not the row's:
    a touch held by a pause, an out-of-office or retries is superseded like one a stopped
    worker left behind."""
    steps = planner.track_of(lead)
    index = track.position(steps, touch.step_id)
    return index is not None and track.superseded(steps, index, at)


__all__ = ["check", "condition_outcome", "histories", "outside_window", "superseded"]
