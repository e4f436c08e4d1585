"""Apply inbound messages: read within limits, classify, match, and act on the lead (once
per message, and only on proof that the message concerns mail we sent: see match.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from dripper.inbound import parse
from dripper.inbound.classify import Classification, classify, own_words, text_of
from dripper.inbound.dates import return_date
from dripper.inbound.match import Match, match
from dripper.inbound.notify import Notifier
from dripper.leads.events import apply_event
from dripper.leads.records import Lead
from dripper.planning.planner import Planner, hold_until
from dripper.states import EventKind, InboundKind, Reason
from dripper.store import Store
from dripper.store.db import StoreUnavailable
from dripper.store.queries import leadrows
from dripper.store.queries import touchrows as touch_q
from dripper.tokens import Tokens

log = logging.getLogger("dripper.inbound")

# What each kind does to a matched lead (the event it records).
_EFFECT = {
    InboundKind.BOUNCE_HARD: EventKind.BOUNCED,
    InboundKind.COMPLAINT: EventKind.COMPLAINED,
    InboundKind.UNSUBSCRIBE: EventKind.UNSUBSCRIBED,
    InboundKind.REPLY: EventKind.REPLIED,
}


@dataclass
class Ingested:
    file: str
    kind: InboundKind
    lead: str | None
    status: str | None
    touch: dict[str, str] | None
    matched_by: str | None
    reason: str
    message_id: str
    applied: bool = False
    duplicate: bool = False
    effect: str | None = None  # what it did: bounced, replied, soft_bounce (1 of 3), ...
    # An unverified message: what it looked like and whom it claimed to be about. It is
    # recorded as `unknown` for a person to look at, and changes no lead.
    classified_as: InboundKind | None = None
    suspected_lead: str | None = None
    quarantine: bool = False  # it could not be read within limits: an IMAP poll sets it aside

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def message_key(raw: bytes, message: Message) -> str:
    return parse.message_key(raw, message)


class Ingestor:
    def __init__(self, store: Store, planner: Planner, tokens: Tokens, notifier: Notifier | None = None):
        self.store = store
        self.planner = planner
        self.tokens = tokens
        self.inbound = planner.config.inbound
        self.notifier = notifier

    def ingest_each(self, raw: bytes, file: str, at: datetime, *, dry_run: bool = False) -> Ingested:
        """`ingest`, for one message of a batch: a message that makes it fail in any way but
        the database's is recorded as `unknown` (and quarantined), so the batch goes on. A
        database error is ours, not the message's: it propagates, and the message stays
        where it is to be read again."""
        try:
            return self.ingest(raw, file, at, dry_run=dry_run)
        except (DBAPIError, StoreUnavailable):
            raise
        except Exception as exc:
            log.exception("inbound message %s could not be processed; recorded as unknown", file)
            headers = parse.headers_only(raw)
            reason = f"could not be processed: {type(exc).__name__}: {str(exc)[:200]}"
            return self._unreadable(
                parse.Unreadable(headers, parse.message_key(raw, headers), reason), file, at, dry_run
            )

    def too_large(self, head: bytes, size: int, file: str, at: datetime) -> Ingested:
        """A message over the size limit, known by its header block alone (IMAP tells the
        size before the message is fetched)."""
        headers = parse.headers_only(head)
        reason = f"larger than {parse.MAX_BYTES // (1024 * 1024)} MiB ({size:,} bytes)"
        return self._unreadable(parse.Unreadable(headers, parse.message_key(head, headers), reason), file, at, False)

    def ingest(self, raw: bytes, file: str, at: datetime, *, dry_run: bool = False) -> Ingested:
        read = parse.read(raw)
        if isinstance(read, parse.Unreadable):
            return self._unreadable(read, file, at, dry_run)
        message, key = read.message, read.key
        found = classify(message)
        with self.store.begin() as conn:
            hit = match(conn, message, found, self.tokens, self.inbound.trusted_authserv_ids)
            result = _result(file, key, found, hit)
            if leadrows.event_for_message(conn, key) is not None:
                result.duplicate = True
                return result
            if dry_run:
                return result
            result.effect = self._apply(conn, message, found, hit, result.kind, key, at)
            result.applied = True
        if self.notifier is not None and self._notify(result):  # after the commit
            result.effect = "; ".join([result.effect or "", *self.notifier.reply(result, raw, at, hit.lead)])
        return result

    def _notify(self, result: Ingested) -> bool:
        """A person's reply goes to the sales team; so does a reply or removal request that
        could not be verified, for a person to judge (it changed nothing)."""
        if self.notifier is None or not self.notifier.active:
            return False
        return result.kind == InboundKind.REPLY or (
            result.suspected_lead is not None and result.classified_as in (InboundKind.REPLY, InboundKind.UNSUBSCRIBE)
        )

    def _unreadable(self, read: parse.Unreadable, file: str, at: datetime, dry_run: bool) -> Ingested:
        result = Ingested(
            file=file,
            kind=InboundKind.UNKNOWN,
            lead=None,
            status=None,
            touch=None,
            matched_by=None,
            reason=f"not read: {read.reason}",
            message_id=read.key,
            quarantine=True,
        )
        with self.store.begin() as conn:
            if leadrows.event_for_message(conn, read.key) is not None:
                result.duplicate = True
            elif not dry_run:
                leadrows.record_event(
                    conn,
                    None,
                    EventKind.UNKNOWN,
                    at,
                    "inbound",
                    {"kind": InboundKind.UNKNOWN, "reason": result.reason, **_sender_and_subject(read.headers)},
                    message_id=read.key,
                )
                result.applied, result.effect = True, "recorded as unknown; quarantined"
        return result

    def _apply(
        self,
        conn: Connection,
        message: Message,
        found: Classification,
        hit: Match,
        kind: InboundKind,
        key: str,
        at: datetime,
    ) -> str:
        detail = {
            "kind": kind,
            "status": found.status,
            "reason": found.reason,
            **_sender_and_subject(message),
            "touch": hit.touch["id"] if hit.touch else None,
        }
        if not hit.verified:  # never lost, never applied: recorded for a person to look at
            if hit.lead is not None:
                detail.update(
                    classified_as=found.kind,
                    suspected_lead=hit.lead.email,
                    matched_by=hit.how.value if hit.how else None,
                    unverified=hit.doubt,
                )
            leadrows.record_event(conn, None, EventKind.UNKNOWN, at, "inbound", detail, message_id=key)
            return "recorded as unknown" + (" (unverified: changed nothing)" if hit.lead is not None else "")
        assert hit.lead is not None
        lead = hit.lead
        if kind in _EFFECT:
            result = apply_event(
                conn, self.planner, lead, _EFFECT[kind], at, source="inbound", detail=detail, message_id=key
            )
            return f"{_EFFECT[kind]} ({result.suppressed} pending suppressed)"
        if kind == InboundKind.BOUNCE_SOFT:
            return self._soft_bounce(conn, lead, hit.touch, detail, key, at)
        if kind == InboundKind.AUTO_REPLY:  # pauses, never stops: until the return date it names, else a while
            named = return_date(f"{message.get('Subject') or ''}\n{own_words(text_of(message))}", at.date())
            back = named or (self.inbound.auto_reply_pause.add_to(at, UTC) - timedelta(days=1)).date()
            held = hold_until(conn, self.planner, lead, back, at)
            detail["back_on"] = back.isoformat()
            detail["back_on_named"] = named is not None
            leadrows.record_event(conn, lead.id, EventKind.AUTO_REPLY, at, "inbound", detail, message_id=key)
            return f"{kind}: {held} touch(es) held until after {back.isoformat()}"
        # Verified, but neither a bounce, a complaint nor a reply: kept against the lead.
        leadrows.record_event(conn, lead.id, EventKind.UNKNOWN, at, "inbound", detail, message_id=key)
        return kind

    def _soft_bounce(
        self,
        conn: Connection,
        lead: Lead,
        touch: Mapping[str, Any] | None,
        detail: dict[str, Any],
        key: str,
        at: datetime,
    ) -> str:
        leadrows.record_event(conn, lead.id, EventKind.SOFT_BOUNCE, at, "inbound", detail, message_id=key)
        window = self.inbound.soft_bounce_window.add_to(at, UTC) - at
        count = leadrows.count_events(conn, lead.id, EventKind.SOFT_BOUNCE, at - window)
        if count >= self.inbound.soft_bounce_limit:
            apply_event(
                conn,
                self.planner,
                lead,
                EventKind.BOUNCED,
                at,
                source="inbound",
                detail={**detail, "escalated_after_soft_bounces": count},
            )
            return f"bounced ({count} soft bounces within {self.inbound.soft_bounce_window})"
        if touch is not None:  # it did not arrive: send it again later
            touch_q.send_again(
                conn,
                touch["id"],
                self.inbound.soft_bounce_retry.add_to(at, UTC),
                f"{Reason.SOFT_BOUNCE}: {detail['status'] or 'temporary'}",
                at,
            )
        return f"soft_bounce ({count} of {self.inbound.soft_bounce_limit})"


def _result(file: str, key: str, found: Classification, hit: Match) -> Ingested:
    result = Ingested(
        file=file,
        kind=InboundKind.UNKNOWN,
        lead=None,
        status=found.status,
        touch=None,
        matched_by=None,
        reason=found.reason,
        message_id=key,
    )
    if hit.verified:
        assert hit.lead is not None and hit.how is not None
        result.kind, result.lead, result.matched_by = found.kind, hit.lead.email, hit.how.value
        if hit.touch is not None:
            result.touch = {"campaign": hit.touch["campaign"], "step": hit.touch["step_id"]}
    elif found.kind != InboundKind.UNKNOWN:  # it looked like something, but changes nothing
        result.classified_as = found.kind
        if hit.lead is None:
            result.reason = f"{found.reason}; matches no lead"
        else:
            result.suspected_lead = hit.lead.email
            result.reason = f"unverified {found.kind.replace('_', ' ')}: {hit.doubt}"
    return result


def _sender_and_subject(message: Message) -> dict[str, str]:
    return {
        "from": parseaddr(str(message.get("From") or ""))[1][:320],
        "subject": str(message.get("Subject") or "")[:300],
    }


__all__ = ["Ingested", "Ingestor", "message_key"]
