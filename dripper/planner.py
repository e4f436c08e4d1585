"""Which touch is due for whom, and when.

A lead's track is planned in full when it enters a stage: one `touches` row per step,
due at (time the lead entered the stage + `after`), moved into the send window on the
lead's own clock. The tick then only has to claim rows whose due time has come.
Live edits of campaigns.yaml are reconciled against what is already planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection, and_, select, text, update
from sqlalchemy.sql import ColumnElement

from dripper import timing
from dripper.campaigns import ALWAYS_STOP, CampaignFile, Step
from dripper.leads import Lead
from dripper.store import campaign_versions, leads, touches
from dripper.store import leadrows, staging
from dripper.store import touchrows as touch_q

# A step already this much overdue when first planned is skipped (`missed`) rather than
# sent late: a lead should never get weeks of mail in one morning.
MISSED_AFTER = timedelta(hours=24)
_PG_RECONCILE_LOCK = 0x64726971
_PLAN_KEYS = ("id", "campaign", "stage", "stage_entered_at", "timezone", "country")


class Planner:
    def __init__(self, config: CampaignFile):
        self.config = config
        # Leads imported together share their due times: compute once per group.
        self._dues = lru_cache(maxsize=4096)(self._compute_dues)

    def lead_zone(self, tz: str | None) -> str:
        return tz or self.config.defaults.timezone

    def _compute_dues(self, campaign: str, stage: str, entered_at: datetime, tz: str | None,
                      country: str) -> tuple[tuple[Step, datetime], ...]:
        camp = self.config.campaigns[campaign]
        zone = timing.zone(self.lead_zone(tz))
        out = []
        for step in camp.track(stage):
            due = step.after.add_to(entered_at, zone)
            due = self.config.window_for(camp, step).next_open(due, zone, country or None)
            out.append((step, due))
        return tuple(out)

    def dues(self, campaign: str, stage: str, entered_at: datetime, tz: str | None = None,
             country: str = "") -> tuple[tuple[Step, datetime], ...]:
        if campaign not in self.config.campaigns:
            return ()
        return self._dues(campaign, stage, entered_at, tz, country)


@dataclass
class EnrollResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    duplicates: list[tuple[int, int, str]] = field(default_factory=list)  # (line, first line, e-mail)

    def add(self, other: EnrollResult) -> None:
        for name in ("created", "updated", "unchanged", "moved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.duplicates += other.duplicates


def enroll(conn: Connection, planner: Planner, batch: Sequence[tuple[int, Lead]], at: datetime, *,
           across_batches: bool = False) -> EnrollResult:
    """Upsert a batch of (line, lead); new leads and leads that changed stage or campaign
    start a track at `at`. Set-based: the same few statements for ten leads or ten thousand.

    `across_batches`: the connection is importing one file in several batches (see
    `staging.start_import`); an e-mail seen in an earlier batch is a duplicate."""
    staging.load(conn, batch)
    result = EnrollResult(duplicates=staging.take_duplicates(conn, across_batches))
    staging.match(conn)
    staging.close_moved(conn, at)
    staging.update_changed(conn, at)
    staging.insert_new(conn, at)
    actions = staging.counts(conn)
    result.created, result.unchanged = actions.get("new", 0), actions.get("same", 0)
    result.moved = actions.get("moved", 0)
    result.updated = actions.get("changed", 0) + result.moved
    # New leads have no touches yet: a plain INSERT, without the cost of ON CONFLICT
    # (about 2.5x) that only the leads already on a track need.
    plan_leads(conn, planner, at, leads.c.id.in_(staging.replanned(new=True)), fresh=True)
    if result.updated:
        plan_leads(conn, planner, at, leads.c.id.in_(staging.replanned(new=False)))
    if across_batches:
        staging.remember(conn)
    return result


Group = tuple[str, str, datetime, "str | None", str]  # campaign, stage, entered at, time zone, country


def plan_leads(conn: Connection, planner: Planner, at: datetime, which: ColumnElement[bool],
               groups: Iterable[Group] | None = None, *, fresh: bool = False) -> None:
    """Plan the current track of every lead `which` selects, as at instant `at`.

    Leads that share a track, an entry instant, a time zone and a country share their due
    times: those are computed once per group in Python (send windows, holidays), and one
    INSERT … SELECT joins the leads to them. `fresh`: the leads have no touches at all."""
    if groups is None:
        groups = conn.execute(select(leads.c.campaign, leads.c.stage, leads.c.stage_entered_at, leads.c.timezone,
                                     leads.c.country).where(which).distinct()).all()
    rows = []
    for campaign, stage, entered, tz, country in set(groups):
        for step, due in planner.dues(campaign, stage, entered, tz, country):
            rows.append({"campaign": campaign, "stage": stage, "entered": entered, "tz": tz or "", "country": country,
                         "step_id": step.id, "channel": step.channel, "kind": step.kind, "due_at": due,
                         "missed": due < at - MISSED_AFTER})
    if not rows:
        return
    staging.set_plan(conn, rows)
    source = staging.planned_touches(conn, which, at)
    if fresh:
        conn.execute(touches.insert().from_select(staging.TOUCH_COLUMNS, source))
    else:
        touch_q.upsert_planned(conn, staging.TOUCH_COLUMNS, source)


def change_stage(conn: Connection, planner: Planner, lead: Mapping[str, Any], stage: str, at: datetime) -> None:
    """Leave the old track (pending touches `skipped: stage_changed`) and start the new one at `at`."""
    touch_q.close_pending(conn, [lead["id"]], state="skipped", reason="stage_changed", at=at)
    leadrows.set_stage(conn, lead["id"], stage, at)
    plan_leads(conn, planner, at, leads.c.id == lead["id"])


def reconcile(conn: Connection, planner: Planner, at: datetime) -> list[str]:
    """Bring planned touches in line with an edited campaigns.yaml; returns the campaigns re-planned.

    Keyed by step id: a step already sent is never sent again (a step renamed with
    `renamed_from` keeps its history under the new id), a removed step's pending
    touches are skipped (`step_removed`), a new step is planned for every lead on its
    track (and `missed` if it is already more than a day overdue), a changed `after`
    or window moves the due time of what is still pending.
    """
    config = planner.config
    stored = {row.campaign: row.fingerprint for row in conn.execute(select(campaign_versions))}
    wanted = {name: config.schedule_fingerprint(name) for name in config.campaigns}
    if all(stored.get(name) == fp for name, fp in wanted.items()) and set(stored) <= set(wanted):
        return []
    if conn.dialect.name == "postgresql":  # one worker reconciles; the others wait and find it done
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_RECONCILE_LOCK})
        stored = {row.campaign: row.fingerprint for row in conn.execute(select(campaign_versions))}
    changed = []
    for name, fingerprint in wanted.items():
        if stored.get(name) == fingerprint:
            continue
        campaign = config.campaigns[name]
        for steps in campaign.stages.values():
            for step in steps:
                for old in step.renamed_from:
                    touch_q.rename_step(conn, name, old, step.id, at)
        touch_q.skip_removed_steps(conn, name, {s: [step.id for step in steps] for s, steps in campaign.stages.items()}, at)
        for chunk in leadrows.in_campaign(conn, name, _PLAN_KEYS):
            first, last = chunk[0]["id"], chunk[-1]["id"]
            plan_leads(conn, planner, at, and_(leads.c.campaign == name, leads.c.id.between(first, last)),
                       [(r["campaign"], r["stage"], r["stage_entered_at"], r["timezone"], r["country"]) for r in chunk])
        _save_version(conn, name, fingerprint, at, exists=name in stored)
        changed.append(name)
    for name in set(stored) - set(wanted):
        touch_q.skip_removed_steps(conn, name, {}, at)
        conn.execute(campaign_versions.delete().where(campaign_versions.c.campaign == name))
        changed.append(name)
    return changed


def _save_version(conn: Connection, name: str, fingerprint: str, at: datetime, *, exists: bool) -> None:
    if exists:
        conn.execute(campaign_versions.update().where(campaign_versions.c.campaign == name)
                     .values(fingerprint=fingerprint, applied_at=at))
    else:
        conn.execute(campaign_versions.insert().values(campaign=name, fingerprint=fingerprint, applied_at=at))


def record_versions(conn: Connection, config: CampaignFile, at: datetime) -> None:
    """Remember the campaign versions that planning just used (first enrolment)."""
    stored = {row.campaign for row in conn.execute(select(campaign_versions.c.campaign))}
    for name in config.campaigns:
        if name not in stored:
            _save_version(conn, name, config.schedule_fingerprint(name), at, exists=False)


def hold_until(conn: Connection, planner: Planner, lead: Mapping[str, Any], day: date, at: datetime) -> int:
    """Hold a lead's pending touches until after `day` (an out-of-office return date):
    each moves to its send window's first opening on the day after, on the lead's clock."""
    zone = timing.zone(planner.lead_zone(lead["timezone"]))
    start = timing.localize(datetime.combine(day + timedelta(days=1), time(0, 0)), zone)
    pending = conn.execute(select(touches.c.id, touches.c.campaign, touches.c.step_id).where(
        touches.c.lead_id == lead["id"], touches.c.state == "planned", touches.c.due_at < start)).all()
    config = planner.config
    for touch_id, campaign_name, step_id in pending:
        campaign = config.campaigns.get(campaign_name)
        found = campaign.step(step_id) if campaign else None
        window = config.window_for(campaign, found[1]) if campaign and found else timing.Window()
        conn.execute(update(touches).where(touches.c.id == touch_id).values(
            due_at=window.next_open(start, zone, lead["country"] or None), reason=f"held: away until {day.isoformat()}",
            updated_at=at))
    return len(pending)


@dataclass(frozen=True)
class TimelineEntry:
    due: datetime
    day: int
    stage: str
    step: Step


def timeline(planner: Planner, campaign: str, stage: str, start: datetime, days: int,
             tz: str | None = None, country: str = "") -> list[TimelineEntry]:
    """The touches a lead entering `stage` at `start` would receive within `days` days."""
    end = start + timedelta(days=days)
    out = []
    for step, due in planner.dues(campaign, stage, start, tz, country):
        if due <= end:
            out.append(TimelineEntry(due, (due - start).days, stage, step))
    return out


def stop_reason(campaign_stops: Iterable[str], lead: Mapping[str, Any], planned_at: datetime,
                campaign: str | None = None) -> str | None:
    """Why a touch must not go out now (checked again at send time), or None."""
    if campaign is not None and campaign in (lead.get("opted_out") or []):
        return "opted_out"
    stops = set(campaign_stops) | ALWAYS_STOP
    for kind in ("unsubscribed", "complained", "bounced"):
        if kind in stops and lead[f"{kind}_at"] is not None:
            return kind
    for kind in ("converted", "replied"):
        when = lead[f"{kind}_at"]
        # A conversion or reply ends the sequence that was running then; a track planned
        # later (a stage change after the reply) is a new conversation and may go out.
        if kind in stops and when is not None and when > planned_at:
            return kind
    return None
