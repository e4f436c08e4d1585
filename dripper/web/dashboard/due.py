"""What is due in the dashboard's next days: each lead's next touch, and the later steps of
its track that fall inside the window too, counted with bounded work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Connection

from dripper.campaign import timing
from dripper.campaign.model import CampaignFile
from dripper.campaign.timing import Duration
from dripper.planning.planner import Planner
from dripper.reports import funnel as report
from dripper.store.queries import dashrows, leadrows
from dripper.web.dashboard.layout import Layout

WINDOW_DAYS = 7
CHUNK = 1000  # leads whose later steps are looked at per query


@dataclass
class DueSoon:
    """Touches due in the window, by local day: each lead's next touch (a row) and the later
    steps of its track that fall inside the window too."""

    days: list[date]
    by_day: dict[date, dict[str, int]] = field(default_factory=dict)
    by_step: dict[tuple[str, str, str], dict[date, int]] = field(default_factory=dict)
    later: int = 0  # of them, steps after the lead's next touch
    looked_at: int = 0  # of those, the leads whose later steps could fall in the window (their tracks walked)

    def add(self, campaign: str, step: str, channel: str, day: date, n: int = 1, *, later: bool = False) -> None:
        if day not in self.by_day:
            return
        self.by_day[day][channel] = self.by_day[day].get(channel, 0) + n
        cell = self.by_step.setdefault((campaign, step, channel), {})
        cell[day] = cell.get(day, 0) + n
        if later:
            self.later += n

    @property
    def total(self) -> int:
        return sum(sum(v.values()) for v in self.by_day.values())


_DST = timedelta(hours=2)  # a day on a lead's wall clock is 23 to 25 hours long


def _least(after: Duration) -> timedelta:
    """The least time `after` adds on any lead's clock (a month is at least 28 days)."""
    return timedelta(days=28 * after.months + after.days, seconds=after.seconds) - _DST


def _most(after: Duration) -> timedelta:
    return timedelta(days=31 * after.months + after.days, seconds=after.seconds) + _DST


def later_cutoffs(config: CampaignFile, end: datetime) -> dict[tuple[str, str], datetime]:
    """(campaign, step) -> the instant a lead whose next touch is that step must have
    entered the stage before, for a later step of its track to be due before `end`.

    A step is never due before the lead's entry plus its `after` (a send window only moves
    it on), so the earliest any later step can be due is entry + the least `after` among
    the steps that can come after this one: every other step of the track but those
    surely due before it and listed before it. Only the leads past the cutoff need their
    tracks walked; the rest cannot have a later step in the window."""
    out: dict[tuple[str, str], datetime] = {}
    for name, campaign in config.campaigns.items():
        for steps in campaign.stages.values():
            for k, step in enumerate(steps):
                later = [
                    other.after
                    for j, other in enumerate(steps)
                    if j != k and not (j < k and _most(other.after) < _least(step.after))
                ]
                if later:
                    out[(name, step.id)] = end - min(_least(after) for after in later)
    return out


def due_soon(conn: Connection, planner: Planner, layout: Layout, now: datetime) -> DueSoon:
    """Bounded work: the next touches are counted by one aggregate over the index of
    planned touches, and only the leads whose later steps can fall in the window (see
    `later_cutoffs`) have their tracks walked, a chunk at a time."""
    first = layout.day(now)
    days = [first + timedelta(days=i) for i in range(WINDOW_DAYS)]
    bounds = [now] + [timing.localize(datetime.combine(day + timedelta(days=1), time()), layout.zone) for day in days]
    end = bounds[-1]
    soon = DueSoon(days, {day: {} for day in days})
    for campaign, step, channel, index, n in dashrows.planned_by_day(conn, bounds):
        soon.add(campaign, step, channel, days[index], n)
    lead_ids = dashrows.later_candidates(conn, now, end, later_cutoffs(planner.config, end))
    soon.looked_at = len(lead_ids)
    for i in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[i : i + CHUNK]
        found = leadrows.by_ids(conn, chunk)
        their = dashrows.touches_of(conn, chunk)
        for lead_id in chunk:
            if (lead := found.get(lead_id)) is None:
                continue
            for item in report.upcoming_rows(planner, lead, their[lead_id]):
                if item["state"] == "planned" and now < item["due_at"] < end:
                    soon.add(item["campaign"], item["step_id"], item["channel"], layout.day(item["due_at"]), later=True)
    return soon


__all__ = ["CHUNK", "WINDOW_DAYS", "DueSoon", "due_soon", "later_cutoffs"]
