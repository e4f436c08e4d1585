"""`dripper simulate`: the touches a new lead would receive, with their rendered subjects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from jinja2 import TemplateError

from dripper.campaign import conditions, languages, variants
from dripper.campaign.model import Campaign, CampaignFile, Step
from dripper.campaign.templates import sample_lead
from dripper.config import Loaded
from dripper.leads.records import POSTAL_COLUMNS, Lead
from dripper.planning.planner import timeline

# Simulated leads have no real unsubscribe link; templates still get a URL to show.
_SAMPLE_UNSUBSCRIBE_URL = "https://example.invalid/u/x"


@dataclass(frozen=True)
class SimulatedTouch:
    campaign: str
    stage: str
    day: int  # days after the lead entered the stage
    due: datetime
    step: str
    channel: str
    kind: str
    subject: str  # rendered for a sample lead; empty for a step without one
    when: str | None = None  # the step's condition
    applies: bool | None = None  # whether it holds for the simulated lead (None: cannot be evaluated)

    def as_json(self) -> dict[str, Any]:
        extra = {"when": self.when, "applies": self.applies} if self.when is not None else {}
        return {
            "campaign": self.campaign,
            "stage": self.stage,
            "day": self.day,
            "date": self.due.isoformat(),
            "step": self.step,
            "channel": self.channel,
            "kind": self.kind,
            "subject": self.subject,
            **extra,
        }


def tracks(config: CampaignFile, campaigns: Sequence[str], stage: str | None) -> list[tuple[str, str]]:
    """The (campaign, stage) tracks simulated: `stage` of each campaign, or all their stages."""
    return [(name, s) for name in campaigns for s in ([stage] if stage else list(config.campaigns[name].stages))]


def simulate(
    loaded: Loaded,
    campaigns: Sequence[str],
    stage: str | None,
    start: datetime,
    days: int,
    tz: str | None,
    country: str,
    lead: Lead | None = None,
    history: conditions.History = conditions.EMPTY,
) -> list[SimulatedTouch]:
    """What a lead entering at `start` receives within `days` days, track by track (see
    `tracks`), each in sending order: a sample lead, or `lead` (`--lead`, `--attr`) with
    its events (`history`), each step's condition evaluated for it."""
    config = loaded.campaigns
    lead = lead or sample_lead(config, any_attrs=False)
    found: list[SimulatedTouch] = []
    for name, stage_name in tracks(config, campaigns, stage):
        camp = config.campaigns[name]
        for entry in timeline(loaded.planner, name, stage_name, start, days, tz, country):
            step = variants.for_lead(entry.step, lead.email, camp)  # the sample lead's A/B variant
            ctx = loaded.renderer.context(lead, camp, step, _SAMPLE_UNSUBSCRIBE_URL, entry.due)
            subject = _subject(loaded, camp, step, ctx)
            when = entry.step.when
            applies = _applies(config, name, lead, stage_name, history, when) if when is not None else None
            found.append(
                SimulatedTouch(
                    name,
                    stage_name,
                    entry.day,
                    entry.due,
                    entry.step.id,
                    entry.step.channel,
                    entry.step.kind,
                    subject,
                    when,
                    applies,
                )
            )
    return found


def _applies(
    config: CampaignFile, campaign: str, lead: Lead, stage: str, history: conditions.History, when: str
) -> bool | None:
    """The condition for the lead as it would be on this track (its campaign and stage)."""
    on_track = replace(lead, campaign=campaign, stage=stage)
    try:
        return conditions.holds(when, conditions.subject_for(config, campaign, on_track, history))
    except conditions.ConditionError:
        return None


def simulated_lead(config: CampaignFile, values: Mapping[str, str], country: str = "") -> Lead:
    """The sample lead with `values` (`--attr k=v`: a lead column such as `country` or
    `language`, else an attribute) and `--country` as its country."""
    lead = sample_lead(config, any_attrs=False)
    columns: dict[str, Any] = {k: v for k, v in values.items() if k in SIMULATED_COLUMNS}
    attrs = {**lead.attrs, **{k: v for k, v in values.items() if k not in SIMULATED_COLUMNS}}
    if country and "country" not in columns:
        columns["country"] = country
    if columns.get("language"):  # as an import keeps it (`de_de` -> de-DE); a ValueError names a bad one
        columns["language"] = languages.normalize(columns["language"])
    return replace(lead, attrs=attrs, **columns)


# What `--attr` sets as a lead column rather than an attribute.
SIMULATED_COLUMNS = frozenset(
    {"email", "first_name", "last_name", "company", "timezone", *POSTAL_COLUMNS, "language", "owner", "consent_source"}
)


def _subject(loaded: Loaded, campaign: Campaign, step: Step, ctx: dict[str, Any]) -> str:
    """The subject for the sample lead; what stops it when it cannot render (an undeclared
    column the sample lead lacks: a real lead with that column gets its subject)."""
    if not step.subject:
        return ""
    try:
        return loaded.renderer.subject(campaign, step, ctx)
    except TemplateError as exc:
        return f"(not rendered for the sample lead: {exc})"
