"""The tick: claim what is due -> check suppression -> render -> transport -> record.

Exactly-once: a touch is claimed (planned -> sending, with a lease) before it is handed
to the transport and marked `sent` only after the transport accepted it. At most
`max_in_flight` touches are between those two points, which bounds what a crash can
duplicate; such touches are taken again after the lease and marked
`resent_after_interruption`, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from jinja2 import TemplateError

from dripper import letters
from dripper.campaigns import Campaign, Step
from dripper.clock import Clock
from dripper.config import Loaded
from dripper.events import apply_event
from dripper.message import build_email, list_unsubscribe, message_id
from dripper.planner import reconcile, record_versions, stop_reason
from dripper.render import LeadView
from dripper.settings import Settings
from dripper.store import Store
from dripper.store import leadrows
from dripper.store import touchrows as touch_q
from dripper.tokens import Tokens
from dripper.transports import Envelope, SendError, Transport, make_transport

log = logging.getLogger("dripper.sender")

LEASE = timedelta(seconds=60)
MISSED_GRACE = timedelta(hours=24)
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+\-]+")


@dataclass
class TickSummary:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    skipped: int = 0
    deferred: int = 0
    recovered: int = 0
    replanned: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_FIRST * (2 ** max(0, attempts - 1)), RETRY_MAX)


def safe_name(*parts: str) -> str:
    return "_".join(_UNSAFE.sub("-", p) for p in parts)


class Sender:
    def __init__(self, store: Store, loaded: Loaded, settings: Settings, clock: Clock,
                 transport: Transport | None = None):
        self.store = store
        self.loaded = loaded
        self.settings = settings
        self.clock = clock
        self.transport = transport or make_transport(settings.smtp_url, settings.outbox_dir, settings.max_in_flight)
        self.tokens = Tokens(settings.secret or store.secret())
        self._stopping = False

    def stop(self) -> None:
        """Stop claiming; what is in flight finishes, what is claimed but not started is released."""
        self._stopping = True

    # --- the tick -------------------------------------------------------------------------
    async def tick(self, at: datetime | None = None) -> TickSummary:
        at = at or self.clock.now()
        summary = TickSummary()
        with self.store.begin() as conn:
            summary.replanned = reconcile(conn, self.loaded.planner, at)
        with self.store.begin() as conn:
            summary.recovered = touch_q.recover_interrupted(conn, at, LEASE)
            summary.skipped += touch_q.skip_superseded(conn, at, MISSED_GRACE)
        await self.transport.open()
        try:
            await self._drain(at, summary)
        finally:
            await self.transport.close()
        return summary

    async def _drain(self, at: datetime, summary: TickSummary) -> None:
        limit = self.settings.max_in_flight
        slots = asyncio.Semaphore(limit)
        running: set[asyncio.Task[None]] = set()
        while not self._stopping:
            with self.store.begin() as conn:
                batch = touch_q.claim(conn, at, self.clock.now(), self.settings.worker_id, limit * 2)
                lead_rows = leadrows.by_ids(conn, sorted({t.lead_id for t in batch}))
            if not batch:
                break
            for i, touch in enumerate(batch):
                if self._stopping:
                    self._release(batch[i:])
                    break
                await slots.acquire()
                task = asyncio.create_task(self._process(touch, lead_rows.get(touch.lead_id), at, summary))
                running.add(task)
                task.add_done_callback(lambda t: (running.discard(t), slots.release()))
        if running:
            await asyncio.gather(*running)

    def _release(self, touches: list[touch_q.Claimed]) -> None:
        with self.store.begin() as conn:
            for touch in touches:
                touch_q.finish(conn, touch.id, self.settings.worker_id, state="planned", claimed_by=None,
                               attempts=touch.attempts - 1, updated_at=self.clock.now())

    def _finish(self, touch: touch_q.Claimed, **values: Any) -> None:
        values.setdefault("updated_at", self.clock.now())
        with self.store.begin() as conn:
            if not touch_q.finish(conn, touch.id, self.settings.worker_id, **values):
                log.warning("touch %s was taken over by another worker before it was recorded", touch.id)

    # --- one touch ----------------------------------------------------------------------
    async def _process(self, touch: touch_q.Claimed, lead: Mapping[str, Any] | None, at: datetime,
                       summary: TickSummary) -> None:
        config = self.loaded.campaigns
        campaign = config.campaigns.get(touch.campaign)
        found = campaign.step(touch.step_id) if campaign else None
        if lead is None or campaign is None or found is None or found[0] != touch.stage:
            self._finish(touch, state="skipped", reason="step_removed")
            summary.skipped += 1
            return
        step = found[1]
        stop = stop_reason(campaign.stop_on, lead, touch.planned_at)
        if stop:
            self._finish(touch, state="suppressed", reason=stop)
            summary.suppressed += 1
            return
        view = LeadView.from_row(lead, config.defaults.timezone)
        now = self.clock.now()
        try:
            if step.channel == "email":
                await self._send_email(touch, view, campaign, step, now, summary)
            elif step.channel == "letter":
                self._write_letter(touch, view, campaign, step, now, summary)
            else:
                self._write_call(touch, view, campaign, step, now, summary)
        except TemplateError as exc:
            self._finish(touch, state="failed", reason=f"render_error: {exc}")
            summary.failed += 1
        except Exception as exc:  # disk full, PDF engine error...: never lose the touch
            log.exception("touch %s could not be processed; it will be retried", touch.id)
            self._finish(touch, state="planned", claimed_by=None, reason=f"retry: {type(exc).__name__}: {exc}",
                         due_at=now + retry_delay(touch.attempts))
            summary.deferred += 1

    def _context(self, view: LeadView, campaign: Campaign, step: Step, now: datetime) -> tuple[dict[str, Any], str, str]:
        token = self.tokens.make(view.id, campaign.name)
        url = f"{self.settings.base_url}/u/{token}"
        return self.loaded.renderer.context(view, campaign, step, url, now), url, token

    def _kept_reason(self, touch: touch_q.Claimed) -> str | None:
        return touch.reason if touch.reason == "resent_after_interruption" else None

    async def _send_email(self, touch: touch_q.Claimed, view: LeadView, campaign: Campaign, step: Step,
                          now: datetime, summary: TickSummary) -> None:
        config = self.loaded.campaigns
        ctx, url, token = self._context(view, campaign, step, now)
        rendered = self.loaded.renderer.email(campaign, step, ctx)
        msgid = message_id(view.email, campaign.name, step.id, config.sender.domain)
        mailbox = config.sender.reply_to or config.sender.address
        data = build_email(config.sender, view, rendered, msgid=msgid, date=now,
                           unsubscribe=list_unsubscribe(url, mailbox, token))
        name = safe_name(touch.due_at.strftime("%Y-%m-%d"), campaign.name, step.id, view.email)
        try:
            await self.transport.send(Envelope(config.sender.address, view.email, data, name))
        except SendError as exc:
            self._record_send_error(touch, view, exc, now, summary)
            return
        self._finish(touch, state="sent", reason=self._kept_reason(touch), message_id=msgid, sent_at=now)
        summary.sent += 1

    def _record_send_error(self, touch: touch_q.Claimed, view: LeadView, exc: SendError, now: datetime,
                           summary: TickSummary) -> None:
        if exc.transient:
            self._finish(touch, state="planned", claimed_by=None, reason=f"smtp_retry: {exc}",
                         due_at=now + retry_delay(touch.attempts))
            summary.deferred += 1
            return
        self._finish(touch, state="failed", reason=f"smtp_error: {exc}")
        summary.failed += 1
        if exc.recipient:  # the server refused the address for good: a hard bounce
            with self.store.begin() as conn:
                lead = leadrows.by_id(conn, view.id)
                if lead is not None:
                    apply_event(conn, self.loaded.planner, lead, "bounced", now, source="smtp",
                                detail={"status": exc.code, "message": str(exc), "touch": touch.id})

    def _write_letter(self, touch: touch_q.Claimed, view: LeadView, campaign: Campaign, step: Step,
                      now: datetime, summary: TickSummary) -> None:
        if not all((view.address_line1, view.city, view.postal_code, view.country)):
            self._finish(touch, state="skipped", reason="no_postal_address")
            summary.skipped += 1
            return
        ctx, _url, _token = self._context(view, campaign, step, now)
        html = self.loaded.renderer.letter_html(step, ctx)
        name = safe_name(now.strftime("%Y-%m-%d"), campaign.name, step.id, view.email)
        path = letters.write_pdf(html, self.settings.letters_dir / f"{name}.pdf", self.settings.templates_path)
        self._finish(touch, state="sent", reason=self._kept_reason(touch), message_id=str(path), sent_at=now)
        summary.sent += 1

    def _write_call(self, touch: touch_q.Claimed, view: LeadView, campaign: Campaign, step: Step,
                    now: datetime, summary: TickSummary) -> None:
        ctx, _url, _token = self._context(view, campaign, step, now)
        notes = self.loaded.renderer.call_notes(step, ctx)
        self.settings.calls_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.calls_dir / f"{now:%Y-%m-%d}.csv"
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["due", "email", "name", "company", "campaign", "step", "talking_points"])
            writer.writerow([touch.due_at.isoformat(), view.email, view.full_name, view.company, campaign.name,
                             step.id, notes])
        self._finish(touch, state="sent", reason="call_task", sent_at=now)
        summary.sent += 1


__all__ = ["Sender", "TickSummary", "record_versions"]
