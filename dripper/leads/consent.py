"""A lead's consent (`consent_source`, `consent_at`) and campaigns that require it.

The values are read through `consent_of` alone: from the lead's own columns (migration
0013).
"""

from __future__ import annotations

from dataclasses import dataclass

from dripper.campaign.model import CampaignFile
from dripper.leads.records import Lead


@dataclass(frozen=True)
class Consent:
    source: str | None  # where the lead gave it: a form, a trade show, …
    at: str | None  # when, as recorded (ISO-8601)


def consent_of(lead: Lead) -> Consent:
    at = lead.consent_at
    return Consent(lead.consent_source.strip() or None if lead.consent_source else None, at.isoformat() if at else None)


def refusal(lead: Lead, config: CampaignFile) -> str | None:
    """Why `lead` may not be enrolled for want of consent, or None."""
    campaign = config.campaigns.get(lead.campaign)
    if campaign is None or not campaign.require_consent or consent_of(lead).source:
        return None
    return f"no consent: campaign {lead.campaign!r} has require_consent: true and the row has no consent_source"


__all__ = ["Consent", "consent_of", "refusal"]
