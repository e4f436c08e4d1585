"""`dripper simulate`: the touches a new lead would receive, with their rendered subjects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateError

from dripper.campaign import variants
from dripper.campaign.model import Campaign, CampaignFile, Step
from dripper.campaign.templates import sample_lead
from dripper.config import Loaded
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

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "stage": self.stage,
            "day": self.day,
            "date": self.due.isoformat(),
            "step": self.step,
            "channel": self.channel,
            "kind": self.kind,
            "subject": self.subject,
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
) -> list[SimulatedTouch]:
    """What a sample lead entering at `start` receives within `days` days, track by track
    (see `tracks`), each in sending order."""
    config = loaded.campaigns
    lead = sample_lead(config, any_attrs=False)
    found: list[SimulatedTouch] = []
    for name, stage_name in tracks(config, campaigns, stage):
        camp = config.campaigns[name]
        for entry in timeline(loaded.planner, name, stage_name, start, days, tz, country):
            step = variants.for_lead(entry.step, lead.email, camp)  # the sample lead's A/B variant
            ctx = loaded.renderer.context(lead, camp, step, _SAMPLE_UNSUBSCRIBE_URL, entry.due)
            subject = _subject(loaded, camp, step, ctx)
            found.append(
                SimulatedTouch(
                    name, stage_name, entry.day, entry.due, entry.step.id, entry.step.channel, entry.step.kind, subject
                )
            )
    return found


def _subject(loaded: Loaded, campaign: Campaign, step: Step, ctx: dict[str, Any]) -> str:
    """The subject for the sample lead; what stops it when it cannot render (an undeclared
    column the sample lead lacks: a real lead with that column gets its subject)."""
    if not step.subject:
        return ""
    try:
        return loaded.renderer.subject(campaign, step, ctx)
    except TemplateError as exc:
        return f"(not rendered for the sample lead: {exc})"
