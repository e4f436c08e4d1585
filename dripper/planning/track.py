"""A lead's track, planned one touch ahead.

A lead on a track has rows in `touches` for what already happened (sent, failed,
skipped, suppressed) and for its next touch (planned or sending): nothing further. The
rest of the track is implied by the campaign: each step's due time follows from the
instant the lead entered the stage, its time zone and its country (`Planner.dues`).
When the next touch reaches its outcome, the one after it is planned in the same
commit. So importing a lead writes one touch row, not one per step, and a campaign edit
re-plans what is pending, not every lead's whole future.

The functions here decide which rows to write, from the track (the steps with their due
times, in the order they go out) and the rows a lead already has. They touch no database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dripper.campaign.model import Step
from dripper.states import PENDING, REPLANNABLE, Channel, TouchState

# A step already this much overdue when it is first planned is skipped (`missed`) rather
# than sent late; at send time, one this overdue is skipped when a later step is due too.
# A lead never gets weeks of mail in one morning.
MISSED_AFTER = timedelta(hours=24)


Track = Sequence[tuple[Step, datetime]]  # the steps of a stage with their due times, in sending order


@dataclass(frozen=True)
class Known:
    """A touch row a lead already has, as far as its track is concerned."""

    state: str
    reason: str | None
    planned_at: datetime

    @property
    def pending(self) -> bool:
        return self.state in PENDING

    @property
    def reopens(self) -> bool:
        return self.state == TouchState.SKIPPED and self.reason in REPLANNABLE

    def closes(self, since: datetime) -> bool:
        """Suppressed on the current stay in the stage (entered at `since`): the track is
        over for this lead (it unsubscribed, replied, converted...)."""
        return self.state == TouchState.SUPPRESSED and self.planned_at >= since


@dataclass(frozen=True)
class Planned:
    """A row to write: the step, its due time, and whether it is skipped as `missed`."""

    step: Step
    due: datetime
    missed: bool = False


def _open(row: Known | None) -> bool:
    return row is None or row.reopens


def entry(track: Track, known: Mapping[str, Known], at: datetime, since: datetime) -> list[Planned]:
    """The rows to write when a lead's track is planned at `at` (it entered the stage at
    `since`, now or earlier): every pending row follows the campaign's due times; if the
    lead has no pending touch, its next step is planned; a step without a row that is
    more than a day overdue on the way there is `missed` (inserted into a live campaign,
    time zone changed mid-track). Steps already done are left alone."""
    out: list[Planned] = []
    ahead = any(row.closes(since) for step, _ in track if (row := known.get(step.id)) is not None)
    for step, due in track:
        row = known.get(step.id)
        if row is not None and row.pending:
            if row.state == TouchState.PLANNED:
                out.append(Planned(step, due))  # its due time follows the campaign
            ahead = True
        elif _open(row) and not ahead:
            missed = due < at - MISSED_AFTER
            out.append(Planned(step, due, missed))
            ahead = not missed
    return out


def advance(track: Track, known: Mapping[str, Known], after: str, at: datetime, since: datetime) -> list[Planned]:
    """The rows to write when step `after` reached its outcome at `at`: the next step of
    the track, unless one is pending already or the track was closed. Catching up (the
    worker was down): a next step more than a day overdue is `missed` when the one after
    it is due too, and the latest due step goes out."""
    steps = list(track)
    index = next((i for i, (step, _) in enumerate(steps) if step.id == after), None)
    if index is None:
        return []
    out: list[Planned] = []
    for position in range(index + 1, len(steps)):
        step, due = steps[position]
        row = known.get(step.id)
        if row is not None and (row.pending or row.closes(since)):
            break
        if not _open(row):
            continue  # done on an earlier stay in this stage
        if superseded(steps, position, at):
            out.append(Planned(step, due, missed=True))
            continue
        out.append(Planned(step, due))
        break
    return out


def superseded(track: Track, position: int, at: datetime) -> bool:
    """Is the step at `position` more than a day overdue at `at`, with a later step of the
    track due by then? Then it is skipped (`missed`) and the later one goes out.

    Never a call: a call is what sales values most, and a late one is still worth making.
    It becomes its task when its turn comes (listed as overdue when that is after the day it
    fell due), and the catch-up goes on with the steps after it."""
    step, due = track[position]
    if step.channel == Channel.CALL:
        return False
    return due < at - MISSED_AFTER and any(later <= at for _, later in track[position + 1 :])


def position(track: Track, step_id: str) -> int | None:
    return next((i for i, (step, _) in enumerate(track) if step.id == step_id), None)


@dataclass(frozen=True)
class Upcoming:
    """A step the track will reach, not planned yet: shown by `plan` and counted by `report`."""

    step: Step
    due: datetime
    suppressed_by: str | None = None  # the reason the track was closed, or None: it will be planned
    missed: bool = False  # it falls due while the pending touch is held, and a later one too


def upcoming(
    track: Track, known: Mapping[str, Known], since: datetime, resume: datetime | None = None
) -> Iterator[Upcoming]:
    """The steps after the lead's pending (or closing) touch that have no row yet: what
    the track still holds. A closed track's are suppressed, for the reason that closed it.

    `resume`: when the pending touch goes out, if it was held past its own due time (a
    pause, an out-of-office, retries). Steps that fall due before then go out with it,
    and those a later step supersedes by then are `missed`, as `advance` will find."""
    anchor = None
    closed: str | None = None
    for index, (step, _) in enumerate(track):
        row = known.get(step.id)
        if row is None:
            continue
        if row.pending:
            anchor = index
        elif row.closes(since):
            anchor, closed = index, row.reason or TouchState.SUPPRESSED
    if anchor is None:
        return
    for index in range(anchor + 1, len(track)):
        step, due = track[index]
        if not _open(known.get(step.id)):
            continue
        if closed is None and resume is not None and due < resume:
            yield Upcoming(step, due, missed=True) if superseded(track, index, resume) else Upcoming(step, resume)
        else:
            yield Upcoming(step, due, closed)


__all__ = [
    "MISSED_AFTER",
    "PENDING",
    "REPLANNABLE",
    "Known",
    "Planned",
    "Track",
    "Upcoming",
    "advance",
    "entry",
    "position",
    "superseded",
    "upcoming",
]
