"""What an edited campaigns.yaml will do to the leads already in its campaigns, before it
is applied (`dripper diff`).

The next tick applies an edit (`planner.reconcile`): it carries the rows of steps
declared with `renamed_from` over to their new ids, skips the pending touches of removed
steps (`step_removed`), and re-plans every lead of the campaign (`track.entry`). This
module replays exactly that on each lead's stored rows, writing nothing, and compares the
lead's track under the applied version (campaign_versions.definition, rebuilt into a
model) with its track under the file: its pending touches and the steps still to come
(`track.upcoming`). Leads are read a chunk at a time and only counts are kept, so memory
stays flat however many leads a campaign has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dripper.campaign import conditions
from dripper.campaign.model import CampaignFile, step_conditions
from dripper.campaign.timing import DAY_NAMES, Duration
from dripper.leads.records import Lead
from dripper.planning import track
from dripper.planning.planner import Planner, planned_state, stop_reason
from dripper.states import EVERY_CAMPAIGN
from dripper.store import leads
from dripper.store.queries import leadrows, touchrows, versionrows
from dripper.store.queries.touchrows import Stored

PREDATES = "the applied version predates this feature: compared with the steps seen in the database"
STATUS_TEXT = {
    "changed": "its schedule differs from the applied version",
    "added": "a campaign not applied yet",
    "removed": "no longer in campaigns.yaml",
}
# What the comparison with the touches cannot tell (said along with PREDATES).
PREDATES_LIMITS = (
    "changed timing cannot be told; a step no touch has reached is listed as unreached; only what "
    "the next tick writes is counted for the leads, not the steps still to come"
)


@dataclass(frozen=True)
class Applied:
    """A campaign's applied version, as campaign_versions has it."""

    fingerprint: str
    definition: dict[str, Any] | None  # None: recorded before migration 0008
    applied_at: datetime


def applied_versions(conn: Connection) -> dict[str, Applied]:
    return {
        row.campaign: Applied(row.fingerprint, row.definition, row.applied_at) for row in versionrows.all_versions(conn)
    }


def unchanged(config: CampaignFile, name: str, applied: Applied | None) -> bool:
    """Would the next tick leave this campaign alone (see `planner.reconcile`)?"""
    if applied is None or name not in config.campaigns:
        return False
    if applied.fingerprint == config.schedule_fingerprint(name):
        # conditions are no part of the fingerprint (no re-planning), but diff shows them
        return applied.definition is None or step_conditions(applied.definition) == step_conditions(
            config.schedule_definition(name)
        )
    return applied.definition is None and applied.fingerprint == config.legacy_fingerprint(name)


def compute(conn: Connection, config: CampaignFile, at: datetime, only: str | None = None) -> dict[str, Any]:
    """`dripper diff --json`: every campaign whose schedule differs from the applied one
    (or only `only`), what changed in its steps and what that does to its leads at `at`.
    Reads only; the caller's transaction should be a read-only one (`Store.read`)."""
    applied = applied_versions(conn)
    names = [
        name
        for name in dict.fromkeys([*config.campaigns, *applied])
        if (only is None or name == only) and not unchanged(config, name, applied.get(name))
    ]
    return {"campaigns": {name: campaign_diff(conn, config, name, applied.get(name), at) for name in names}}


def campaign_diff(
    conn: Connection, config: CampaignFile, name: str, applied: Applied | None, at: datetime
) -> dict[str, Any]:
    new_def = config.schedule_definition(name) if name in config.campaigns else None
    note = None
    seen = applied is not None and applied.definition is None
    gone: list[dict[str, str]] = []
    unreached: list[dict[str, str]] = []
    if applied is None:
        old_def = None
    elif applied.definition is not None:
        old_def = applied.definition
    else:  # recorded before definitions were kept: what the touches show of it
        note = f"{PREDATES} ({PREDATES_LIMITS})"
        old_def, gone, unreached = seen_definition(new_def, touchrows.steps_seen(conn, name))
    steps, matched = step_changes(old_def, new_def)
    steps["removed"] += gone
    steps["unreached"] = unreached
    # Under a version known only from its touches, the steps still to come are unknown:
    # only the pending touches, before and after the re-plan, are compared.
    old = Planner(config.with_applied(name, old_def)) if old_def is not None and not seen else None
    new = Planner(config) if new_def is not None else None
    effects = LeadEffects()
    when = ConditionCounts.of(config, name, old_def, new_def)
    for chunk in leadrows.matching(conn, leads.c.campaign == name):
        rows = touchrows.stored(conn, [lead.id for lead in chunk], name)
        for lead in chunk:
            effects.add(lead_change(lead, rows.get(lead.id, {}), name, old, new, matched, at, ahead=not seen))
        when.add(conn, chunk)
    steps["conditions"] = when.as_json()
    status = "added" if applied is None else "removed" if new_def is None else "changed"
    order = [*_ids(new_def), *(s for s in _ids(old_def) if s not in matched)]
    return {
        "status": status,
        "note": note,
        "applied_at": applied.applied_at.isoformat() if applied is not None else None,
        "steps": steps,
        "leads": effects.as_json(at, order),
    }


# --- the steps ----------------------------------------------------------------------------


def _ids(definition: Mapping[str, Any] | None) -> list[str]:
    return [step["id"] for steps in (definition or {}).get("stages", {}).values() for step in steps]


def _step_index(definition: Mapping[str, Any] | None) -> dict[str, tuple[str, int, Mapping[str, Any]]]:
    """step id -> (stage, place in the stage, the step's data)."""
    return {
        step["id"]: (stage, i, step)
        for stage, steps in (definition or {}).get("stages", {}).items()
        for i, step in enumerate(steps)
    }


def _window(definition: Mapping[str, Any], step: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # The same precedence as CampaignFile.window_for: the step's, the campaign's, the default.
    window: Mapping[str, Any] | None = (
        step["send_window"] or definition["send_window"] or definition["defaults"]["send_window"]
    )
    return window


def window_text(window: Mapping[str, Any] | None) -> str:
    if window is None:
        return "any time"
    days = window["days"]
    indexes = [DAY_NAMES.index(d) for d in days]
    run = len(indexes) > 2 and indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    text = f"{days[0]}-{days[-1]}" if run else ",".join(days)
    return f"{text} {window['hours']}" + (" (not on holidays)" if window["holidays"] else "")


def _change(old: Any, new: Any) -> dict[str, Any] | None:
    return None if old == new else {"from": old, "to": new}


@dataclass
class ConditionCounts:
    """The steps whose `when:` changed, and for each how many of the leads now in its stage
    (and not stopped) it applies to, evaluated now on each lead and its events."""

    config: CampaignFile
    campaign: str
    changed: dict[str, tuple[str, str | None, str | None]]  # step -> (stage, old, new)
    applies: Counter[str] = field(default_factory=Counter)
    leads: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(
        cls, config: CampaignFile, name: str, old_def: Mapping[str, Any] | None, new_def: Mapping[str, Any] | None
    ) -> ConditionCounts:
        before, after = step_conditions(old_def), step_conditions(new_def)
        stage_of = {s["id"]: stage for stage, steps in (new_def or {}).get("stages", {}).items() for s in steps}
        changed = {
            step: (stage_of[step], before.get(step), after.get(step))
            for step in dict.fromkeys([*after, *before])
            if step in stage_of and before.get(step) != after.get(step)
        }
        return cls(config, name, changed)

    def add(self, conn: Connection, chunk: Iterable[Lead]) -> None:
        if not self.changed:
            return
        texts = [new for _, _, new in self.changed.values() if new is not None]
        stages = {stage for stage, _, _ in self.changed.values()}
        active = [lead for lead in chunk if lead.stage in stages and lead.status == "active"]
        # a lead that left this campaign, or was stopped from every one, is not changed by it
        active = [lead for lead in active if not {self.campaign, EVERY_CAMPAIGN} & set(lead.opted_out)]
        needs = any(conditions.uses_history(text) for text in texts)
        events = leadrows.events_of(conn, [lead.id for lead in active], conditions.HISTORY_KINDS) if needs else {}
        for lead in active:
            subject = conditions.subject_for(
                self.config, self.campaign, lead, conditions.History.of(events.get(lead.id, []))
            )
            for step, (stage, _, new) in self.changed.items():
                if lead.stage != stage:
                    continue
                self.leads[step] += 1
                try:
                    self.applies[step] += new is None or conditions.holds(new, subject)
                except conditions.ConditionError:
                    self.failed[step] += 1

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "step": step,
                "stage": stage,
                "from": old,
                "to": new,
                "applies": self.applies[step],
                "leads": self.leads[step],
                "cannot_evaluate": self.failed[step],
            }
            for step, (stage, old, new) in self.changed.items()
        ]


def step_changes(
    old_def: Mapping[str, Any] | None, new_def: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """What changed between two schedule definitions, step by step; and which step of the
    old one each step of the new one continues (old id -> new id: the same id, or one it
    was renamed from)."""
    old, new = _step_index(old_def), _step_index(new_def)
    matched: dict[str, str] = {}
    for step_id, (_, _, step) in new.items():
        if step_id in old:
            matched[step_id] = step_id
        else:
            earlier = next((o for o in step["renamed_from"] if o in old and o not in new), None)
            if earlier is not None:
                matched[earlier] = step_id
    continued = set(matched.values())
    out: dict[str, Any] = {
        "added": [
            {"step": s, "stage": stage, "after": step["after"], "channel": step["channel"]}
            for s, (stage, _, step) in new.items()
            if s not in continued
        ],
        "removed": [{"step": s, "stage": stage} for s, (stage, _, _) in old.items() if s not in matched],
        "renamed": [{"from": o, "to": n} for o, n in matched.items() if o != n],
        "retimed": [],
        "moved": [],
        "reordered": [],
        "changed": [],
        "settings": {},
    }
    for o, n in matched.items():
        (old_stage, _, before), (new_stage, _, after) = old[o], new[n]
        assert old_def is not None and new_def is not None
        if old_stage != new_stage:
            out["moved"].append({"step": n, "from": old_stage, "to": new_stage})
        timing = {
            "after": _change(before["after"], after["after"]),
            "send_window": _change(window_text(_window(old_def, before)), window_text(_window(new_def, after))),
        }
        if any(timing.values()):
            out["retimed"].append({"step": n, "stage": new_stage, **timing})
        kinds = {key: change for key in ("channel", "kind") if (change := _change(before[key], after[key]))}
        if kinds:
            out["changed"].append({"step": n, **kinds})
    for stage, steps in (new_def or {}).get("stages", {}).items():
        now = [s["id"] for s in steps if (was := _old_id(matched, s["id"])) is not None and old[was][0] == stage]
        then = sorted(now, key=lambda s: old[_old_id(matched, s) or s][1])
        if now != then:
            out["reordered"].append({"stage": stage, "from": then, "to": now})
    if old_def is not None and new_def is not None:
        for key, before, after in (
            ("timezone", old_def["defaults"]["timezone"], new_def["defaults"]["timezone"]),
            ("stop_on", old_def["stop_on"], new_def["stop_on"]),
        ):
            if (change := _change(before, after)) is not None:
                out["settings"][key] = change
    return out, matched


def _old_id(matched: Mapping[str, str], new_id: str) -> str | None:
    return next((o for o, n in matched.items() if n == new_id), None)


def seen_definition(
    new_def: Mapping[str, Any] | None, seen: set[tuple[str, str]]
) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, str]]]:
    """The applied version as far as the touches show it, for one recorded before
    definitions were kept. A track is planned one touch ahead, and every step it passed
    has a row: so a file step without touches that comes (by its `after`) before a step
    with touches in its stage is new; one after them all is unreached (no lead got that
    far: new or not, it is still to come for everyone). Returns the definition (the file's
    steps the touches have, under the id and in the stage they have there, and the
    unreached ones, all with the file's timing), the steps the touches have that the
    file lacks (removed), and the unreached steps."""
    stages_of: dict[str, list[str]] = {}
    for stage, step_id in sorted(seen):
        stages_of.setdefault(step_id, []).append(stage)
    base = (
        dict(new_def)
        if new_def is not None
        else {"defaults": {"timezone": "UTC", "send_window": None}, "stop_on": [], "send_window": None, "stages": {}}
    )
    stages: dict[str, list[dict[str, Any]]] = {}
    known: set[str] = set()
    unreached: list[dict[str, str]] = []
    for stage, steps in base["stages"].items():
        ids: list[str | None] = [
            next((s for s in [step["id"], *step["renamed_from"]] if s in stages_of), None) for step in steps
        ]
        reached = [
            Duration.parse(step["after"]).approx_days()
            for step, seen_id in zip(steps, ids, strict=False)
            if seen_id is not None and stage in stages_of[seen_id]
        ]
        for step, seen_id in zip(steps, ids, strict=False):
            if seen_id is None:
                if not reached or Duration.parse(step["after"]).approx_days() > max(reached):
                    unreached.append({"step": step["id"], "stage": stage})
                    stages.setdefault(stage, []).append(step)
                continue  # else: passed by tracks that have rows beyond it, so new
            known.add(seen_id)
            where = stage if stage in stages_of[seen_id] else stages_of[seen_id][0]
            stages.setdefault(where, []).append({**step, "id": seen_id, "renamed_from": []})
    gone = [{"step": step_id, "stage": places[0]} for step_id, places in stages_of.items() if step_id not in known]
    return {**base, "stages": stages}, gone, unreached


# --- the leads ----------------------------------------------------------------------------


@dataclass
class StepEffect:
    """What applying the edit does to one step, counted over the leads."""

    gets: Counter[str] = field(default_factory=Counter)  # ISO week of the due date -> leads
    missed: int = 0  # rows the re-plan writes as `skipped: missed`
    step_removed: int = 0  # pending touches skipped
    loses: int = 0  # leads whose track still held the step, and no longer does
    pending_moved: Counter[int] = field(default_factory=Counter)  # seconds a pending touch moves -> touches
    upcoming_moved: Counter[int] = field(default_factory=Counter)  # seconds a step still to come moves -> leads

    def as_json(self) -> dict[str, Any]:
        return {
            "gets": {"leads": sum(self.gets.values()), "weeks": dict(sorted(self.gets.items()))},
            "missed": self.missed,
            "step_removed": self.step_removed,
            "loses": self.loses,
            "pending_moved": _spread(self.pending_moved, "touches"),
            "upcoming_moved": _spread(self.upcoming_moved, "leads"),
        }


def _spread(moves: Counter[int], unit: str) -> dict[str, Any]:
    """How many moved, and by how much: min, median and max, in seconds."""
    n = sum(moves.values())
    if not n:
        return {unit: 0, "min_seconds": None, "median_seconds": None, "max_seconds": None}
    ordered = sorted(moves.items())

    def nth(k: int) -> int:  # the k-th smallest move (0-based)
        for value, count in ordered:
            if k < count:
                return value
            k -= count
        raise IndexError(k)

    median = nth(n // 2) if n % 2 else (nth(n // 2 - 1) + nth(n // 2)) / 2
    return {unit: n, "min_seconds": ordered[0][0], "median_seconds": median, "max_seconds": ordered[-1][0]}


@dataclass(frozen=True)
class LeadChange:
    """What applying the edit does to one lead."""

    removed: tuple[str, ...] = ()  # steps whose pending touch is skipped (step_removed)
    missed: tuple[str, ...] = ()  # steps written as `skipped: missed`
    gets: tuple[tuple[str, datetime], ...] = ()  # steps it will get, and would not have
    loses: tuple[str, ...] = ()  # steps still to come that it no longer gets
    moves: tuple[tuple[str, bool, int], ...] = ()  # (step, pending?, seconds)
    next_changes: bool = False

    @property
    def any(self) -> bool:
        return bool(self.removed or self.missed or self.gets or self.loses or self.moves or self.next_changes)


@dataclass
class LeadEffects:
    leads: int = 0
    affected: int = 0
    next_touch_changes: int = 0
    steps: dict[str, StepEffect] = field(default_factory=dict)

    def step(self, step_id: str) -> StepEffect:
        return self.steps.setdefault(step_id, StepEffect())

    def add(self, change: LeadChange) -> None:
        self.leads += 1
        self.affected += change.any
        self.next_touch_changes += change.next_changes
        for step_id in change.removed:
            self.step(step_id).step_removed += 1
        for step_id in change.missed:
            self.step(step_id).missed += 1
        for step_id, due in change.gets:
            year, week, _ = due.isocalendar()
            self.step(step_id).gets[f"{year}-W{week:02d}"] += 1
        for step_id in change.loses:
            self.step(step_id).loses += 1
        for step_id, pending, seconds in change.moves:
            effect = self.step(step_id)
            (effect.pending_moved if pending else effect.upcoming_moved)[seconds] += 1

    def as_json(self, at: datetime, order: Iterable[str]) -> dict[str, Any]:
        place = {step_id: i for i, step_id in enumerate(order)}
        return {
            "at": at.isoformat(),
            "in_campaign": self.leads,
            "affected": self.affected,
            "next_touch_changes": self.next_touch_changes,
            "steps": {
                step_id: self.steps[step_id].as_json()
                for step_id in sorted(self.steps, key=lambda s: (place.get(s, len(place)), s))
            },
        }


Future = dict[str, tuple[bool, datetime]]  # step id -> (a pending touch?, its due time)


def future(planner: Planner | None, name: str, lead: Lead, rows: Mapping[str, Stored], *, ahead: bool = True) -> Future:
    """The lead's planned touches in the campaign, and (`ahead`) the steps its track still
    holds for it (as `dripper plan` lists them: not those of a stopped track, nor those a
    held touch will pass over)."""
    planned = {step_id: row.due_at for step_id, row in rows.items() if row.known.state == "planned"}
    out: Future = {step_id: (True, due) for step_id, due in planned.items()}
    campaign = planner.config.campaigns.get(name) if planner is not None else None
    if planner is None or campaign is None or not ahead:
        return out
    since = lead.entered_at
    if stop_reason(campaign.stop_on, lead, since, name) is not None:
        return out
    known = {step_id: row.known for step_id, row in rows.items()}
    resume = max(planned.values()) if planned else None
    for item in track.upcoming(planner.track_of(lead), known, since, resume):
        if item.suppressed_by is None and not item.missed:
            out.setdefault(item.step.id, (False, item.due))
    return out


def replay(
    lead: Lead, rows: Mapping[str, Stored], name: str, planner: Planner | None, at: datetime
) -> tuple[dict[str, Stored], list[str], list[tuple[str, str]]]:
    """The lead's rows after `planner.reconcile` applied the file at `at`, replayed
    without a database: the rows, the steps whose pending touch was skipped
    (`step_removed`), and the (step, state) rows the re-plan wrote anew."""
    after = dict(rows)
    campaign = planner.config.campaigns.get(name) if planner is not None else None
    stages: Mapping[str, list[Any]] = campaign.stages if campaign is not None else {}
    for steps in stages.values():  # touchrows.rename_step: unless the lead has the new id already
        for step in steps:
            for old in step.renamed_from:
                if old in after and step.id not in after:
                    after[step.id] = after.pop(old)
    keep = {(stage, step.id) for stage, steps in stages.items() for step in steps}
    removed = []
    for step_id, row in list(after.items()):  # touchrows.skip_removed_steps
        if row.known.state == "planned" and (row.stage, step_id) not in keep:
            after[step_id] = replace(row, known=track.Known("skipped", "step_removed", row.known.planned_at))
            removed.append(step_id)
    written: list[tuple[str, str]] = []
    if planner is None or campaign is None:
        return after, removed, written
    known = {step_id: row.known for step_id, row in after.items()}
    for planned in track.entry(planner.track_of(lead), known, at, lead.entered_at):
        step_id = planned.step.id  # what touchrows.upsert_rows does with the row planner.replan makes
        had = after.get(step_id)
        if had is not None and had.known.state == "planned":
            held = had.known.reason is not None and had.due_at > planned.due  # held back: keeps its later time
            after[step_id] = replace(had, due_at=had.due_at if held else planned.due, stage=lead.stage)
        elif had is None or had.known.reopens:
            state, reason = planned_state(campaign, lead, planned, at)
            after[step_id] = Stored(track.Known(state, reason, at), lead.stage, planned.due)
            written.append((step_id, state))
    return after, removed, written


def _next(rows: Mapping[str, Stored], rename: Mapping[str, str]) -> tuple[datetime, str] | None:
    pending = [
        (row.due_at, rename.get(step_id, step_id)) for step_id, row in rows.items() if row.known.state == "planned"
    ]
    return min(pending) if pending else None


def lead_change(
    lead: Lead,
    rows: Mapping[str, Stored],
    name: str,
    old: Planner | None,
    new: Planner | None,
    matched: Mapping[str, str],
    at: datetime,
    *,
    ahead: bool = True,
) -> LeadChange:
    """Compare the lead's track under the applied version (`old`) and under the file
    (`new`, after the replayed reconcile); steps keyed by their id in the file. Without
    `ahead`, only the pending touches are compared, not the steps still to come."""
    before = {
        matched.get(step_id, step_id): value for step_id, value in future(old, name, lead, rows, ahead=ahead).items()
    }
    after_rows, removed, written = replay(lead, rows, name, new, at)
    after = future(new, name, lead, after_rows, ahead=ahead)
    gets, loses, moves = [], [], []
    for step_id, (_, due) in after.items():
        if step_id not in before:
            gets.append((step_id, due))
        elif (seconds := round((due - before[step_id][1]).total_seconds())) != 0:
            moves.append((step_id, before[step_id][0], seconds))
    for step_id in before:
        if step_id not in after and step_id not in removed:
            loses.append(step_id)
    return LeadChange(
        removed=tuple(removed),
        missed=tuple(s for s, state in written if state == "skipped"),
        gets=tuple(gets),
        loses=tuple(loses),
        moves=tuple(moves),
        next_changes=_next(rows, matched) != _next(after_rows, {}),
    )


__all__ = [
    "PREDATES",
    "Applied",
    "LeadEffects",
    "StepEffect",
    "applied_versions",
    "campaign_diff",
    "compute",
    "future",
    "lead_change",
    "replay",
    "seen_definition",
    "step_changes",
    "unchanged",
    "window_text",
]
