"""Which touch is due for whom, and when.

A lead's track is planned one touch ahead (see `dripper.track`): entering a stage plans
its first step, and each outcome plans the next step in the same commit. A step's due
time is (the instant the lead entered the stage + `after`), moved into the send window
on the lead's own clock. The tick only has to claim rows whose due time has come. Live
edits of campaigns.yaml are reconciled against what is already planned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from dripper.campaign import timing
from dripper.campaign.model import ALWAYS_STOP, Campaign, CampaignFile, Step, step_conditions
from dripper.leads.records import Lead
from dripper.planning import track
from dripper.states import EVERY_CAMPAIGN, EventKind, Reason, TouchState
from dripper.store import leads
from dripper.store.queries import holdrows, leadrows, staging, versionrows
from dripper.store.queries import touchrows as touch_q


class Planner:
    def __init__(self, config: CampaignFile):
        self.config = config
        # Leads imported together share their due times: compute once per group.
        self._dues = lru_cache(maxsize=4096)(self._compute_dues)

    def lead_zone(self, tz: str | None) -> str:
        return tz or self.config.defaults.timezone

    def _compute_dues(
        self, campaign: str, stage: str, entered_at: datetime, tz: str | None, country: str
    ) -> tuple[tuple[Step, datetime], ...]:
        camp = self.config.campaigns[campaign]
        zone = timing.zone(self.lead_zone(tz))
        out = []
        for step in camp.track(stage):
            due = step.after.add_to(entered_at, zone)
            due = self.config.window_for(camp, step).next_open(due, zone, country or None)
            out.append((step, due))
        # The order the track goes out in; a stable sort keeps file order for equal times.
        return tuple(sorted(out, key=lambda pair: pair[1]))

    def dues(
        self, campaign: str, stage: str, entered_at: datetime, tz: str | None = None, country: str = ""
    ) -> tuple[tuple[Step, datetime], ...]:
        if campaign not in self.config.campaigns:
            return ()
        return self._dues(campaign, stage, entered_at, tz, country)

    def track_of(self, lead: Lead) -> track.Track:
        """The lead's current track (its campaign, stage, entry instant, zone and country)."""
        return self.dues(lead.campaign, lead.stage, lead.entered_at, lead.timezone, lead.country or "")


@dataclass(frozen=True)
class EnrollResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    duplicates: tuple[tuple[int, int, str], ...] = ()  # (line, first line, e-mail)

    def __add__(self, other: EnrollResult) -> EnrollResult:
        """Two batches' results together (every field adds up)."""
        return EnrollResult(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def enroll(
    conn: Connection,
    planner: Planner,
    batch: Sequence[tuple[int, Lead]],
    at: datetime,
    *,
    across_batches: bool = False,
    copy: bytes | None = None,
) -> EnrollResult:
    """Upsert a batch of (line, lead); new leads and leads that changed stage or campaign
    start a track at `at`. Set-based: the same few statements for ten leads or ten thousand.

    `across_batches`: the connection is importing one file in several batches (see
    `staging.start_import`); an e-mail seen in an earlier batch is a duplicate.
    `copy`: the batch as `staging.copy_text` makes it, if the caller has it already."""
    staging.load(conn, batch, copy)
    duplicates = tuple(staging.take_duplicates(conn, across_batches))
    actions = staging.match(conn)
    moved = actions.get("moved", 0)
    result = EnrollResult(
        created=actions.get("new", 0),
        updated=actions.get("changed", 0) + moved,
        unchanged=actions.get("same", 0),
        moved=moved,
        duplicates=duplicates,
    )
    if result.moved:
        staging.close_moved(conn, at)
        staging.record_moves(conn, at)
    if result.updated:
        staging.update_changed(conn, at)
    if result.created:
        staging.insert_new(conn, first_touches(planner, staging.new_groups(conn), at), at)
    if result.updated:
        for chunk in leadrows.matching(conn, leads.c.id.in_(staging.replanned())):
            replan(conn, planner, chunk, at)
    return result


def first_touches(planner: Planner, groups: Iterable[staging.Group], at: datetime) -> list[dict[str, Any]]:
    """The first touch of each group of new leads entering their stage at `at`.

    Leads that share a track, a time zone and a country share their due times: those are
    computed once per group in Python (send windows, holidays), and one INSERT … SELECT
    joins the batch to them, however many leads there are."""
    rows = []
    for campaign, stage, tz, country in groups:
        for planned in track.entry(planner.dues(campaign, stage, at, tz, country), {}, at, at):
            rows.append(
                {
                    "campaign": campaign,
                    "stage": stage,
                    "tz": tz or "",
                    "country": country,
                    "step_id": planned.step.id,
                    "channel": planned.step.channel,
                    "kind": planned.step.kind,
                    "due_at": planned.due,
                    "missed": planned.missed,
                }
            )
    return rows


def replan(conn: Connection, planner: Planner, chunk: Sequence[Lead], at: datetime) -> list[dict[str, Any]]:
    """(Re)plan the current track of each lead in `chunk` (as stored) as at `at`:
    pending touches follow the campaign's due times, and a lead without a pending touch
    gets its next one (see `track.entry`). Returns the rows written."""
    known = touch_q.known(conn, [lead.id for lead in chunk])
    rows = []
    for lead in chunk:
        mine = known.get((lead.id, lead.campaign), {})
        for planned in track.entry(planner.track_of(lead), mine, at, lead.entered_at):
            rows.append(_row(planner, lead, planned, at, planned_at=at))
    touch_q.upsert_rows(conn, rows)
    return rows


@dataclass(frozen=True)
class Finished:
    """A touch that reached its outcome; the track goes on after it."""

    lead_id: int
    campaign: str
    stage: str
    step_id: str
    planned_at: datetime
    lead: Lead | None = None  # the lead as read with the claim, if at hand


def advance(conn: Connection, planner: Planner, finished: Sequence[Finished], at: datetime) -> list[dict[str, Any]]:
    """Plan the step after each finished touch (in the commit that records the outcome);
    returns the rows written (`planned`, or `skipped: missed` on the way when catching up).

    This runs in every commit of outcomes, so the usual case is one statement: the next
    step, planned from the lead as it was read with the claim, written where the step has
    no row yet. The rest (a step done on an earlier stay in the stage, a track planned in
    full by an earlier version, a lead not at hand) is planned from the stored rows. A lead
    that moved to another track since the claim may get one more row of the old one: the
    sender skips it when it falls due (`stage_changed`), as it checks every touch against
    the lead's current track."""
    written: dict[tuple[int, str, str], dict[str, Any]] = {}
    ahead: dict[tuple[int, str], dict[str, Any]] = {}  # one row a key: one statement may not write it twice
    fast: list[tuple[Finished, list[dict[str, Any]]]] = []
    slow: list[Finished] = []
    for done in finished:
        if done.lead is None:
            slow.append(done)
        elif rows := _next_rows(planner, done.lead, done, {}, at):
            fast.append((done, rows))
            for row in rows:
                ahead.setdefault((row["lead_id"], row["step_id"]), row)
    if touch_q.insert_next(conn, list(ahead.values())):
        written.update(((row["lead_id"], row["campaign"], row["step_id"]), row) for row in ahead.values())
    else:  # some step had a row: those tracks are walked along their rows (this sees the ones just written)
        slow += [done for done, _ in fast]
    if slow:
        written.update(_advance_from_rows(conn, planner, slow, at))
    return list(written.values())


def _next_rows(
    planner: Planner, lead: Lead | None, done: Finished, known: Mapping[str, track.Known], at: datetime
) -> list[dict[str, Any]]:
    """The rows that continue `done`'s track; none when there is nothing to plan, or when
    the lead is gone or not on that track any more (it moved on: its new track was planned
    when it moved)."""
    if lead is None or (lead.campaign, lead.stage) != (done.campaign, done.stage):
        return []
    since = lead.entered_at
    if done.planned_at < since:
        return []  # a touch of an earlier stay in this stage, finished late
    return [
        _row(planner, lead, planned, at, planned_at=done.planned_at)
        for planned in track.advance(planner.track_of(lead), known, done.step_id, at, since)
    ]


def _advance_from_rows(
    conn: Connection, planner: Planner, finished: Sequence[Finished], at: datetime
) -> dict[tuple[int, str, str], dict[str, Any]]:
    ids = sorted({f.lead_id for f in finished})
    lead_rows = leadrows.by_ids(conn, ids)
    known = touch_q.known(conn, ids)
    rows: dict[tuple[int, str, str], dict[str, Any]] = {}
    for done in finished:
        lead = lead_rows.get(done.lead_id)
        mine = known.setdefault((done.lead_id, done.campaign), {})
        for row in _next_rows(planner, lead, done, mine, at):
            rows.setdefault((row["lead_id"], row["campaign"], row["step_id"]), row)
            # Two outcomes of one lead in one commit: the second sees what the first planned.
            mine[row["step_id"]] = track.Known(row["state"], row["reason"], row["planned_at"])
    touch_q.upsert_rows(conn, list(rows.values()))
    return rows


def _row(planner: Planner, lead: Lead, planned: track.Planned, at: datetime, *, planned_at: datetime) -> dict[str, Any]:
    """The touches row for a planned step, in the state `planned_state` gives it."""
    campaign = planner.config.campaigns[lead.campaign]
    state, reason = planned_state(campaign, lead, planned, planned_at)
    return {
        "lead_id": lead.id,
        "campaign": campaign.name,
        "step_id": planned.step.id,
        "stage": lead.stage,
        "channel": planned.step.channel,
        "kind": planned.step.kind,
        "due_at": planned.due,
        "state": state,
        "reason": reason,
        "attempts": 0,
        "planned_at": planned_at,
        "updated_at": at,
    }


def planned_state(
    campaign: Campaign, lead: Lead, planned: track.Planned, planned_at: datetime
) -> tuple[TouchState, Reason | None]:
    """(state, reason) of the row a planned step is written as: `missed`, `suppressed` if
    the lead is stopped for good (so the track closes there), else `planned`. Also what
    `dripper diff` expects a re-plan to write."""
    if planned.missed:
        return TouchState.SKIPPED, Reason.MISSED
    if (stop := stop_reason(campaign.stop_on, lead, planned_at, campaign.name)) is not None:
        return TouchState.SUPPRESSED, stop
    return TouchState.PLANNED, None


def change_stage(
    conn: Connection,
    planner: Planner,
    lead: Lead,
    stage: str,
    at: datetime,
    *,
    source: str = "cli",
    detail: Mapping[str, Any] | None = None,
    message_id: str | None = None,
) -> None:
    """Leave the old track (its pending touch `skipped: stage_changed`) and start the new one at `at`.

    Recorded as an event `stage` saying where from and where to (`dripper report` counts
    the movements between stages), with `detail` added; "stage" is the new stage too, as
    events before the movements were counted said."""
    touch_q.close_pending(conn, [lead.id], state=TouchState.SKIPPED, reason=Reason.STAGE_CHANGED, at=at)
    leadrows.set_stage(conn, lead.id, stage, at)
    leadrows.record_event(
        conn,
        lead.id,
        EventKind.STAGE,
        at,
        source,
        {**(detail or {}), "stage": stage, "from": lead.stage, "to": stage, "campaign": lead.campaign},
        message_id=message_id,
    )
    moved = leadrows.by_id(conn, lead.id)
    assert moved is not None
    replan(conn, planner, [moved], at)


@dataclass(frozen=True)
class Reconciled:
    """What bringing the touches in line with an edited campaigns.yaml did."""

    campaigns: tuple[str, ...] = ()  # the campaigns re-planned
    skipped: int = 0  # pending touches of removed steps (`step_removed`), steps written as `missed`
    suppressed: int = 0  # steps written as `suppressed` (the lead had stopped)


def reconcile(conn: Connection, planner: Planner, at: datetime) -> Reconciled:
    """Bring planned touches in line with an edited campaigns.yaml; says which campaigns
    were re-planned and how many touches that closed (the tick counts them).

    Keyed by step id: a step already sent is never sent again (a step renamed with
    `renamed_from` keeps its history under the new id), a removed step's pending
    touches are skipped (`step_removed`) and the track goes on with the step after it,
    a new step is planned for every lead on its track that has not passed it yet (and
    `missed` for those it finds already more than a day overdue, see `track.entry`), a
    changed `after` or window moves the due time of what is still pending.
    """
    config = planner.config
    stored = _stored_versions(conn, config)
    wanted = {name: config.schedule_fingerprint(name) for name in config.campaigns}
    if all(stored.get(name) == fp for name, fp in wanted.items()) and set(stored) <= set(wanted):
        return Reconciled()
    if versionrows.lock_for_reconcile(conn):  # one worker reconciles; the others wait and find it done
        stored = _stored_versions(conn, config)
    changed = []
    closed: Counter[str] = Counter()
    for name, fingerprint in wanted.items():
        if stored.get(name) == fingerprint:
            continue
        campaign = config.campaigns[name]
        for steps in campaign.stages.values():
            for step in steps:
                for old in step.renamed_from:
                    touch_q.rename_step(conn, name, old, step.id, at)
        closed[TouchState.SKIPPED] += touch_q.skip_removed_steps(
            conn, name, {s: [step.id for step in steps] for s, steps in campaign.stages.items()}, at
        )
        for chunk in leadrows.matching(conn, leads.c.campaign == name):
            # A replanned row is written where its step has no row or one dripper closed
            # itself (`track.entry`): each one closed here is a touch this edit closed.
            closed.update(row["state"] for row in replan(conn, planner, chunk, at))
        _save_version(conn, config, name, at, exists=name in stored)
        changed.append(name)
    for name in set(stored) - set(wanted):
        closed[TouchState.SKIPPED] += touch_q.skip_removed_steps(conn, name, {}, at)
        versionrows.delete(conn, name)
        changed.append(name)
    return Reconciled(tuple(changed), closed[TouchState.SKIPPED], closed[TouchState.SUPPRESSED])


def _stored_versions(conn: Connection, config: CampaignFile) -> dict[str, str]:
    """campaign -> the fingerprint of its applied version.

    A version recorded before migration 0008 has no definition and an older kind of
    fingerprint: when that still matches the file, the campaign is unchanged, and it takes
    the current fingerprint and definition as they are (re-planning every lead once after
    the upgrade would change nothing)."""
    stored = {}
    for row in versionrows.all_versions(conn):
        fingerprint = row.fingerprint
        if (
            row.definition is None
            and row.campaign in config.campaigns
            and fingerprint == config.legacy_fingerprint(row.campaign)
        ):
            fingerprint = config.schedule_fingerprint(row.campaign)
            versionrows.upgrade(conn, row.campaign, fingerprint, config.schedule_definition(row.campaign))
        elif row.definition is not None and row.campaign in config.campaigns:
            _keep_conditions(conn, config, row)
        stored[row.campaign] = fingerprint
    return stored


def _keep_conditions(conn: Connection, config: CampaignFile, row: versionrows.VersionRow) -> None:
    """A campaign whose conditions (`when:`) alone changed is not re-planned: they are read
    at send time. Its applied definition takes them (the instant it was applied stays), so
    that `dripper diff` compares the next edit with them."""
    assert row.definition is not None
    had = step_conditions(row.definition)
    campaign = config.campaigns[row.campaign]
    if not had and not any(step.when for steps in campaign.stages.values() for step in steps):
        return  # the common case, every tick: no conditions then or now
    current = config.schedule_definition(row.campaign)
    if had != step_conditions(current) and row.fingerprint == config.schedule_fingerprint(row.campaign):
        versionrows.upgrade(conn, row.campaign, row.fingerprint, current)


def _save_version(conn: Connection, config: CampaignFile, name: str, at: datetime, *, exists: bool) -> None:
    # The fingerprint hashes the definition: both come from the file, in one place.
    save = versionrows.replace if exists else versionrows.insert
    save(conn, name, config.schedule_fingerprint(name), config.schedule_definition(name), at)


def record_versions(conn: Connection, config: CampaignFile, at: datetime) -> None:
    """Remember the campaign versions that planning just used (first enrolment)."""
    stored = versionrows.names(conn)
    for name in config.campaigns:
        if name not in stored:
            _save_version(conn, config, name, at, exists=False)


def hold_until(conn: Connection, planner: Planner, lead: Lead, day: date, at: datetime) -> int:
    """Hold a lead's pending touches until after `day` (an out-of-office return date):
    each moves to its send window's first opening on the day after, on the lead's clock."""
    zone = timing.zone(planner.lead_zone(lead.timezone))
    start = timing.localize(datetime.combine(day + timedelta(days=1), time(0, 0)), zone)
    pending = holdrows.pending_before(conn, lead.id, start)
    config = planner.config
    for touch in pending:
        campaign = config.campaigns.get(touch.campaign)
        found = campaign.step(touch.step_id) if campaign else None
        window = config.window_for(campaign, found[1]) if campaign and found else timing.Window()
        due = window.next_open(start, zone, lead.country or None)
        holdrows.hold(conn, touch.id, due, f"away until {day.isoformat()}", at)
    return len(pending)


@dataclass(frozen=True)
class TimelineEntry:
    due: datetime
    day: int
    stage: str
    step: Step


def timeline(
    planner: Planner, campaign: str, stage: str, start: datetime, days: int, tz: str | None = None, country: str = ""
) -> list[TimelineEntry]:
    """The touches a lead entering `stage` at `start` would receive within `days` days."""
    end = start + timedelta(days=days)
    out = []
    for step, due in planner.dues(campaign, stage, start, tz, country):
        if due <= end:
            out.append(TimelineEntry(due, (due - start).days, stage, step))
    return out


def stop_reason(
    campaign_stops: Iterable[str], lead: Lead, planned_at: datetime, campaign: str | None = None
) -> Reason | None:
    """Why a touch must not go out now (checked again at send time), or None."""
    if EVERY_CAMPAIGN in lead.opted_out:  # stopped by an operator (dripper/leads/actions.py)
        return Reason.STOPPED
    if campaign is not None and campaign in lead.opted_out:
        return Reason.OPTED_OUT
    stops = set(campaign_stops) | ALWAYS_STOP
    for kind in (Reason.UNSUBSCRIBED, Reason.COMPLAINED, Reason.BOUNCED):
        if kind in stops and lead.stopped_at(kind) is not None:
            return kind
    for kind in (Reason.CONVERTED, Reason.REPLIED):
        when = lead.stopped_at(kind)
        # A conversion or reply ends the sequence that was running then; a track planned
        # later (a stage change after the reply) is a new conversation and may go out.
        if kind in stops and when is not None and when > planned_at:
            return kind
    return None
