"""Is one A/B variant better? The significance test and the sentence the report prints.

The test is Fisher's exact test (scipy.stats.fisher_exact, two-sided) on the 2×2 table
(sent with and without the outcome) of the leading variant against each other one. Why
Fisher's and not the two-proportion z-test: replies and conversions are rare (a few per
hundred sends), and the z-test's normal approximation overstates the evidence when a
variant has only a handful of them; Fisher's test is exact at any count, and scipy
computes it in well under a millisecond even for millions of sends. With more than two
variants the leader must beat every other one, each at (1 - confidence) / (k - 1)
(Bonferroni), so that the report's confidence holds for the claim as a whole.

"About N more sends needed" is the standard sample size for comparing two proportions
(Fleiss, without continuity correction), for the observed rates p1 (leader) and p2
(runner-up), at the test's significance level α and 80% power:

    n = (z(1-α/2)·√(2·p̄·(1-p̄)) + z(0.8)·√(p1·(1-p1) + p2·(1-p2)))² / (p1 - p2)²

sends per variant, p̄ = (p1 + p2) / 2, and at least 30 (MIN_SENDS); N is what every
variant still lacks of n. It is an estimate from the rates seen so far: it moves as they do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

POWER = 0.8  # the chance of seeing a difference of the size observed, if it is real
# The estimate's floor, sends per variant: from very few sends the normal approximation
# behind the formula promises far too much (1 reply in 1 send against 0 in 2 asks for 4).
MIN_SENDS = 30
TEST = "fisher_exact"


@dataclass(frozen=True)
class Arm:
    """One variant's figures: touches sent, and how many of them brought the outcome."""

    name: str
    sent: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Verdict:
    metric: str  # replies | conversions
    confidence: float  # the level asked for
    leader: str | None  # the variant with the highest rate (None: nothing to compare)
    p_value: float | None  # the largest of the leader's p-values against the others
    significant: bool
    more_sends: int | None  # about how many more sends (all variants together) are needed
    sentence: str

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "test": TEST,
            "confidence": self.confidence,
            "leader": self.leader,
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "significant": self.significant,
            "more_sends_needed": self.more_sends,
            "sentence": self.sentence,
        }


def _percent(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def sample_size(p1: float, p2: float, alpha: float, power: float = POWER) -> float:
    """Sends per variant to tell rates p1 and p2 apart at level alpha (two-sided) with
    `power` (Fleiss, no continuity correction); infinite when they are equal."""
    from scipy.stats import norm

    if p1 == p2:
        return math.inf
    mean = (p1 + p2) / 2
    top = norm.ppf(1 - alpha / 2) * math.sqrt(2 * mean * (1 - mean)) + norm.ppf(power) * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return float(top**2 / (p1 - p2) ** 2)


def compare(arms: Sequence[Arm], metric: str, confidence: float) -> Verdict:
    """The leading variant on `metric`, whether it leads with `confidence`, and if not,
    about how many more sends it takes to tell."""
    from scipy.stats import fisher_exact

    def verdict(leader: str | None, p: float | None, significant: bool, more: int | None, sentence: str) -> Verdict:
        return Verdict(metric, confidence, leader, p, significant, more, sentence)

    if len(arms) < 2:
        return verdict(None, None, False, None, "not enough data yet: only one variant has been sent")
    unsent = [arm.name for arm in arms if not arm.sent]
    if unsent:
        return verdict(None, None, False, None, f"not enough data yet: variant {', '.join(unsent)} not sent yet")
    ranked = sorted(arms, key=lambda arm: (-arm.rate, arm.name))
    leader, runner_up = ranked[0], ranked[1]
    if leader.successes == 0:
        return verdict(None, None, False, None, f"not enough data yet: no {metric} yet")
    alpha = (1 - confidence) / (len(arms) - 1)  # Bonferroni: the leader against each other one
    p_values = [
        float(
            fisher_exact(
                [[leader.successes, leader.sent - leader.successes], [other.successes, other.sent - other.successes]]
            )[1]
        )
        for other in ranked[1:]
    ]
    worst = max(p_values)
    if worst < alpha:
        return verdict(
            leader.name, worst, True, 0, f"variant {leader.name} leads on {metric}, {_percent(confidence)} confidence"
        )
    if leader.rate == runner_up.rate:
        return verdict(None, worst, False, None, f"not enough data yet: the variants are level on {metric} so far")
    needed = max(sample_size(leader.rate, runner_up.rate, alpha), MIN_SENDS)
    more = sum(max(0, math.ceil(needed) - arm.sent) for arm in arms)
    if more:
        return verdict(leader.name, worst, False, more, f"not enough data yet: about {more} more sends needed")
    sent = sum(arm.sent for arm in arms)
    return verdict(
        leader.name,
        worst,
        False,
        0,
        f"no clear winner on {metric} yet: variant {leader.name} is ahead after {sent} sends, "
        f"but not at {_percent(confidence)} confidence (p = {worst:.2g})",
    )


__all__ = ["POWER", "TEST", "Arm", "Verdict", "compare", "sample_size"]
