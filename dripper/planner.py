"""Which touch is due for whom, and when.

A lead's track is planned in full when it enters a stage: one `touches` row per step,
due at (time the lead entered the stage + `after`), moved into the send window on the
lead's own clock. The tick then only has to claim rows whose due time has come.
Live edits of campaigns.yaml are reconciled against what is already planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection, select, text, update

from dripper import timing
from dripper.campaigns import ALWAYS_STOP, CampaignFile, Step
from dripper.leads import Lead
from dripper.store import campaign_versions, touches
from dripper.store import leadrows
from dripper.store import touchrows as touch_q

# A step already this much overdue when first planned is skipped (`missed`) rather than
# sent late: a lead should never get weeks of mail in one morning.
MISSED_AFTER = timedelta(hours=24)
_PG_RECONCILE_LOCK = 0x64726971


@dataclass(frozen=True)
class Target:
    """What planning needs to know about one lead."""

    id: int
    campaign: str
    stage: str
    entered_at: datetime
    timezone: str | None
    country: str
    blocked_by: str | None  # a permanent suppression (unsubscribed, bounced, complained)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Target:
        blocked = next((kind for kind in ("unsubscribed", "complained", "bounced") if row[f"{kind}_at"]), None)
        if blocked is None and row["campaign"] in (row.get("opted_out") or []):
            blocked = "opted_out"
        return cls(row["id"], row["campaign"], row["stage"], row["stage_entered_at"], row["timezone"],
                   row["country"], blocked)


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

    def rows(self, target: Target, at: datetime) -> list[dict[str, Any]]:
        """Touch rows for the target's current track, as planned at instant `at`."""
        out = []
        for step, due in self.dues(target.campaign, target.stage, target.entered_at, target.timezone, target.country):
            state, reason = "planned", None
            if target.blocked_by:
                state, reason = "suppressed", target.blocked_by
            elif due < at - MISSED_AFTER:
                state, reason = "skipped", "missed"
            out.append({
                "lead_id": target.id, "campaign": target.campaign, "step_id": step.id, "stage": target.stage,
                "channel": step.channel, "kind": step.kind, "due_at": due, "state": state, "reason": reason,
                "attempts": 0, "planned_at": at, "updated_at": at,
            })
        return out


@dataclass
class EnrollResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0


def _differs(row: Mapping[str, Any], lead: Lead) -> bool:
    from dripper.leads import LEAD_FIELDS

    return any(row[name] != getattr(lead, name) for name in LEAD_FIELDS) or dict(row["attrs"] or {}) != lead.attrs


def enroll(conn: Connection, planner: Planner, batch: Sequence[Lead], at: datetime) -> EnrollResult:
    """Upsert leads; new leads and leads that changed stage or campaign start a track at `at`."""
    result = EnrollResult()
    found = leadrows.existing(conn, [lead.email for lead in batch])
    new = [lead for lead in batch if lead.email not in found]
    ids = leadrows.insert_many(conn, new, at)
    result.created = len(new)
    targets = [Target(ids[l.email], l.campaign, l.stage, at, l.timezone, l.country, None) for l in new]
    changed: list[tuple[int, Lead, bool]] = []
    for lead in batch:
        row = found.get(lead.email)
        if row is None:
            continue
        if not _differs(row, lead):
            result.unchanged += 1
            continue
        moved = row["stage"] != lead.stage or row["campaign"] != lead.campaign
        changed.append((row["id"], lead, moved))
        if moved:
            reason = "stage_changed" if row["campaign"] == lead.campaign else "campaign_changed"
            touch_q.close_pending(conn, [row["id"]], state="skipped", reason=reason, at=at)
            result.moved += 1
        if moved or row["timezone"] != lead.timezone or row["country"] != lead.country:
            entered = at if moved else row["stage_entered_at"]
            base = Target.from_row(row)
            targets.append(Target(row["id"], lead.campaign, lead.stage, entered, lead.timezone, lead.country, base.blocked_by))
    result.updated = len(changed)
    leadrows.update_many(conn, changed, at)
    rows = [r for target in targets for r in planner.rows(target, at)]
    touch_q.upsert_planned(conn, rows)
    return result


def change_stage(conn: Connection, planner: Planner, lead: Mapping[str, Any], stage: str, at: datetime) -> None:
    """Leave the old track (pending touches `skipped: stage_changed`) and start the new one at `at`."""
    touch_q.close_pending(conn, [lead["id"]], state="skipped", reason="stage_changed", at=at)
    leadrows.set_stage(conn, lead["id"], stage, at)
    target = Target.from_row({**lead, "stage": stage, "stage_entered_at": at})
    touch_q.upsert_planned(conn, planner.rows(target, at))


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
        for chunk in leadrows.in_campaign(conn, name):
            touch_q.upsert_planned(conn, [r for row in chunk for r in planner.rows(Target.from_row(row), at)])
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
