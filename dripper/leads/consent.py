"""A lead's consent (`consent_source`, `consent_at`) and campaigns that require it.

The values are read through `consent_of` alone: from the lead's own columns once the store
has them (migration 0013, the lead-columns issue), until then from the lead's attributes
of the same names (a CSV's extra columns land there), so both kinds of project read alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dripper.campaign.model import CampaignFile
from dripper.leads.records import Lead


@dataclass(frozen=True)
class Consent:
    source: str | None  # where the lead gave it: a form, a trade show, …
    at: str | None  # when, as recorded (ISO-8601)


def consent_of(lead: Lead) -> Consent:
    source = getattr(lead, "consent_source", None) or lead.attrs.get("consent_source") or None
    at = getattr(lead, "consent_at", None) or lead.attrs.get("consent_at") or None
    return Consent(
        str(source).strip() or None if source else None,
        at.isoformat() if isinstance(at, datetime) else (str(at).strip() or None if at else None),
    )


def refusal(lead: Lead, config: CampaignFile) -> str | None:
    """Why `lead` may not be enrolled for want of consent, or None."""
    campaign = config.campaigns.get(lead.campaign)
    if campaign is None or not campaign.require_consent or consent_of(lead).source:
        return None
    return f"no consent: campaign {lead.campaign!r} has require_consent: true and the row has no consent_source"


__all__ = ["Consent", "consent_of", "refusal"]
