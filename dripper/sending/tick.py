"""The tick: claim what is due -> check suppression -> compose -> transport -> record.

Exactly-once: a touch is claimed (planned -> sending, with a lease) before it is handed
to the transport and marked `sent` only after the transport accepted it. At most
`max_in_flight` touches are between those two points, which bounds what a crash can
duplicate; such touches are taken again after the lease and marked
`resent_after_interruption`, with the same Message-ID.

Leases run on the real clock (`lease_clock`), never on the instant a tick runs at (the
business clock, `--at`): a lease says whether a worker is alive, which only real time
tells. A heartbeat renews them for as long as the tick holds anything, claimed or in
flight, however slow the server.

Speed: composing an e-mail (render, inline CSS, text part, MIME, DKIM) is CPU work, and
talking SMTP is waiting. On a machine with a second core, a forked worker process
composes the claimed batch ahead while this process sends and records.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Connection

from dripper.campaign import timing
from dripper.campaign.model import Campaign, Step
from dripper.campaign.templates import LeadView
from dripper.channels.calls import tasks as calltasks
from dripper.channels.compose import Composed, Composer, DkimKey
from dripper.channels.email.transports import Envelope, SendError, Transport, make_transport
from dripper.channels.letters import batches
from dripper.channels.letters import layout as letters
from dripper.channels.letters import libraries as letter_libraries
from dripper.channels.letters.printing import make_adapter
from dripper.clock import Clock, SystemClock
from dripper.config import Loaded
from dripper.leads import postal
from dripper.leads.events import apply_event
from dripper.planning import track
from dripper.planning.planner import Finished, Planner, advance, reconcile, stop_reason
from dripper.sending.failures import Failure, classify, describe, smtp_reply, verdict
from dripper.sending.forked import die_with
from dripper.sending.limits import Limiter
from dripper.sending.outcomes import Outcome
from dripper.settings import DEFAULT_LEASE_SECONDS, Settings
from dripper.states import Channel, EventKind, InboundKind, Reason, TouchState
from dripper.store import Store, callrows, leadrows, locks, printrows
from dripper.store import touchrows as touch_q

log = logging.getLogger("dripper.sender")

LEASE = timedelta(seconds=DEFAULT_LEASE_SECONDS)  # Settings.lease_seconds (DRIPPER_LEASE_SECONDS) by default
BEATS_PER_LEASE = 4  # the heartbeat renews four times a lease: a beat or two may be late
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)
IDEMPOTENT_IN_FLIGHT = 256
CLAIM_BATCH = 50  # touches claimed per query (claimed is not in flight: never sent twice)
RENDER_POOL_MIN = 200  # due e-mails below which composing in-process is cheaper than a worker
RENDER_CHUNK = 16  # e-mails per job sent to the render worker


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


@dataclass(frozen=True)
class _Job:
    """A touch that passed the checks and now needs its channel's work done."""

    view: LeadView
    campaign: Campaign
    step: Step


RENDER_ERROR = Reason.RENDER_ERROR.value
# A message, or why there is none: (RENDER_ERROR or a Failure's value, reason). Plain
# data: it comes back from the render worker process.
ComposeResult = Composed | tuple[str, str]


@dataclass(frozen=True)
class _Batch:
    """Touches claimed together, and what the tick knows about them so far."""

    claimed: list[touch_q.Claimed]
    prepared: dict[int, Outcome | _Job]  # what was decided for each, by touch id
    composing: dict[int, Awaitable[ComposeResult]]  # their e-mails being composed
    now: datetime  # the business clock when they were claimed
    leads: Mapping[int, leadrows.LeadRow]  # the leads as they were read with the claim


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_FIRST * (2 ** max(0, attempts - 1)), RETRY_MAX)


def _superseded(planner: Planner, lead: Mapping[str, Any], touch: touch_q.Claimed, at: datetime) -> bool:
    """The touch's step fell due more than a day before `at` and a later step of its track
    is due by `at` too (see `track.superseded`). By the step's own due time, not the row's:
    a touch held by a pause, an out-of-office or retries is superseded like one a stopped
    worker left behind."""
    steps = planner.track_of(lead)
    index = track.position(steps, touch.step_id)
    return index is not None and track.superseded(steps, index, at)


def dkim_key(settings: Settings, loaded: Loaded) -> DkimKey | None:
    if settings.dkim_key is None:
        return None
    domain = settings.dkim_domain or loaded.campaigns.sender.domain
    return DkimKey.load(settings.dkim_key, settings.dkim_selector, domain)


# --- the render worker process -------------------------------------------------------
# Forked (never spawned) so it inherits the composer as it is, templates compiled; jobs
# and results are plain data.
_CHILD_COMPOSER: Composer | None = None


def _child_init(composer: Composer, parent: int) -> None:
    global _CHILD_COMPOSER
    _CHILD_COMPOSER = composer
    die_with(parent)


def _ready() -> bool:
    return _CHILD_COMPOSER is not None


def _compose_chunk(jobs: list[tuple[int, dict[str, Any], str, str, datetime]]) -> list[ComposeResult]:
    composer = _CHILD_COMPOSER
    assert composer is not None
    config = composer.loaded.campaigns
    out: list[ComposeResult] = []
    for touch_id, lead, campaign_name, step_id, now in jobs:
        campaign = config.campaigns[campaign_name]
        step = campaign.step(step_id)[1]  # type: ignore[index]
        out.append(
            _compose_one(composer, touch_id, LeadView.from_row(lead, config.defaults.timezone), campaign, step, now)
        )
    return out


def _compose_one(
    composer: Composer, touch_id: int, view: LeadView, campaign: Campaign, step: Step, now: datetime
) -> ComposeResult:
    try:
        return composer.email(touch_id, view, campaign, step, now)
    except TemplateError as exc:
        return (RENDER_ERROR, str(exc))
    except Exception as exc:
        return (classify(exc).value, describe(exc))


class Sender:
    def __init__(
        self,
        store: Store,
        loaded: Loaded,
        settings: Settings,
        clock: Clock,
        transport: Transport | None = None,
        lease_clock: Clock | None = None,
        libraries: letter_libraries.Libraries | None = None,
    ):
        self.store = store
        self.loaded = loaded
        self.settings = settings
        self.clock = clock  # the business clock: due times, Date headers, what is recorded
        self.lease_clock = lease_clock or SystemClock()  # real time: whether a worker is alive
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.transport = transport or make_transport(settings.smtp_url, settings.outbox_dir, settings.max_in_flight)
        self.composer = Composer(
            loaded, settings.base_url, settings.secret or store.secret(), dkim_key(settings, loaded)
        )
        self.limiter = Limiter(store, loaded.campaigns.limits)
        self._stopping = False
        self._stop_requested = asyncio.Event()  # wakes a drain waiting for a send slot
        # The tick's leases: what it claimed and has not handed to a send yet, what is in
        # flight (handed over, outcome not committed), and when (time.monotonic()) the
        # oldest lease on them began or was last renewed.
        self._held: dict[int, touch_q.Claimed] = {}
        self._in_flight: set[int] = set()
        self._renewed = time.monotonic()
        self._limit_reached = False  # a limit on all mail is used up: claim no more this tick
        self._call_days: set[str] = set()  # business days whose call list this tick changed
        self._letter_thread: ThreadPoolExecutor | None = None  # renders letter PDFs, made when one is due
        # Whether WeasyPrint's system libraries load: a worker passes its own, so that it
        # finds out (and says so) once, not every tick.
        self.libraries = libraries or letter_libraries.Libraries(self.lease_clock)

    def stop(self) -> None:
        """Stop claiming; what is in flight finishes, what is claimed but not started is released."""
        self._stopping = True
        self._stop_requested.set()

    # --- the tick -------------------------------------------------------------------------
    async def tick(self, at: datetime | None = None) -> TickSummary:
        at = at or self.clock.now()
        summary = TickSummary()
        with self.store.begin() as conn:
            summary.replanned = reconcile(conn, self.loaded.planner, at)
        with self.store.begin() as conn:
            summary.recovered = touch_q.recover_interrupted(conn, self.lease_clock.now(), self.lease, updated_at=at)
        pool = self._render_pool(at)  # before any thread exists: the worker is forked
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self.transport.open()
            try:
                # An outcome plans the track's next touch; when that one is due by `at`
                # too (steps with the same `after`, catching up), the tick goes round again.
                while await self._drain(at, summary, pool) and not (self._stopping or self._limit_reached):
                    pass
            finally:
                await self.transport.close()
        finally:  # even when the tick is cancelled (a stop after the grace) in close()
            # Sends abandoned by a cancelled tick are no longer renewed: after the lease,
            # another tick takes them again.
            heartbeat.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if self._letter_thread is not None:  # no thread may outlive the tick: the next one forks
                self._letter_thread.shutdown(wait=True)
                self._letter_thread = None
        self._paperwork(at)
        return summary

    def _render_pool(self, at: datetime) -> Executor | None:
        if self.settings.render_processes < 1:
            return None
        with self.store.begin() as conn:  # counted up to the threshold only: flat in the backlog
            due = touch_q.count_due(conn, at, Channel.EMAIL, up_to=RENDER_POOL_MIN)
        if due < RENDER_POOL_MIN:
            return None
        pool = ProcessPoolExecutor(
            self.settings.render_processes,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_child_init,
            initargs=(self.composer, os.getpid()),
        )
        for started in [pool.submit(_ready) for _ in range(self.settings.render_processes)]:
            started.result()  # fork now, while this process has no other thread
        return pool

    def _in_flight_limit(self) -> int:
        # The file outbox is idempotent (a resend rewrites the same file), so it may run
        # wider; for SMTP the limit bounds what a crash can deliver twice.
        return IDEMPOTENT_IN_FLIGHT if getattr(self.transport, "idempotent", False) else self.settings.max_in_flight

    async def _drain(self, at: datetime, summary: TickSummary, pool: Executor | None) -> bool:
        """Send what is due at `at` until the queue is empty; True if the outcomes planned
        touches that are due by `at` as well."""
        limit = self._in_flight_limit()
        # A slot is held from the hand-over to the transport until the outcome is committed;
        # composing happens before, outside the slots.
        slots = asyncio.Semaphore(limit)
        recorder = _Recorder(self.store, self.settings.worker_id, self._call_days, self.loaded.planner, at)
        flushing = asyncio.create_task(recorder.run())
        running: set[asyncio.Task[None]] = set()
        # Claimed here and not yet handed to a send: released on every way out, so a stop,
        # a cancelled tick or an error never leaves them `sending` until the lease ends.
        held = self._held
        composed_ahead: list[dict[int, Awaitable[ComposeResult]]] = []
        try:
            batch = self._claim(at, summary, pool, limit, held)
            while batch is not None:
                claimed, prepared, composing, now = batch.claimed, batch.prepared, batch.composing, batch.now
                composed_ahead.append(composing)
                # Claim and start composing the next batch while this one is sent.
                more = claimed and not self._stopping and not self._limit_reached
                upcoming = self._claim(at, summary, pool, limit, held) if more else None
                for touch in claimed:
                    if self._stopping:
                        break
                    job = prepared[touch.id]
                    composed = await composing[touch.id] if touch.id in composing else None
                    if not await self._slot(slots):
                        break
                    # This worker may have stalled past the lease (the loop blocked, the
                    # process stopped): renewed first if a beat is due, so that what
                    # another worker took over meanwhile is not sent here as well.
                    self._keep_lease()
                    if touch.id not in held:  # another worker took it over: its to send now
                        slots.release()
                        continue
                    del held[touch.id]
                    self._in_flight.add(touch.id)
                    task = asyncio.create_task(
                        self._process(touch, job, composed, summary, recorder, now, batch.leads.get(touch.lead_id))
                    )
                    running.add(task)
                    task.add_done_callback(lambda t: (running.discard(t), slots.release()))
                if not claimed or self._stopping or upcoming is None:
                    if upcoming is not None:
                        composed_ahead.append(upcoming.composing)
                    break
                batch = upcoming
            self._release_held(held)  # at once: another worker may take them while ours finish
            if running:
                await asyncio.gather(*running)
        finally:
            self._release_held(held)
            for composing in composed_ahead:  # those of released touches were never awaited
                for waiting in composing.values():
                    if asyncio.iscoroutine(waiting):
                        waiting.close()
            if running:  # after an error: the sends already started still get their outcome recorded
                await asyncio.gather(*running, return_exceptions=True)
            recorder.close()
            await flushing
            summary.skipped += recorder.missed
        return recorder.planned_due > 0

    async def _slot(self, slots: asyncio.Semaphore) -> bool:
        """Take a send slot; False if a stop comes first (the stop must not wait for a
        slot: with a hung server none may come before the worker gives up)."""
        if self._stopping:
            return False
        if not slots.locked():
            await slots.acquire()  # free: taken without yielding
            return True
        acquiring = asyncio.ensure_future(slots.acquire())
        stopping = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not acquiring.done():
                acquiring.cancel()
        if acquiring.done() and not acquiring.cancelled():
            if not self._stopping:
                return True
            slots.release()  # both at once: the stop wins
        return False

    async def _heartbeat(self) -> None:
        """Renew the leases on what the tick holds, a few times a lease, for the whole tick.
        A send awaits the server for as long as it takes (aiosmtplib's timeout is per
        command, and a message has several); without this, another worker would take a
        touch still being sent for a dead worker's and send it again."""
        beat = self.lease.total_seconds() / BEATS_PER_LEASE
        while True:
            await asyncio.sleep(max(0.0, self._renewed + beat - time.monotonic()))
            try:
                self._keep_lease()
            except Exception:  # the database is away: the next beat tries again
                log.exception(
                    "could not renew the lease on %d claimed touch(es)", len(self._held) + len(self._in_flight)
                )
                await asyncio.sleep(beat)

    def _keep_lease(self) -> None:
        """Renew the leases on what this tick holds, if a beat has gone by since they were
        last renewed (or claimed). Those another worker took over meanwhile (this one
        stalled past the lease) leave `held`: sending them here too would deliver them
        twice. (One in flight is the stalled send itself: it is let finish.)"""
        beat = self.lease.total_seconds() / BEATS_PER_LEASE
        started = time.monotonic()
        if started - self._renewed < beat:
            return
        ids = set(self._held) | self._in_flight
        if ids:
            with self.store.begin() as conn:
                kept = touch_q.renew(conn, self.settings.worker_id, self.lease_clock.now(), ids)
            lost = [touch_id for touch_id in self._held if touch_id not in kept]
            for touch_id in lost:
                del self._held[touch_id]
            if lost:
                log.warning(
                    "%d claimed touch(es) were taken over by another worker after the lease; not sent here", len(lost)
                )
        self._renewed = started

    def _release_held(self, held: dict[int, touch_q.Claimed]) -> None:
        if not held:
            return
        releasing = list(held.values())
        held.clear()
        try:
            self._release(releasing)
        except Exception:
            log.exception(
                "%d claimed touch(es) could not be released; they are taken again after the lease", len(releasing)
            )

    def _claim(
        self, at: datetime, summary: TickSummary, pool: Executor | None, limit: int, held: dict[int, touch_q.Claimed]
    ) -> _Batch:
        if not (held or self._in_flight):  # the new leases are the oldest held (later ones are younger)
            self._renewed = time.monotonic()
        with self.store.begin() as conn:
            claimed = touch_q.claim(
                conn, at, self.lease_clock.now(), self.settings.worker_id, max(2 * limit, CLAIM_BATCH)
            )
            lead_rows = leadrows.by_ids(conn, sorted({t.lead_id for t in claimed}))
        held.update((t.id, t) for t in claimed)
        now = self.clock.now()
        prepared = {t.id: self._prepare(t, lead_rows.get(t.lead_id), at, summary) for t in claimed}
        self._apply_limits(claimed, prepared, now, summary)
        return _Batch(claimed, prepared, self._compose_ahead(claimed, prepared, lead_rows, pool, now), now, lead_rows)

    def _apply_limits(
        self, claimed: list[touch_q.Claimed], prepared: dict[int, Outcome | _Job], now: datetime, summary: TickSummary
    ) -> None:
        """E-mails over a limit go back to the queue, due when the blocking window ends."""
        emails = [
            (t.id, job.view.email.rpartition("@")[2])
            for t in claimed
            if isinstance(job := prepared[t.id], _Job) and Channel(job.step.channel) is Channel.EMAIL
        ]
        attempts = {t.id: t.attempts for t in claimed}
        for touch_id, held in self.limiter.admit(emails, now).items():
            prepared[touch_id] = Outcome(
                TouchState.PLANNED, held.reason, due_at=held.until, attempts=attempts[touch_id] - 1
            )
            summary.deferred += 1
            self._limit_reached |= held.everything_blocked

    def _release(self, claimed: list[touch_q.Claimed]) -> None:
        with self.store.begin() as conn:
            for touch in claimed:
                touch_q.finish(
                    conn,
                    touch.id,
                    self.settings.worker_id,
                    state=TouchState.PLANNED,
                    claimed_by=None,
                    attempts=touch.attempts - 1,
                    updated_at=self.clock.now(),
                )

    # --- one touch ----------------------------------------------------------------------
    def _prepare(
        self, touch: touch_q.Claimed, lead: Mapping[str, Any] | None, at: datetime, summary: TickSummary
    ) -> Outcome | _Job:
        """Decide what can be decided without doing the work: removed steps, catching up,
        suppression."""
        config = self.loaded.campaigns
        campaign = config.campaigns.get(touch.campaign)
        found = campaign.step(touch.step_id) if campaign else None
        if lead is None or campaign is None or found is None or found[0] != touch.stage:
            summary.skipped += 1
            return Outcome(TouchState.SKIPPED, Reason.STEP_REMOVED)
        if (lead["campaign"], lead["stage"]) != (touch.campaign, touch.stage):
            summary.skipped += 1  # a touch of the track the lead left (planned as it moved): never sent
            moved = Reason.STAGE_CHANGED if lead["campaign"] == touch.campaign else Reason.CAMPAIGN_CHANGED
            return Outcome(TouchState.SKIPPED, moved)
        if _superseded(self.loaded.planner, lead, touch, at):
            summary.skipped += 1  # held, or the worker was down: only the latest due step goes out
            return Outcome(TouchState.SKIPPED, Reason.MISSED)
        stop = stop_reason(campaign.stop_on, lead, touch.planned_at, campaign.name)
        if stop:  # suppression is checked again here, at send time
            summary.suppressed += 1
            return Outcome(TouchState.SUPPRESSED, stop)
        paused = lead["paused_until"]
        if paused is not None and paused > self.clock.now():  # the lead asked for a break
            summary.deferred += 1
            until = f"until {paused.date().isoformat()}"
            return Outcome(
                TouchState.PLANNED, Reason.PAUSED.with_detail(until), due_at=paused, attempts=touch.attempts - 1
            )
        return _Job(LeadView.from_row(lead, config.defaults.timezone), campaign, found[1])

    def _compose_ahead(
        self,
        batch: list[touch_q.Claimed],
        prepared: dict[int, Outcome | _Job],
        lead_rows: Mapping[int, Mapping[str, Any]],
        pool: Executor | None,
        now: datetime,
    ) -> dict[int, Awaitable[ComposeResult]]:
        """Hand the batch's e-mails to the render worker; one awaitable per touch."""
        if pool is None:
            return {}
        emails = [
            t for t in batch if isinstance(job := prepared[t.id], _Job) and Channel(job.step.channel) is Channel.EMAIL
        ]
        loop = asyncio.get_running_loop()
        out: dict[int, Awaitable[ComposeResult]] = {}
        for start in range(0, len(emails), RENDER_CHUNK):
            chunk = emails[start : start + RENDER_CHUNK]
            jobs = [(t.id, dict(lead_rows[t.lead_id]), t.campaign, t.step_id, now) for t in chunk]
            future = loop.run_in_executor(pool, _compose_chunk, jobs)
            for index, touch in enumerate(chunk):
                out[touch.id] = _pick(future, index)
        return out

    async def _process(
        self,
        touch: touch_q.Claimed,
        prepared: Outcome | _Job,
        composed: ComposeResult | None,
        summary: TickSummary,
        recorder: _Recorder,
        now: datetime,
        lead: Mapping[str, Any] | None,
    ) -> None:
        try:
            outcome = (
                prepared if isinstance(prepared, Outcome) else await self._work(touch, prepared, composed, summary, now)
            )
            bounce = outcome.hard_bounce
            if outcome.updated_at is None:
                outcome = replace(outcome, updated_at=self.clock.now())
            await recorder.record(touch, outcome, lead)
        finally:  # recorded, or not (then lease recovery takes it again): no longer renewed here
            self._in_flight.discard(touch.id)
        if bounce:
            self._hard_bounce(touch, bounce)

    async def _work(
        self, touch: touch_q.Claimed, job: _Job, composed: ComposeResult | None, summary: TickSummary, now: datetime
    ) -> Outcome:
        try:
            if Channel(job.step.channel) is Channel.EMAIL:
                result = (
                    composed
                    if composed is not None
                    else _compose_one(self.composer, touch.id, job.view, job.campaign, job.step, now)
                )
                return await self._send(touch, result, summary, now)
            if Channel(job.step.channel) is Channel.LETTER:
                return await self._write_letter(touch, job, now, summary)
            return self._write_call(touch, job, now, summary)
        except TemplateError as exc:
            return self._failed_render(str(exc), summary)
        except Exception as exc:  # a full disk, a PDF engine error...: never lose the touch
            failure = classify(exc)
            if failure is Failure.PERMANENT:
                log.warning("touch %s can never be sent as its data stand: %s", touch.id, describe(exc))
            else:
                log.exception("touch %s could not be processed; it will be retried", touch.id)
            return self._unsent(touch, failure, Reason.RETRY, describe(exc), now, summary)

    @staticmethod
    def _failed_render(reason: str, summary: TickSummary) -> Outcome:
        summary.failed += 1
        return Outcome(TouchState.FAILED, Reason.RENDER_ERROR.with_detail(reason))

    def _unsent(
        self, touch: touch_q.Claimed, failure: Failure, prefix: Reason, detail: str, now: datetime, summary: TickSummary
    ) -> Outcome:
        """The outcome of an attempt that failed, by the failure's kind (dripper.failures):
        failed at once, retried until GIVE_UP_AFTER has gone by since its run of failures
        began, or retried until it passes."""
        judged = verdict(failure, prefix, detail, touch.reason, now)
        if judged.fail:
            summary.failed += 1
            return Outcome(TouchState.FAILED, judged.reason)
        return self._retry(touch, judged.reason, now, summary)

    @staticmethod
    def _retry(touch: touch_q.Claimed, reason: str, now: datetime, summary: TickSummary) -> Outcome:
        summary.deferred += 1
        return Outcome(TouchState.PLANNED, reason, due_at=now + retry_delay(touch.attempts))

    @staticmethod
    def _kept_reason(touch: touch_q.Claimed) -> str | None:
        return touch.reason if touch.reason == Reason.RESENT_AFTER_INTERRUPTION else None

    async def _send(
        self, touch: touch_q.Claimed, result: ComposeResult, summary: TickSummary, now: datetime
    ) -> Outcome:
        if isinstance(result, tuple):
            kind, reason = result
            if kind == RENDER_ERROR:
                return self._failed_render(reason, summary)
            if kind == Failure.PERMANENT.value:
                log.warning("touch %s can never be sent as its data stand: %s", touch.id, reason)
            return self._unsent(touch, Failure(kind), Reason.RETRY, reason, now, summary)
        try:
            await self.transport.send(Envelope(result.mail_from, result.recipient, result.data, result.name))
        except SendError as exc:
            return self._send_error(touch, exc, now, summary)
        summary.sent += 1
        return Outcome(TouchState.SENT, self._kept_reason(touch), message_id=result.message_id, sent_at=now)

    def _send_error(self, touch: touch_q.Claimed, exc: SendError, now: datetime, summary: TickSummary) -> Outcome:
        if exc.transient:  # retried; given up after days only when it is about the recipient's mailbox
            return self._unsent(touch, smtp_reply(exc), Reason.SMTP_RETRY, str(exc), now, summary)
        summary.failed += 1
        from dripper.inbound.classify import bounce_kind

        # Refused at RCPT: a hard bounce only on the evidence a bounce needs (the address
        # or its domain is gone), never for a refusal of our message (blocklists, policy).
        bounce = None
        if exc.recipient and bounce_kind(str(exc), phase="RCPT") == InboundKind.BOUNCE_HARD:
            bounce = {"status": exc.code, "message": str(exc), "touch": touch.id}
        return Outcome(TouchState.FAILED, Reason.SMTP_ERROR.with_detail(str(exc)), hard_bounce=bounce)

    def _hard_bounce(self, touch: touch_q.Claimed, detail: dict[str, Any]) -> None:
        with self.store.begin() as conn:
            lead = leadrows.by_id(conn, touch.lead_id)
            if lead is not None:
                apply_event(
                    conn, self.loaded.planner, lead, EventKind.BOUNCED, self.clock.now(), source="smtp", detail=detail
                )

    def _business_day(self, instant: datetime) -> str:
        """The date the office is on: batches and call lists are per business day."""
        return instant.astimezone(timing.zone(self.loaded.campaigns.defaults.timezone)).date().isoformat()

    async def _write_letter(self, touch: touch_q.Claimed, job: _Job, now: datetime, summary: TickSummary) -> Outcome:
        if not postal.check(job.view).complete:
            summary.skipped += 1
            return Outcome(TouchState.SKIPPED, Reason.NO_POSTAL_ADDRESS)
        # WeasyPrint takes 0.1-0.3 s a letter (and its import 0.4 s): it runs off the event
        # loop, so the tick's e-mails keep flowing meanwhile; on one thread, one letter at a
        # time, because WeasyPrint does not promise to be thread-safe.
        if self._letter_thread is None:
            self._letter_thread = ThreadPoolExecutor(1, thread_name_prefix="letters")
        loop = asyncio.get_running_loop()
        missing = await loop.run_in_executor(self._letter_thread, self.libraries.missing)
        if missing is not None:
            return self._wait_for_libraries(touch, missing, now, summary)
        composed = self.composer.letter(job.view, job.campaign, job.step, now, touch.id)
        rendered, path = await loop.run_in_executor(
            self._letter_thread, self._render_letter, composed.html, composed.name
        )
        summary.sent += 1
        # Sent when it is in the day's print batch: the recorder adds it in the same commit.
        row = {
            "touch_id": touch.id,
            "file": path.name,
            "pages": rendered.pages,
            "format": composed.format,
            "address": "\n".join(composed.address),
            "sort_key": composed.sort_key,
        }
        return Outcome(
            TouchState.SENT,
            self._kept_reason(touch),
            message_id=str(path),
            sent_at=now,
            letter=(self._business_day(now), row),
        )

    @staticmethod
    def _wait_for_libraries(
        touch: touch_q.Claimed, missing: letter_libraries.Missing, now: datetime, summary: TickSummary
    ) -> Outcome:
        """This machine cannot print (WeasyPrint's system libraries are missing): the letter
        waits, due again after letter_libraries.WAIT. Not an attempt, never a failure: the
        touch is fine, and it goes out once the libraries are installed."""
        summary.deferred += 1
        return Outcome(
            TouchState.PLANNED, missing.reason, due_at=now + letter_libraries.WAIT, attempts=touch.attempts - 1
        )

    def _render_letter(self, html: str, name: str) -> tuple[letters.RenderedLetter, Path]:
        rendered = letters.render_letter(html, self.settings.templates_path)
        return rendered, letters.write_atomic(self.settings.letters_dir / f"{name}.pdf", rendered.pdf)

    def _write_call(self, touch: touch_q.Claimed, job: _Job, now: datetime, summary: TickSummary) -> Outcome:
        notes = self.composer.call_notes(job.view, job.campaign, job.step, now)
        owner = (
            str(job.view.attrs.get("owner") or "") or job.step.owner or self.loaded.campaigns.letters.call_owner or ""
        )
        summary.sent += 1
        row = {
            "touch_id": touch.id,
            "lead_id": touch.lead_id,
            "day": self._business_day(now),
            "owner": owner,
            "talking_points": notes,
        }
        return Outcome(TouchState.SENT, Reason.CALL_TASK, sent_at=now, call=row)

    def _paperwork(self, at: datetime) -> None:
        """After the sends: print batches that gained letters are rebuilt (and handed to a
        print service), call lists of days that gained calls are rewritten."""
        config = self.loaded.campaigns.letters
        now = self.clock.now()
        try:
            with locks.held(self.store, "print-batches") as mine:  # one worker at a time
                if mine:
                    batches.build_stale(self.store, self.settings.letters_dir, config, now)
                    if config.adapter != "files":
                        batches.submit_open(
                            self.store, make_adapter(config), self.settings.letters_dir, now, self._business_day(at)
                        )
        except Exception:
            log.exception("print batches could not be built or handed over; the next tick tries again")
        for day in self._call_days:
            try:
                calltasks.export_day(self.store, day, self.settings.calls_dir)
            except OSError:
                log.exception("call list for %s could not be written; `dripper calls` still lists it", day)
        self._call_days.clear()


async def _pick(future: Awaitable[list[ComposeResult]], index: int) -> ComposeResult:
    try:
        return (await future)[index]
    except Exception as exc:
        return (Failure.LASTING.value, f"render worker: {describe(exc)}")


class _Recorder:
    """Commits touch outcomes in groups, on one held connection. A send's slot is freed
    only once its outcome is committed."""

    def __init__(self, store: Store, worker: str, call_days: set[str], planner: Planner, at: datetime):
        self.store = store
        self.worker = worker
        self.call_days = call_days
        self.planner = planner
        self.at = at
        self.planned_due = 0  # next touches planned by these outcomes that are due by `at`
        self.missed = 0  # steps those outcomes found superseded on the way (catching up)
        self._queue: list[tuple[touch_q.Claimed, Outcome, Mapping[str, Any] | None, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closed = False

    async def record(self, touch: touch_q.Claimed, outcome: Outcome, lead: Mapping[str, Any] | None = None) -> None:
        """Commit the outcome (with the next touch of the track, planned from `lead` as it
        was read with the claim); returns once it is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((touch, outcome, lead, done))
        self._wake.set()
        await done

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        with self.store.engine.connect() as conn:  # one connection for the whole tick: no pool round trip
            while True:
                await self._wake.wait()
                self._wake.clear()
                items, self._queue = self._queue, []
                if items:
                    # In the loop itself (~0.3 ms): a thread hand-off cost more than it
                    # saved. Whatever completed since the last commit goes into this one.
                    try:
                        error = self._commit(conn, items)
                    except BaseException as exc:  # never leave a sender waiting forever
                        error = exc if isinstance(exc, Exception) else RuntimeError("recorder cancelled")
                        if not isinstance(exc, Exception):
                            for *_, done in items + self._queue:
                                done.set_exception(error)
                            raise
                    for *_, done in items:
                        if error is None:
                            done.set_result(None)
                        else:  # those touches stay `sending`: lease recovery resends them, marked
                            done.set_exception(error)
                elif self._closed:
                    return

    def _commit(
        self,
        conn: Connection,
        items: list[tuple[touch_q.Claimed, Outcome, Mapping[str, Any] | None, asyncio.Future[None]]],
    ) -> Exception | None:
        papers: dict[str, list[dict[str, Any]]] = {}
        calls: list[dict[str, Any]] = []
        outcomes = []
        finished = []
        for touch, outcome, lead, _ in items:
            if outcome.letter is not None:
                day, row = outcome.letter
                papers.setdefault(day, []).append(row)
            if outcome.call is not None:
                calls.append(outcome.call)
            outcomes.append((touch.id, outcome.columns()))
            if outcome.goes_on:
                finished.append(
                    Finished(touch.lead_id, touch.campaign, touch.stage, touch.step_id, touch.planned_at, lead)
                )
        try:
            with conn.begin():
                held = touch_q.finish_many(conn, self.worker, outcomes)
                # A letter is sent in the same commit that puts it into the day's batch.
                now = outcomes[0][1].get("updated_at") or datetime.now(UTC)
                for day, rows in papers.items():
                    printrows.add_letters(conn, rows, day, now)
                callrows.add(conn, calls, now)
                # The track's next touch is planned in the commit that records this one's outcome.
                planned = advance(conn, self.planner, finished, self.at)
        except Exception as exc:
            log.exception("recording %d outcome(s) failed", len(items))
            return exc
        self.planned_due += sum(row["state"] == TouchState.PLANNED and row["due_at"] <= self.at for row in planned)
        self.missed += sum(row["reason"] == Reason.MISSED for row in planned)
        self.call_days.update(row["day"] for row in calls)
        if held < len(items):
            log.warning("%d touch(es) were taken over by another worker before they were recorded", len(items) - held)
        return None


__all__ = ["Sender", "TickSummary", "retry_delay"]
