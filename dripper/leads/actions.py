"""What an operator does to one lead: list, show, export, pause, resume, stop, forget.

The CLI (`dripper leads …`), and later the HTTP API and the dashboard, call these; each
takes a connection in a transaction the caller opened and the instant it happens at (the
injected clock's), and returns a frozen record the caller prints or serialises.

`stop` keeps the lead but ends all its mail: the marker `*` in its `opted_out` list
(every campaign, also ones added later) and its pending touches suppressed with reason
`stopped`. `resume` lifts a stop (those touches are planned again; any more than a day
overdue are skipped as `missed` when the tick reaches them) and a pause.

`forget` (GDPR Art. 17) stops the lead, erases its personal data
(`privacyrows.erase`), and puts a keyed hash of its address on the do-not-contact list,
so a later import of the address is refused. The lead row stays, as
`forgotten-<id>@invalid`, with its stage, campaign and its touches' states: the report's
counts stay what they were.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from dripper.leads import suppression
from dripper.leads.consent import Consent, consent_of
from dripper.leads.events import pause as pause_lead
from dripper.leads.records import Lead
from dripper.planning.planner import Planner
from dripper.states import EVERY_CAMPAIGN, EventKind, Reason, TouchState
from dripper.store.queries import callrows, leadrows, privacyrows
from dripper.store.queries import touchrows as touch_q

SOURCE = "cli"


class NoSuchLead(LookupError):
    """No lead has that address (or id)."""


def status_of(lead: Lead, now: datetime) -> str:
    """`forgotten`, `stopped`, a stop event's kind (`unsubscribed`, …), `paused` or `active`."""
    if is_forgotten(lead):
        return "forgotten"
    if EVERY_CAMPAIGN in lead.opted_out:
        return "stopped"
    if lead.status != "active":
        return lead.status
    if lead.paused_until is not None and lead.paused_until > now:
        return "paused"
    return "active"


def placeholder(lead_id: int) -> str:
    return f"forgotten-{lead_id}@invalid"


def is_forgotten(lead: Lead) -> bool:
    return lead.email == placeholder(lead.id)


@dataclass(frozen=True)
class LeadSummary:
    id: int
    email: str
    stage: str
    campaign: str
    status: str
    created_at: datetime | None
    paused_until: datetime | None


def _summary(lead: Lead, now: datetime) -> LeadSummary:
    return LeadSummary(
        lead.id, lead.email, lead.stage, lead.campaign, status_of(lead, now), lead.created_at, lead.paused_until
    )


def list_leads(
    conn: Connection,
    now: datetime,
    *,
    campaign: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[LeadSummary]:
    """Leads in id order, filtered by campaign, stage and status, at most `limit`."""
    found: list[LeadSummary] = []
    after = 0
    while len(found) < limit:
        chunk = privacyrows.page(conn, campaign=campaign, stage=stage, after=after, limit=1000)
        if not chunk:
            break
        after = chunk[-1].id
        found.extend(s for s in (_summary(lead, now) for lead in chunk) if status is None or s.status == status)
    return found[:limit]


def find(conn: Connection, email: str) -> Lead:
    """The lead with this address (as typed: normalised here). NoSuchLead when none has it."""
    from dripper.leads.records import LeadError, normalize_email

    try:
        key = normalize_email(email)
    except LeadError:
        key = email.strip().lower()  # a forgotten lead's placeholder, or a typo: looked up as given
    lead = leadrows.by_email(conn, key)
    if lead is None:
        raise NoSuchLead(f"no lead {email!r}")
    return lead


@dataclass(frozen=True)
class TouchLine:
    campaign: str
    step: str
    channel: str
    state: str
    reason: str | None
    due: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class EventLine:
    kind: str
    at: datetime
    source: str


@dataclass(frozen=True)
class LeadDetail:
    lead: Lead
    status: str
    consent: Consent
    touches: tuple[TouchLine, ...]
    events: tuple[EventLine, ...]


def show(conn: Connection, email: str, now: datetime) -> LeadDetail:
    lead = find(conn, email)
    held = privacyrows.held_about(conn, lead.id)
    touches = tuple(
        TouchLine(t["campaign"], t["step_id"], t["channel"], t["state"], t["reason"], t["due_at"], t["sent_at"])
        for t in held["touches"]
    )
    events = tuple(EventLine(e["kind"], e["at"], e["source"]) for e in held["events"])
    return LeadDetail(lead, status_of(lead, now), consent_of(lead), touches, events)


@dataclass(frozen=True)
class Export:
    """Everything dripper holds about one lead (an access request, GDPR Art. 15)."""

    lead: Mapping[str, Any]
    consent: Consent
    held: Mapping[str, list[dict[str, Any]]]  # table -> its rows about the lead
    exported_at: datetime

    def to_json(self) -> str:
        document = {
            "exported_at": self.exported_at,
            "lead": self.lead,
            "consent": {"source": self.consent.source, "at": self.consent.at},
            **self.held,
        }
        return json.dumps(document, default=_jsonable, indent=2, ensure_ascii=False, sort_keys=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def export(conn: Connection, email: str, now: datetime) -> Export:
    lead = find(conn, email)
    record = {f.name: getattr(lead, f.name) for f in fields(lead)}
    record["opted_out"] = list(lead.opted_out)
    record["status"] = status_of(lead, now)
    return Export(record, consent_of(lead), privacyrows.held_about(conn, lead.id), now)


@dataclass(frozen=True)
class Changed:
    """What an action did to one lead."""

    email: str
    action: str
    touches: int  # touches it closed, held or reopened
    until: datetime | None = None


def pause(conn: Connection, planner: Planner, email: str, months: int, at: datetime) -> Changed:
    """Hold every touch of the lead for `months` calendar months (as the preference page does)."""
    lead = find(conn, email)
    until = pause_lead(conn, planner, lead, months, at, source=SOURCE)
    return Changed(lead.email, "paused", 0, until)


def stop(conn: Connection, email: str, at: datetime) -> Changed:
    lead = find(conn, email)
    return Changed(lead.email, "stopped", _stop(conn, lead, at))


def _stop(conn: Connection, lead: Lead, at: datetime) -> int:
    if EVERY_CAMPAIGN not in lead.opted_out:
        leadrows.set_fields(conn, lead.id, at, opted_out=sorted({*lead.opted_out, EVERY_CAMPAIGN}))
        leadrows.record_event(conn, lead.id, EventKind.STOPPED, at, SOURCE)
    # A call task is a touch already handed to sales: nobody is to call a stopped lead.
    callrows.cancel_open(conn, lead.id, Reason.STOPPED, at)
    return touch_q.close_pending(conn, [lead.id], state=TouchState.SUPPRESSED, reason=Reason.STOPPED, at=at)


def resume(conn: Connection, email: str, at: datetime) -> Changed:
    """Lift a stop and a pause; a forgotten lead stays stopped."""
    lead = find(conn, email)
    if is_forgotten(lead):
        return Changed(lead.email, "forgotten", 0)
    reopened = 0
    if EVERY_CAMPAIGN in lead.opted_out:
        leadrows.set_fields(conn, lead.id, at, opted_out=[c for c in lead.opted_out if c != EVERY_CAMPAIGN])
        reopened += privacyrows.reopen(conn, lead.id, Reason.STOPPED, at)
    if lead.paused_until is not None and lead.paused_until > at:
        leadrows.set_fields(conn, lead.id, at, paused_until=None)
        reopened += privacyrows.resume_held(conn, lead.id, at)
    leadrows.record_event(conn, lead.id, EventKind.RESUMED, at, SOURCE)
    return Changed(lead.email, "resumed", reopened)


def forget(conn: Connection, email: str, secret: str, at: datetime) -> Changed:
    """Erase the lead's personal data; its address goes on the do-not-contact list (hashed
    under `secret`, the current one)."""
    lead = find(conn, email)
    if is_forgotten(lead):
        return Changed(lead.email, "forgotten", 0)
    closed = _stop(conn, lead, at)
    suppression.add(
        conn, secret, [suppression.Entry(suppression.EntryKind.ADDRESS, lead.email)], suppression.FORGOTTEN, at
    )
    privacyrows.erase(conn, lead.id, lead.email, placeholder(lead.id), at)
    leadrows.record_event(conn, lead.id, EventKind.FORGOTTEN, at, SOURCE)
    return Changed(placeholder(lead.id), "forgotten", closed)


__all__ = [
    "Changed",
    "Consent",
    "Export",
    "LeadDetail",
    "LeadSummary",
    "NoSuchLead",
    "consent_of",
    "export",
    "find",
    "forget",
    "list_leads",
    "pause",
    "resume",
    "show",
    "status_of",
    "stop",
]
