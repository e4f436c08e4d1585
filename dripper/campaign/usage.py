"""What a campaigns file uses: its steps, and the channels they go out on."""

from __future__ import annotations

from collections.abc import Iterator

from dripper.campaign.model import CampaignFile, Step


def all_steps(config: CampaignFile) -> Iterator[Step]:
    """Every step of every stage's track of every campaign."""
    for campaign in config.campaigns.values():
        for track in campaign.stages.values():
            yield from track


def step_count(config: CampaignFile) -> int:
    return sum(1 for _ in all_steps(config))


def channels_used(config: CampaignFile) -> set[str]:
    """The channels some step goes out on: what needs its output folder, its libraries."""
    return {step.channel for step in all_steps(config)}
