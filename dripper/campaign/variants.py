"""A/B variants of a step: which version (subject and/or template) each lead gets.

A step with `variants:` sends each lead one of them. The choice is a pure function of the
lead's e-mail address, the campaign, the step id and the variants as written (names and
weights), so a re-run, another worker, `plan` and `preview` all agree without storing
anything first; the touch records the variant it was sent with (touches.variant).

The choice is weighted rendezvous hashing (highest random weight, Schindelhauer &
Schomaker 2005): each variant draws a score from a hash of (lead, campaign, step, variant
name), `-ln(u) / weight`, and the lowest score wins. A variant wins with probability
weight / total, and an edit moves only the leads it must: adding a variant moves leads only
*to* it, dropping one moves only *its* leads, changing one weight moves leads only to or
from that variant, and reordering or editing the wording moves nobody. (Cumulative weights
on one hash would reshuffle leads between the untouched variants too.)

`winner:` ends the test: every later send uses that variant; what was sent keeps the
variant it recorded.
"""

from __future__ import annotations

import hashlib
import math
import string
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from dripper.errors import Problem

if TYPE_CHECKING:
    from dripper.campaign import yamlpos
    from dripper.campaign.model import Campaign, CampaignFile, Step

Metric = Literal["replies", "conversions"]


class Variant(BaseModel):
    """One version of a step. What it leaves out is the step's own (subject, template)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Default: A, B, C... by position. At most what touches.variant holds.
    name: str | None = Field(None, min_length=1, max_length=64)
    subject: str | None = None
    template: str | None = None
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)


class AutoWinner(BaseModel):
    """End the test by itself: once every variant has `min_sends` sends and one leads on
    `metric` with `confidence` (the report's test), it is the winner (dripper/reports/winners.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric = "replies"
    min_sends: int = Field(500, ge=1)
    confidence: float = Field(0.95, gt=0.5, lt=1)


def names(variants: Sequence[Variant]) -> list[str]:
    """The variants' names: given, or A, B, C... by position (AA, AB... past Z)."""
    return [v.name if v.name is not None else _letters(i) for i, v in enumerate(variants)]


def _letters(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else _letters(index // len(letters) - 1) + letters[index % 26]


def _unit(*parts: str) -> float:
    """A number in (0, 1) from the parts: SHA-256, the same on every machine and run
    (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64


def choose(email: str, campaign: str, step_id: str, variants: Sequence[Variant]) -> str:
    """The variant a lead gets while the test runs (weighted rendezvous hashing)."""
    email = email.strip().lower()
    scored = [
        (-math.log(_unit(email, campaign, step_id, name)) / variant.weight, name)
        for name, variant in zip(names(variants), variants, strict=True)
    ]
    return min(scored)[1]


def variant_for(email: str, campaign: str, step: Step) -> str | None:
    """The variant a send of `step` to this lead uses now: the winner once declared, else
    the lead's own; None for a step without variants."""
    variants: Sequence[Variant] = step.variants
    if not variants:
        return None
    if step.winner is not None:
        return step.winner
    return choose(email, campaign, step.id, variants)


def resolved(step: Step, name: str | None) -> Step:
    """The step as variant `name` has it: its subject and template in place of the step's,
    with no variants left (so rendering it again resolves nothing). `name` None, or a step
    without variants: the step as it is."""
    if name is None or not step.variants:
        return step
    for found, variant in zip(names(step.variants), step.variants, strict=True):
        if found == name:
            one = step.model_copy(
                update={
                    "subject": variant.subject if variant.subject is not None else step.subject,
                    "template": variant.template or step.template,
                    "variants": [],
                    "winner": None,
                    "auto_winner": None,
                }
            )
            one._variant = name
            return one
    raise KeyError(f"step {step.id!r} has no variant {name!r} (it has {', '.join(names(step.variants))})")


def for_lead(step: Step, email: str, campaign: Campaign) -> Step:
    """The step as this lead receives it now (see `variant_for`)."""
    return resolved(step, variant_for(email, campaign.name, step))


def each(step: Step) -> Iterator[tuple[int | None, Step]]:
    """(index in variants:, the step as that variant) for every variant; (None, step) for a
    step without variants (`check` renders every one)."""
    if not step.variants:
        yield None, step
        return
    for i, name in enumerate(names(step.variants)):
        yield i, resolved(step, name)


# --- validation -------------------------------------------------------------------------


def problems(model: CampaignFile, pos: yamlpos.Positioned) -> list[Problem]:
    """What `check` says about variants: at least two, distinct names, a winner that is
    one of them, and a subject only where the channel has one."""
    from dripper.channels.registry import PARTS

    out: list[Problem] = []
    for name, campaign in model.campaigns.items():
        for stage, steps in campaign.stages.items():
            for i, step in enumerate(steps):
                path = ("campaigns", name, "stages", stage, i)
                variants: list[Variant] = step.variants
                if not variants:
                    for key in ("winner", "auto_winner"):
                        if getattr(step, key) is not None:
                            where = pos.at((*path, key), key=True)
                            out.append(Problem(where, f"step {step.id!r}: {key} needs variants:"))
                    continue
                if len(variants) < 2:
                    out.append(
                        Problem(pos.at((*path, "variants")), f"step {step.id!r}: variants: needs two or more versions")
                    )
                seen: set[str] = set()
                for j, (label, variant) in enumerate(zip(names(variants), variants, strict=True)):
                    vpath = (*path, "variants", j)
                    if not label.strip() or any(c in label for c in "\r\n\0"):
                        out.append(Problem(pos.at((*vpath, "name")), f"step {step.id!r}: bad variant name {label!r}"))
                    if label in seen:
                        out.append(
                            Problem(pos.at((*vpath, "name")), f"step {step.id!r}: duplicate variant name {label!r}")
                        )
                    seen.add(label)
                    if variant.subject is not None and not PARTS[step.channel].needs_subject:
                        out.append(
                            Problem(
                                pos.at((*vpath, "subject"), key=True),
                                f"step {step.id!r}: a {step.channel} has no subject; give its variants templates",
                            )
                        )
                if step.winner is not None and step.winner not in seen:
                    out.append(
                        Problem(
                            pos.at((*path, "winner")),
                            f"step {step.id!r}: winner {step.winner!r} is not one of its variants "
                            f"({', '.join(names(variants))})",
                        )
                    )
    return out


__all__ = [
    "AutoWinner",
    "Metric",
    "Variant",
    "choose",
    "each",
    "for_lead",
    "names",
    "problems",
    "resolved",
    "variant_for",
]
