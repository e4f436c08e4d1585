"""The cadence lint: does each track keep in touch the way the brief says?

The brief behind dripper (docs/marketers/campaigns.md, "The cadence check"): a touch
every other week for the first six weeks, then about monthly, for at least six months.
A track that falls silent for two months, or stops after four weeks, loses the lead to
whoever is still in touch when they are ready to buy. `dripper check` warns about such a track (a warning: the
file is valid, and a marketer may mean it), located at the track or at the step that
ends the silence.

What is checked, per campaign and stage:
- the track reaches `min_span` (default 6mo): its last step is due at least that long
  after the lead entered the stage;
- no gap longer than `max_gap` (default 45d) starts inside that span: from the stage's
  time zero to the first step, and between consecutive steps. After `min_span` a track
  may thin out (quarterly touches in the second half-year are fine).

Durations are compared as a rule of thumb, a month counting as 30 days: `6mo`, `26w`
and `180d` all reach six months; the real calendar moves a due date by a day or two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from dripper.campaign.timing import Duration
from dripper.errors import Problem

if TYPE_CHECKING:
    from dripper.campaign.model import CampaignFile, Step

DAYS_PER_MONTH = 30  # the rule of thumb above: "about monthly" is 28 to 31 days


def _duration(value: object) -> Duration:
    return value if isinstance(value, Duration) else Duration.parse(value)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class CadenceSpec(_Spec):
    """`defaults: {cadence: {max_gap: 45d, min_span: 6mo}}`."""

    max_gap: Annotated[Duration, BeforeValidator(_duration)] = Field(
        Duration(days=45), description="the longest silence allowed within min_span"
    )
    min_span: Annotated[Duration, BeforeValidator(_duration)] = Field(
        Duration(months=6), description="how long after entering a stage its track must reach"
    )


class Quiet(_Spec):
    """`quiet: {cadence: [negotiation, …]}` on a campaign: tracks whose cadence warnings
    the marketer has looked at and accepts (a track is a YAML list, so it has no key of
    its own to put this on)."""

    cadence: list[str] = Field(default_factory=list)


def nominal_days(duration: Duration) -> float:
    """A duration as days, a month counting as DAYS_PER_MONTH."""
    return duration.months * DAYS_PER_MONTH + duration.days + duration.seconds / 86400


def _days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


@dataclass(frozen=True)
class TrackGap:
    """A silence inside the required span: from `start` (None: the stage's time zero) to
    the step at index `step`, due `end` after the stage began."""

    start: Duration | None
    step: int
    end: Duration
    days: float


def track_problems(afters: list[Duration], spec: CadenceSpec) -> tuple[Duration | None, list[TrackGap]]:
    """For one track's step offsets (file order): where it ends (Duration(): no steps)
    when that is before `min_span`, else None; and every gap over `max_gap` that starts
    inside `min_span`. The silence after the last step is the first warning, not a gap."""
    span, limit = nominal_days(spec.min_span), nominal_days(spec.max_gap)
    gaps: list[TrackGap] = []
    previous: Duration | None = None
    for i in sorted(range(len(afters)), key=lambda i: nominal_days(afters[i])):
        start = nominal_days(previous) if previous is not None else 0.0
        if start >= span:
            break
        days = nominal_days(afters[i]) - start
        if days > limit:
            gaps.append(TrackGap(previous, i, afters[i], days))
        previous = afters[i]
    end = previous if previous is not None else Duration()
    return (end if nominal_days(end) < span else None), gaps


def warnings(config: CampaignFile) -> list[Problem]:
    """Every cadence warning of the file, in file order, located."""
    found = list(_warnings(config))
    return sorted(found, key=lambda p: (p.location.line, p.location.column))


def _warnings(config: CampaignFile) -> Iterator[Problem]:
    spec = config.defaults.cadence
    for name, campaign in config.campaigns.items():
        quiet = set(campaign.quiet.cadence)
        base = ("campaigns", name)
        for j, stage in enumerate(campaign.quiet.cadence):
            if stage not in campaign.stages:
                yield Problem(
                    config.location((*base, "quiet", "cadence", j)),
                    f"warning: quiet: campaign {name!r} has no stage {stage!r}, so nothing is silenced",
                )
        for stage, steps in campaign.stages.items():
            if stage not in quiet:
                yield from _track_warnings(config, name, stage, steps, spec)


def _track_warnings(
    config: CampaignFile, name: str, stage: str, steps: list[Step], spec: CadenceSpec
) -> Iterator[Problem]:
    where = f"warning: campaign {name!r}, stage {stage!r}:"
    quiet = f"or quiet: {{cadence: [{stage}]}} on the campaign"
    path = ("campaigns", name, "stages", stage)
    ends, gaps = track_problems([s.after for s in steps], spec)
    for gap in gaps:
        since = f"between {gap.start}" if gap.start is not None else "between the start"
        yield Problem(
            config.location((*path, gap.step, "after")),
            f"{where} {_days(gap.days)} without a touch {since} and {steps[gap.step].id!r} at {gap.end} "
            f"(max_gap {spec.max_gap}); add a step in between, {quiet}",
        )
    if ends is not None:
        last = "has no steps" if not steps else f"ends at {ends} ({_days(nominal_days(ends))})"
        yield Problem(
            config.location(path, key=True),
            f"{where} the track {last}, before min_span {spec.min_span}; add steps up to {spec.min_span}, {quiet}",
        )


__all__ = ["CadenceSpec", "Quiet", "TrackGap", "nominal_days", "track_problems", "warnings"]
