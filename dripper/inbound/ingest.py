"""Apply inbound messages: classify, match, and act on the lead (once per message)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.utils import parseaddr
from typing import Any, Mapping

from sqlalchemy import Connection, update

from dripper.events import apply_event
from dripper.inbound.classify import Classification, classify, own_words, text_of
from dripper.inbound.dates import return_date
from dripper.inbound.match import Match, match
from dripper.inbound.notify import Notifier
from dripper.planner import Planner, hold_until
from dripper.store import Store, leadrows, touches
from dripper.tokens import Tokens

# What each kind does to a matched lead (the event it records).
_EFFECT = {"bounce_hard": "bounced", "complaint": "complained", "unsubscribe": "unsubscribed", "reply": "replied"}


@dataclass
class Ingested:
    file: str
    kind: str
    lead: str | None
    status: str | None
    touch: dict[str, str] | None
    matched_by: str | None
    reason: str
    message_id: str
    applied: bool = False
    duplicate: bool = False
    effect: str | None = None  # what it did: bounced, replied, soft_bounce (1 of 3), ...

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def message_key(raw: bytes, message: Any) -> str:
    """The Message-ID, or a content hash for messages without one: the idempotency key."""
    value = str(message.get("Message-ID") or "").strip()
    return value or f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@dripper.ingest>"


class Ingestor:
    def __init__(self, store: Store, planner: Planner, tokens: Tokens, notifier: Notifier | None = None):
        self.store = store
        self.planner = planner
        self.tokens = tokens
        self.inbound = planner.config.inbound
        self.notifier = notifier

    def ingest(self, raw: bytes, file: str, at: datetime, *, dry_run: bool = False) -> Ingested:
        message = message_from_bytes(raw, policy=policy.compat32)
        key = message_key(raw, message)
        found = classify(message)
        with self.store.begin() as conn:
            hit = match(conn, message, found, self.tokens)
            kind = "unknown" if found.kind == "reply" and hit.lead is None else found.kind
            result = Ingested(
                file=file, kind=kind, lead=hit.lead["email"] if hit.lead else None, status=found.status,
                touch={"campaign": hit.touch["campaign"], "step": hit.touch["step_id"]} if hit.touch else None,
                matched_by=hit.how, reason=found.reason, message_id=key,
            )
            if leadrows.event_for_message(conn, key) is not None:
                result.duplicate = True
                return result
            if dry_run:
                return result
            result.effect = self._apply(conn, message, found, hit, kind, key, at)
            result.applied = True
        if kind == "reply" and self.notifier is not None and self.notifier.active:  # after the commit
            result.effect = "; ".join([result.effect or "", *self.notifier.reply(result, raw, at)])
        return result

    def _apply(self, conn: Connection, message: Any, found: Classification, hit: Match, kind: str, key: str,
               at: datetime) -> str:
        detail = {"kind": kind, "status": found.status, "reason": found.reason,
                  "from": parseaddr(message.get("From") or "")[1], "subject": str(message.get("Subject") or "")[:300],
                  "touch": hit.touch["id"] if hit.touch else None}
        if hit.lead is None:  # never lost: recorded for a person to look at
            leadrows.record_event(conn, None, "unknown", at, "inbound", detail, message_id=key)
            return "recorded as unknown"
        lead = hit.lead
        if kind in _EFFECT:
            result = apply_event(conn, self.planner, lead, _EFFECT[kind], at, source="inbound", detail=detail,
                                 message_id=key)
            return f"{_EFFECT[kind]} ({result.suppressed} pending suppressed)"
        if kind == "bounce_soft":
            return self._soft_bounce(conn, lead, hit.touch, detail, key, at)
        if kind == "auto_reply":  # pauses, never stops: until the return date it names, else a while
            named = return_date(f"{message.get('Subject') or ''}\n{own_words(text_of(message))}", at.date())
            back = named or (self.inbound.auto_reply_pause.add_to(at, timezone.utc) - timedelta(days=1)).date()
            held = hold_until(conn, self.planner, lead, back, at)
            detail["back_on"] = back.isoformat()
            detail["back_on_named"] = named is not None
            leadrows.record_event(conn, lead["id"], kind, at, "inbound", detail, message_id=key)
            return f"auto_reply: {held} touch(es) held until after {back.isoformat()}"
        leadrows.record_event(conn, lead["id"], kind, at, "inbound", detail, message_id=key)
        return kind

    def _soft_bounce(self, conn: Connection, lead: Mapping[str, Any], touch: Mapping[str, Any] | None,
                     detail: dict[str, Any], key: str, at: datetime) -> str:
        leadrows.record_event(conn, lead["id"], "soft_bounce", at, "inbound", detail, message_id=key)
        window = self.inbound.soft_bounce_window.add_to(at, timezone.utc) - at
        count = leadrows.count_events(conn, lead["id"], "soft_bounce", at - window)
        if count >= self.inbound.soft_bounce_limit:
            apply_event(conn, self.planner, lead, "bounced", at, source="inbound",
                        detail={**detail, "escalated_after_soft_bounces": count})
            return f"bounced ({count} soft bounces within {self.inbound.soft_bounce_window})"
        if touch is not None and touch["state"] == "sent":  # it did not arrive: send it again later
            retry = self.inbound.soft_bounce_retry.add_to(at, timezone.utc)
            conn.execute(update(touches).where(touches.c.id == touch["id"]).values(
                state="planned", due_at=retry, reason=f"soft_bounce: {detail['status'] or 'temporary'}",
                claimed_by=None, updated_at=at))
        return f"soft_bounce ({count} of {self.inbound.soft_bounce_limit})"


__all__ = ["Ingested", "Ingestor", "message_key"]
