"""`auto_winner:` ends an A/B test by itself: once every variant of the step has
`min_sends` sends and the report's test (dripper/reports/abtest.py) says one leads on the
metric with the confidence asked for, that variant is recorded as the winner (table
ab_winners) and every later send of the step uses it, as if `winner:` were written.

The figures are the report's own (sends and outcomes per variant within the attribution
window), so the decision is the one `dripper report` shows. They are looked at when a
tick starts, at most once every CHECK_EVERY by the business clock, and only while some
step with auto_winner has no winner yet: the outcome query reads every outcome event.
Once recorded, a winner stays, whatever later figures say.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection

from dripper.campaign import variants
from dripper.campaign.model import CampaignFile, Step
from dripper.config import Loaded
from dripper.reports import abtest
from dripper.store import Store
from dripper.store.queries import abrows, reportrows

CHECK_EVERY = timedelta(hours=1)
_KIND = {figure: kind for kind, figure in reportrows.OUTCOMES.items()}  # replies -> replied


def _undecided(config: CampaignFile) -> list[tuple[str, str]]:
    """(campaign, step id) of the steps whose auto_winner may still end their test."""
    return [
        (name, step.id)
        for name, campaign in config.campaigns.items()
        for steps in campaign.stages.values()
        for step in steps
        if step.variants and step.auto_winner is not None and step.winner is None
    ]


def decide(conn: Connection, config: CampaignFile, now: datetime) -> dict[tuple[str, str], str]:
    """Record the winners the figures now show (for steps not yet decided), if the last
    look was CHECK_EVERY ago; return every recorded winner of a step with auto_winner."""
    pending = _undecided(config)
    if not pending:
        return {}
    decided = abrows.winners(conn)
    open_tests = [key for key in pending if key not in decided]
    last = abrows.checked_at(conn)
    if open_tests and (last is None or not last <= now < last + CHECK_EVERY):
        abrows.mark_checked(conn, now)
        with reportrows.without_jit(conn):
            results = reportrows.outcomes(conn, config.reporting.attribution_window)
            sent = reportrows.sent_by_variant(conn)
        for campaign, step_id in open_tests:
            step = config.campaigns[campaign].step(step_id)[1]  # type: ignore[index]
            rule = step.auto_winner
            assert rule is not None
            arms = [
                abtest.Arm(
                    name,
                    sent.get((campaign, step_id, name), 0),
                    results.by_variant.get((campaign, step_id, name, _KIND[rule.metric]), 0),
                )
                for name in variants.names(step.variants)
            ]
            if min(arm.sent for arm in arms) < rule.min_sends:
                continue
            verdict = abtest.compare(arms, rule.metric, rule.confidence)
            if verdict.significant and verdict.leader is not None:
                abrows.record(conn, campaign, step_id, verdict.leader, now, verdict.sentence)
        decided = abrows.winners(conn)  # another worker's, if it recorded one first
    return {key: decided[key] for key in pending if key in decided}


def auto_winner(step: Step, campaign: str, decided: Mapping[tuple[str, str], str]) -> str | None:
    """The winner auto_winner recorded for the step, if it still applies: the step still
    has auto_winner and no winner: of its own."""
    if step.auto_winner is None or step.winner is not None:
        return None
    return decided.get((campaign, step.id))


def with_winners(config: CampaignFile, winners: Mapping[tuple[str, str], str]) -> CampaignFile:
    """The file with each (campaign, step)'s winner written in, as `winner:` would be."""
    if not winners:
        return config
    campaigns = dict(config.campaigns)
    for name in {campaign for campaign, _ in winners}:
        campaign = config.campaigns[name]
        stages = {
            stage: [
                step.model_copy(update={"winner": winners[(name, step.id)]}) if (name, step.id) in winners else step
                for step in steps
            ]
            for stage, steps in campaign.stages.items()
        }
        copy = campaign.model_copy(update={"stages": stages})
        copy._by_id = {}  # the copy shares the original's index: a fresh one, of its own steps
        copy.model_post_init(None)
        copy._name = name
        campaigns[name] = copy
    return config.model_copy(update={"campaigns": campaigns})


def applied(store: Store, loaded: Loaded, now: datetime) -> Loaded:
    """`loaded` as the tick sends it: with the winners auto_winner declared. Without any
    step with auto_winner, `loaded` itself (and no query)."""
    if not _undecided(loaded.campaigns):
        return loaded
    with store.begin() as conn:
        winners = decide(conn, loaded.campaigns, now)
    if not winners:
        return loaded
    # Winners change wording, not timing or the sender: the planner and renderer stay.
    return Loaded(with_winners(loaded.campaigns, winners), loaded.templates, loaded.renderer, loaded.planner)


__all__ = ["CHECK_EVERY", "applied", "auto_winner", "decide", "with_winners"]
