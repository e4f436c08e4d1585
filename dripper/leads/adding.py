"""One lead added or updated by hand (`dripper leads add`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from dripper.config import Loaded
from dripper.leads import consent, suppression
from dripper.leads.records import POSTAL_COLUMNS, Lead, build_lead
from dripper.planning.planner import enroll, record_versions
from dripper.store.queries import leadrows

# The fields an update keeps from the stored lead when the command leaves them empty.
_KEPT = (
    "first_name",
    "last_name",
    "company",
    "timezone",
    "stage",
    "campaign",
    *POSTAL_COLUMNS,
    "language",
    "owner",
    "consent_source",
)


class AddOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class NotALead(ValueError):
    """The fields given (with the stored ones) do not make a lead; the message says why."""


@dataclass(frozen=True)
class Added:
    lead: Lead
    outcome: AddOutcome


def with_existing(raw: Mapping[str, str | None], existing: Lead | None) -> dict[str, str | None]:
    """The fields given, completed from the stored lead: an update keeps what it does not mention."""
    merged = dict(raw)
    if existing is None:
        return merged
    for key in _KEPT:
        if not merged.get(key):
            merged[key] = getattr(existing, key)
    if not merged.get("consent_at") and existing.consent_at is not None:
        merged["consent_at"] = existing.consent_at.isoformat()
    for key, value in existing.attrs.items():
        merged.setdefault(key, value)
    return merged


def add_lead(
    conn: Connection, loaded: Loaded, raw: Mapping[str, str | None], at: datetime, *, secrets: tuple[str, ...] = ()
) -> Added:
    """Add the lead whose fields are `raw` (its e-mail address in the form it is kept), or
    update the one with that address, entering its stage at `at` if it changes. NotALead
    says why the fields do not make a lead, or that the do-not-contact list holds it
    (`secrets`: those its addresses may be hashed under, the current one first)."""
    email = raw.get("email") or ""
    try:
        lead = build_lead(with_existing(raw, leadrows.by_email(conn, email)), loaded.campaigns)
    except ValueError as exc:
        raise NotALead(str(exc)) from exc
    why = suppression.check(conn, secrets, lead.email) or consent.refusal(lead, loaded.campaigns)
    if why:
        raise NotALead(f"{lead.email}: {why}")
    result = enroll(conn, loaded.planner, [(0, lead)], at)
    record_versions(conn, loaded.campaigns, at)
    outcome = AddOutcome.ADDED if result.created else AddOutcome.UPDATED if result.updated else AddOutcome.UNCHANGED
    return Added(lead, outcome)
