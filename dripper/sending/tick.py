"""The tick: claim what is due -> check -> dispatch to the channel's part -> record.

The tick knows no channel: what a touch's step needs done (compose and send an e-mail,
print a letter, list a call) is the work of its channel's part (dripper.channels.base),
looked up in the registry (dripper.channels.registry).

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
composes the claimed batch ahead (a part's `compose_ahead`) while this process sends and
records.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError

from dripper.campaign import variants
from dripper.campaign.conditions import EMPTY, History
from dripper.channels import registry
from dripper.channels.base import ChannelPart, ChannelRecord, Job, PartContext
from dripper.channels.compose import Composer
from dripper.channels.email.dkim import DkimKey, DkimKeys, parse_keys
from dripper.channels.email.transports import Transport, make_transport
from dripper.channels.failures import Failure, classify, describe
from dripper.channels.letters import libraries as letter_libraries
from dripper.channels.outcomes import Outcome, render_failed, retry_delay, unsent
from dripper.clock import Clock, SystemClock
from dripper.config import Loaded
from dripper.forked import init_render_worker, render_worker_ready
from dripper.leads.events import apply_event
from dripper.leads.records import Lead
from dripper.planning.planner import reconcile
from dripper.reports import winners
from dripper.sending import checks
from dripper.sending.recorder import Recorder
from dripper.settings import DEFAULT_LEASE_SECONDS, Settings
from dripper.states import Channel, EventKind, Reason, TouchState
from dripper.store import Store
from dripper.store.queries import leadrows
from dripper.store.queries import touchrows as touch_q

log = logging.getLogger("dripper.sender")

LEASE = timedelta(seconds=DEFAULT_LEASE_SECONDS)  # Settings.lease_seconds (DRIPPER_LEASE_SECONDS) by default
BEATS_PER_LEASE = 4  # the heartbeat renews four times a lease: a beat or two may be late
IDEMPOTENT_IN_FLIGHT = 256
CLAIM_BATCH = 50  # touches claimed per query (claimed is not in flight: never sent twice)
RENDER_POOL_MIN = 200  # due touches below which composing in-process is cheaper than a worker


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

    def count(self, outcome: Outcome) -> Outcome:
        """Count the outcome under its state (a touch back in the queue is deferred)."""
        if outcome.state is TouchState.SENT:
            self.sent += 1
        elif outcome.state is TouchState.FAILED:
            self.failed += 1
        elif outcome.state is TouchState.SUPPRESSED:
            self.suppressed += 1
        elif outcome.state is TouchState.SKIPPED:
            self.skipped += 1
        elif outcome.state is TouchState.PLANNED:
            self.deferred += 1
        return outcome


@dataclass(frozen=True)
class _Batch:
    """Touches claimed together, and what the tick knows about them so far."""

    claimed: list[touch_q.Claimed]
    prepared: dict[int, Outcome | Job]  # what was decided for each, by touch id
    composing: dict[int, Awaitable[object]]  # their channels' work done ahead (e-mails being composed)
    now: datetime  # the business clock when they were claimed
    leads: Mapping[int, Lead]  # the leads as they were read with the claim


def dkim_key(settings: Settings, loaded: Loaded) -> DkimKeys:
    """The DKIM keys (channels/email/dkim.py): DRIPPER_DKIM_KEYS by domain, and the single
    DRIPPER_DKIM_KEY for every other domain. Raises ValueError for a key it cannot read."""
    fallback = None
    if settings.dkim_key is not None:
        domain = settings.dkim_domain or loaded.campaigns.sender.domain
        try:
            fallback = DkimKey.load(settings.dkim_key, settings.dkim_selector, domain)
        except OSError as exc:
            raise ValueError(f"DRIPPER_DKIM_KEY: cannot read {settings.dkim_key}: {exc}") from exc
    return DkimKeys(parse_keys(settings.dkim_keys or ""), fallback)


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
        parts: registry.PartClasses = registry.PARTS,
    ):
        self.store = store
        loaded = winners.applied(store, loaded, clock.now())  # tests that auto_winner ended
        self.loaded = loaded
        self.settings = settings
        self.clock = clock  # the business clock: due times, Date headers, what is recorded
        self.lease_clock = lease_clock or SystemClock()  # real time: whether a worker is alive
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.transport = transport or make_transport(settings.smtp_url, settings.outbox_dir, settings.max_in_flight)
        self.composer = Composer(
            loaded, settings.base_url, settings.secret or store.secret(), dkim_key(settings, loaded)
        )
        self._stopping = False
        self._stop_requested = asyncio.Event()  # wakes a drain waiting for a send slot
        # The tick's leases: what it claimed and has not handed to a send yet, what is in
        # flight (handed over, outcome not committed), and when (time.monotonic()) the
        # oldest lease on them began or was last renewed.
        self._held: dict[int, touch_q.Claimed] = {}
        self._in_flight: set[int] = set()
        self._renewed = time.monotonic()
        self._limit_reached = False  # a limit on all mail is used up: claim no more this tick
        self._records: list[ChannelRecord] = []  # the channels' records this tick committed
        # Whether WeasyPrint's system libraries load: a worker passes its own, so that it
        # finds out (and says so) once, not every tick.
        self.libraries = libraries or letter_libraries.Libraries(self.lease_clock)
        context = PartContext(store, loaded, settings, clock, self.composer, self.transport, self.libraries)
        self.parts: Mapping[Channel, ChannelPart] = registry.build(context, parts)

    def stop(self) -> None:
        """Stop claiming; what is in flight finishes, what is claimed but not started is released."""
        self._stopping = True
        self._stop_requested.set()

    # --- the tick -------------------------------------------------------------------------
    async def tick(self, at: datetime | None = None) -> TickSummary:
        at = at or self.clock.now()
        summary = TickSummary()
        with self.store.begin() as conn:
            edit = reconcile(conn, self.loaded.planner, at)
        # What the edit closed is this tick's doing too: counted with the sends' outcomes.
        summary.replanned = list(edit.campaigns)
        summary.skipped += edit.skipped
        summary.suppressed += edit.suppressed
        with self.store.begin() as conn:
            summary.recovered = touch_q.recover_interrupted(conn, self.lease_clock.now(), self.lease, updated_at=at)
        pool = self._render_pool(at)  # before any thread exists: the worker is forked
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            opened: list[ChannelPart] = []
            try:
                for part in self.parts.values():
                    await part.open()
                    opened.append(part)
                # An outcome plans the track's next touch; when that one is due by `at`
                # too (steps with the same `after`, catching up), the tick goes round again.
                while await self._drain(at, summary, pool) and not (self._stopping or self._limit_reached):
                    pass
            finally:
                for part in reversed(opened):
                    await part.close()
        finally:  # even when the tick is cancelled (a stop after the grace) in close()
            # Sends abandoned by a cancelled tick are no longer renewed: after the lease,
            # another tick takes them again.
            heartbeat.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            for part in self.parts.values():  # no thread may outlive the tick: the next one forks
                part.shutdown()
        self._paperwork(at)
        return summary

    def _render_pool(self, at: datetime) -> Executor | None:
        if self.settings.render_processes < 1:
            return None
        due = 0
        for part in self.parts.values():
            due += part.ahead_due(at, RENDER_POOL_MIN - due)
            if due >= RENDER_POOL_MIN:
                break
        else:
            return None
        pool = ProcessPoolExecutor(
            self.settings.render_processes,
            mp_context=multiprocessing.get_context("fork"),
            initializer=init_render_worker,
            initargs=(self.composer, os.getpid()),
        )
        for started in [pool.submit(render_worker_ready) for _ in range(self.settings.render_processes)]:
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
        recorder = Recorder(self.store, self.settings.worker_id, self._records, self.loaded.planner, at, self.clock)
        flushing = asyncio.create_task(recorder.run())
        running: set[asyncio.Task[None]] = set()
        # Claimed here and not yet handed to a send: released on every way out, so a stop,
        # a cancelled tick or an error never leaves them `sending` until the lease ends.
        held = self._held
        composed_ahead: list[dict[int, Awaitable[object]]] = []
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
                    ahead = await composing[touch.id] if touch.id in composing else None
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
                        self._process(touch, job, ahead, summary, recorder, now, batch.leads.get(touch.lead_id))
                    )
                    running.add(task)
                    task.add_done_callback(lambda t: _finished(running, slots, t))
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
            histories = checks.histories(conn, self.loaded.campaigns, claimed)
        held.update((t.id, t) for t in claimed)
        now = self.clock.now()
        prepared = {t.id: self._prepare(t, lead_rows.get(t.lead_id), at, summary, histories) for t in claimed}
        by_part = self._jobs_by_part(claimed, prepared)
        self._apply_limits(by_part, prepared, now, summary)
        return _Batch(claimed, prepared, self._compose_ahead(by_part, prepared, lead_rows, pool, now), now, lead_rows)

    def _part(self, job: Job) -> ChannelPart:
        return self.parts[Channel(job.step.channel)]

    def _jobs_by_part(
        self, claimed: list[touch_q.Claimed], prepared: Mapping[int, Outcome | Job]
    ) -> dict[ChannelPart, list[Job]]:
        """The batch's jobs (touches that passed the checks) by their channel's part, in claim order."""
        by_part: dict[ChannelPart, list[Job]] = defaultdict(list)
        for touch in claimed:
            if isinstance(job := prepared[touch.id], Job):
                by_part[self._part(job)].append(job)
        return by_part

    def _apply_limits(
        self,
        by_part: Mapping[ChannelPart, Sequence[Job]],
        prepared: dict[int, Outcome | Job],
        now: datetime,
        summary: TickSummary,
    ) -> None:
        """Touches over a sending limit go back to the queue, due when the blocking window ends."""
        for part, jobs in by_part.items():
            attempts = {job.touch.id: job.touch.attempts for job in jobs}
            for touch_id, held in part.admit(jobs, now).items():
                prepared[touch_id] = summary.count(
                    Outcome(TouchState.PLANNED, held.reason, due_at=held.until, attempts=attempts[touch_id] - 1)
                )
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
        self,
        touch: touch_q.Claimed,
        lead: Lead | None,
        at: datetime,
        summary: TickSummary,
        histories: Mapping[int, History],
    ) -> Outcome | Job:
        history = histories.get(touch.lead_id, EMPTY)
        decided = checks.check(touch, lead, self.loaded, at, self.clock.now(), history)
        return summary.count(decided) if isinstance(decided, Outcome) else decided

    def _compose_ahead(
        self,
        by_part: Mapping[ChannelPart, Sequence[Job]],
        prepared: Mapping[int, Outcome | Job],
        lead_rows: Mapping[int, Lead],
        pool: Executor | None,
        now: datetime,
    ) -> dict[int, Awaitable[object]]:
        """Hand the batch's CPU work (its e-mails) to the render worker; one awaitable per touch."""
        if pool is None:
            return {}
        out: dict[int, Awaitable[object]] = {}
        for part, jobs in by_part.items():
            admitted = [job for job in jobs if prepared[job.touch.id] is job]  # not held back by a limit
            if admitted:
                out.update(part.compose_ahead(admitted, lead_rows, pool, now))
        return out

    async def _process(
        self,
        touch: touch_q.Claimed,
        prepared: Outcome | Job,
        ahead: object | None,
        summary: TickSummary,
        recorder: Recorder,
        now: datetime,
        lead: Lead | None,
    ) -> None:
        try:
            outcome = prepared if isinstance(prepared, Outcome) else await self._work(prepared, ahead, summary, now)
            bounce = outcome.hard_bounce
            if outcome.updated_at is None:
                outcome = replace(outcome, updated_at=self.clock.now())
            await recorder.record(touch, outcome, lead)
        finally:  # recorded, or not (then lease recovery takes it again): no longer renewed here
            self._in_flight.discard(touch.id)
        if bounce:
            self._hard_bounce(touch, bounce)

    async def _work(self, job: Job, ahead: object | None, summary: TickSummary, now: datetime) -> Outcome:
        """The channel's part does the touch's work; whatever it raises becomes an outcome."""
        touch = job.touch
        try:
            outcome = await self._part(job).deliver(job, ahead, now)
        except TemplateError as exc:
            outcome = render_failed(str(exc))
        except Exception as exc:  # a full disk, a PDF engine error...: never lose the touch
            failure = classify(exc)
            if failure is Failure.PERMANENT:
                log.warning("touch %s can never be sent as its data stand: %s", touch.id, describe(exc))
            else:
                log.exception("touch %s could not be processed; it will be retried", touch.id)
            outcome = unsent(touch, failure, Reason.RETRY, describe(exc), now)
        if outcome.state in (TouchState.SENT, TouchState.FAILED):  # the A/B variant it went (or failed) with
            outcome = replace(outcome, variant=variants.variant_for(job.view.email, job.campaign.name, job.step))
        return summary.count(outcome)

    def _hard_bounce(self, touch: touch_q.Claimed, detail: dict[str, Any]) -> None:
        with self.store.begin() as conn:
            lead = leadrows.by_id(conn, touch.lead_id)
            if lead is not None:
                apply_event(
                    conn, self.loaded.planner, lead, EventKind.BOUNCED, self.clock.now(), source="smtp", detail=detail
                )

    def _paperwork(self, at: datetime) -> None:
        """After the sends, each channel's paperwork (print batches, call lists), with the
        records this tick committed for it."""
        records = list(self._records)
        self._records.clear()
        for channel, part in self.parts.items():
            try:
                part.after_tick(at, [record for record in records if record.channel == channel])
            except Exception:
                log.exception("%s paperwork failed; the next tick tries again", channel)


def _finished(running: set[asyncio.Task[None]], slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
    """A send's task is done (its outcome committed, or not): its slot is free."""
    running.discard(task)
    slots.release()


__all__ = ["CLAIM_BATCH", "IDEMPOTENT_IN_FLIGHT", "LEASE", "RENDER_POOL_MIN", "Sender", "TickSummary", "retry_delay"]
