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
from dripper.planner import reconcile, stop_reason
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
IDEMPOTENT_IN_FLIGHT = 256
CLAIM_BATCH = 50  # touches claimed per query (claimed is not in flight: never sent twice)
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+\-]+")

Outcome = dict[str, Any]  # the column values that record what happened to a touch


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

    def _in_flight_limit(self) -> int:
        # The file outbox is idempotent (a resend rewrites the same file), so it may run
        # wider; for SMTP the limit bounds what a crash can deliver twice.
        return IDEMPOTENT_IN_FLIGHT if getattr(self.transport, "idempotent", False) else self.settings.max_in_flight

    async def _drain(self, at: datetime, summary: TickSummary) -> None:
        limit = self._in_flight_limit()
        # A slot is held from the hand-over to the transport until the outcome is committed.
        slots = asyncio.Semaphore(limit)
        recorder = _Recorder(self.store, self.settings.worker_id)
        flushing = asyncio.create_task(recorder.run())
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                with self.store.begin() as conn:
                    batch = touch_q.claim(conn, at, self.clock.now(), self.settings.worker_id, max(2 * limit, CLAIM_BATCH))
                    lead_rows = leadrows.by_ids(conn, sorted({t.lead_id for t in batch}))
                if not batch:
                    break
                for i, touch in enumerate(batch):
                    if self._stopping:
                        self._release(batch[i:])
                        break
                    await slots.acquire()
                    task = asyncio.create_task(self._process(touch, lead_rows.get(touch.lead_id), summary, recorder))
                    running.add(task)
                    task.add_done_callback(lambda t: (running.discard(t), slots.release()))
            if running:
                await asyncio.gather(*running)
        finally:
            recorder.close()
            await flushing

    def _release(self, touches: list[touch_q.Claimed]) -> None:
        with self.store.begin() as conn:
            for touch in touches:
                touch_q.finish(conn, touch.id, self.settings.worker_id, state="planned", claimed_by=None,
                               attempts=touch.attempts - 1, updated_at=self.clock.now())

    # --- one touch ----------------------------------------------------------------------
    async def _process(self, touch: touch_q.Claimed, lead: Mapping[str, Any] | None, summary: TickSummary,
                       recorder: _Recorder) -> None:
        outcome = await self._outcome(touch, lead, summary)
        bounce = outcome.pop("hard_bounce", None)
        outcome.setdefault("updated_at", self.clock.now())
        await recorder.record(touch, outcome)
        if bounce:
            self._hard_bounce(touch, bounce)

    async def _outcome(self, touch: touch_q.Claimed, lead: Mapping[str, Any] | None, summary: TickSummary) -> Outcome:
        config = self.loaded.campaigns
        campaign = config.campaigns.get(touch.campaign)
        found = campaign.step(touch.step_id) if campaign else None
        if lead is None or campaign is None or found is None or found[0] != touch.stage:
            summary.skipped += 1
            return {"state": "skipped", "reason": "step_removed"}
        step = found[1]
        stop = stop_reason(campaign.stop_on, lead, touch.planned_at)
        if stop:  # suppression is checked again here, at send time
            summary.suppressed += 1
            return {"state": "suppressed", "reason": stop}
        view = LeadView.from_row(lead, config.defaults.timezone)
        now = self.clock.now()
        try:
            if step.channel == "email":
                return await self._send_email(touch, view, campaign, step, now, summary)
            if step.channel == "letter":
                return self._write_letter(touch, view, campaign, step, now, summary)
            return self._write_call(touch, view, campaign, step, now, summary)
        except TemplateError as exc:
            summary.failed += 1
            return {"state": "failed", "reason": f"render_error: {exc}"}
        except Exception as exc:  # disk full, PDF engine error...: never lose the touch
            log.exception("touch %s could not be processed; it will be retried", touch.id)
            summary.deferred += 1
            return {"state": "planned", "claimed_by": None, "reason": f"retry: {type(exc).__name__}: {exc}",
                    "due_at": now + retry_delay(touch.attempts)}

    def _context(self, view: LeadView, campaign: Campaign, step: Step, now: datetime) -> tuple[dict[str, Any], str, str]:
        token = self.tokens.make(view.id, campaign.name)
        url = f"{self.settings.base_url}/u/{token}"
        return self.loaded.renderer.context(view, campaign, step, url, now), url, token

    @staticmethod
    def _kept_reason(touch: touch_q.Claimed) -> str | None:
        return touch.reason if touch.reason == "resent_after_interruption" else None

    async def _send_email(self, touch: touch_q.Claimed, view: LeadView, campaign: Campaign, step: Step,
                          now: datetime, summary: TickSummary) -> Outcome:
        config = self.loaded.campaigns
        ctx, url, token = self._context(view, campaign, step, now)
        rendered = self.loaded.renderer.email(campaign, step, ctx)
        msgid = message_id(view.email, campaign.name, step.id, config.sender.domain)
        mailbox = config.sender.reply_to or config.sender.address
        data = build_email(config.sender, view, rendered, msgid=msgid, date=now,
                           unsubscribe=list_unsubscribe(url, mailbox, token))
        # Named by the touch key: a resend after a crash rewrites the same file.
        name = safe_name(campaign.name, step.id, view.email)
        try:
            await self.transport.send(Envelope(config.sender.address, view.email, data, name))
        except SendError as exc:
            return self._send_error(touch, exc, now, summary)
        summary.sent += 1
        return {"state": "sent", "reason": self._kept_reason(touch), "message_id": msgid, "sent_at": now}

    @staticmethod
    def _send_error(touch: touch_q.Claimed, exc: SendError, now: datetime, summary: TickSummary) -> Outcome:
        if exc.transient:
            summary.deferred += 1
            return {"state": "planned", "claimed_by": None, "reason": f"smtp_retry: {exc}",
                    "due_at": now + retry_delay(touch.attempts)}
        summary.failed += 1
        outcome: Outcome = {"state": "failed", "reason": f"smtp_error: {exc}"}
        if exc.recipient:  # the server refused the address for good: a hard bounce
            outcome["hard_bounce"] = {"status": exc.code, "message": str(exc), "touch": touch.id}
        return outcome

    def _hard_bounce(self, touch: touch_q.Claimed, detail: dict[str, Any]) -> None:
        with self.store.begin() as conn:
            lead = leadrows.by_id(conn, touch.lead_id)
            if lead is not None:
                apply_event(conn, self.loaded.planner, lead, "bounced", self.clock.now(), source="smtp", detail=detail)

    def _write_letter(self, touch: touch_q.Claimed, view: LeadView, campaign: Campaign, step: Step,
                      now: datetime, summary: TickSummary) -> Outcome:
        if not view.has_postal_address():
            summary.skipped += 1
            return {"state": "skipped", "reason": "no_postal_address"}
        ctx, _url, _token = self._context(view, campaign, step, now)
        html = self.loaded.renderer.letter_html(step, ctx)
        name = safe_name(campaign.name, step.id, view.email)
        path = letters.write_pdf(html, self.settings.letters_dir / f"{name}.pdf", self.settings.templates_path)
        summary.sent += 1
        return {"state": "sent", "reason": self._kept_reason(touch), "message_id": str(path), "sent_at": now}

    def _write_call(self, touch: touch_q.Claimed, view: LeadView, campaign: Campaign, step: Step,
                    now: datetime, summary: TickSummary) -> Outcome:
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
        summary.sent += 1
        return {"state": "sent", "reason": "call_task", "sent_at": now}


class _Recorder:
    """Commits touch outcomes in groups: whatever finished while the last commit ran goes
    into the next one. A send's slot is freed only once its outcome is committed."""

    def __init__(self, store: Store, worker: str):
        self.store = store
        self.worker = worker
        self._queue: list[tuple[touch_q.Claimed, Outcome, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closed = False

    async def record(self, touch: touch_q.Claimed, outcome: Outcome) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((touch, outcome, done))
        self._wake.set()
        await done

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            items, self._queue = self._queue, []
            if items:
                self._commit(items)
            elif self._closed:
                return

    def _commit(self, items: list[tuple[touch_q.Claimed, Outcome, asyncio.Future[None]]]) -> None:
        try:
            with self.store.begin() as conn:
                for touch, outcome, _ in items:
                    if not touch_q.finish(conn, touch.id, self.worker, **outcome):
                        log.warning("touch %s was taken over by another worker before it was recorded", touch.id)
        except Exception as exc:  # those touches stay `sending`: lease recovery resends them, marked
            for _, _, done in items:
                done.set_exception(exc)
            return
        for _, _, done in items:
            done.set_result(None)


__all__ = ["Sender", "TickSummary"]
