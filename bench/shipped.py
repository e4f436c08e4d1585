"""What several benchmarks render: the shipped `research-thanks` e-mail, for N leads that
differ in name and product, so that no cache serves one lead's render to the next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dripper.campaign import model as campaigns
from dripper.campaign import templates as render

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Shipped:
    renderer: render.Renderer
    campaign: campaigns.Campaign
    step: campaigns.Step
    contexts: list[dict[str, Any]]  # one a lead


def research_thanks(n: int) -> Shipped:
    config = campaigns.load(ROOT / "campaigns.yaml")
    renderer = render.Renderer(config, render.TemplateSet.load(ROOT / "templates"))
    campaign = config.campaigns["literature-follow-up"]
    _stage, step = campaign.step("research-thanks")
    lead = render.sample_lead(config)
    now = datetime.now().astimezone()
    contexts = []
    for i in range(n):
        view = render.LeadView(**{**lead.__dict__, "first_name": f"Lead{i}", "attrs": {"product": f"valve {i}"}})
        contexts.append(renderer.context(view, campaign, step, f"https://x.example/u/{i}", now))
    return Shipped(renderer, campaign, step, contexts)
