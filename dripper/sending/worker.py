"""`dripper run`: APScheduler drives periodic work (the tick); it holds no job per lead.

On SIGTERM/SIGINT the worker stops claiming, lets in-flight sends finish (or leaves them
to lease recovery if they hang), releases what it claimed but did not start, and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from dripper.channels.letters.libraries import Libraries
from dripper.clock import Clock
from dripper.config import Watcher
from dripper.sending.tick import Sender
from dripper.settings import Settings
from dripper.store import Store, locks

log = logging.getLogger("dripper.worker")
STOP_GRACE = 7.0  # seconds in-flight sends get after a stop signal (the contract allows 10)
HOUSEKEEPING_INTERVAL = 3600.0  # seconds between retention purges (dripper/leads/retention.py)
WEBHOOK_INTERVAL = 10.0  # seconds between webhook deliveries (a run takes what is due)
CANCEL_GRACE = 1.5  # seconds a tick cancelled after the grace gets to release and close


class Worker:
    def __init__(self, store: Store, watcher: Watcher, settings: Settings, clock: Clock):
        self.store = store
        self.watcher = watcher
        self.settings = settings
        self.clock = clock
        self._current: Sender | None = None
        self._running: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._libraries = Libraries()  # found out once for the worker's life, not once a tick

    async def tick(self) -> None:
        if self._stopped.is_set():  # started between the stop signal and the pause
            return
        loaded = self.watcher.refresh()
        sender = Sender(self.store, loaded, self.settings, self.clock, libraries=self._libraries)
        self._current = sender
        self._running = asyncio.current_task()
        try:
            summary = await sender.tick()
        except asyncio.CancelledError:  # only ever by run(), stopping: not an error to report
            log.warning(
                "stopped with sends the SMTP server had not answered; their touches are sent again after the lease"
            )
            return
        except Exception:
            log.exception("tick failed; the next one will try again")
            return
        finally:
            self._current = None
            self._running = None
        counts = " ".join(f"{k}={v}" for k, v in summary.counts().items())
        log.info(
            "tick at=%s %s%s",
            self.clock.now().isoformat(timespec="seconds"),
            counts,
            f" replanned={','.join(summary.replanned)}" if summary.replanned else "",
            extra={"tick": {**summary.counts(), "replanned": summary.replanned}},
        )  # JSON logs: fields

    async def poll_inbound(self) -> None:
        """IMAP: ingest what arrived (bounces, replies...), in a thread: imaplib blocks.
        One worker at a time polls (a lock in the database)."""
        with locks.held(self.store, "imap") as mine:
            if not mine:
                log.debug("IMAP: another worker is polling")
                return
            await self._poll_inbound()

    async def _poll_inbound(self) -> None:
        from dripper.inbound import Ingestor
        from dripper.inbound.imap import ImapConfig, poll
        from dripper.inbound.notify import Notifier
        from dripper.tokens import tokens_for

        loaded = self.watcher.refresh()
        ingestor = Ingestor(
            self.store, loaded.planner, tokens_for(self.settings, self.store), Notifier(loaded.campaigns, self.settings)
        )
        try:
            config = ImapConfig.parse(self.settings.imap_url or "")
            results = await asyncio.to_thread(poll, config, ingestor, self.clock.now())
        except Exception:
            log.exception("IMAP polling failed; the next poll will try again")
            return
        for result in results:
            log.info(
                "inbound %s kind=%s lead=%s status=%s effect=%s",
                result.file,
                result.kind,
                result.lead,
                result.status,
                "already applied" if result.duplicate else result.effect,
                extra={
                    "inbound": {
                        "file": result.file,
                        "kind": result.kind,
                        "lead": result.lead,
                        "status": result.status,
                        "duplicate": result.duplicate,
                        "effect": result.effect,
                    }
                },
            )

    async def housekeeping(self) -> None:
        """Retention (`retention:`): old events deleted, old message text blanked. One worker
        at a time (a lock in the database); a failure waits for the next hour."""
        from dripper.leads.retention import purge

        with locks.held(self.store, "housekeeping") as mine:
            if not mine:
                return
            loaded = self.watcher.refresh()
            try:
                with self.store.begin() as conn:
                    purged = purge(conn, loaded.campaigns.retention, self.clock.now())
            except Exception:
                log.exception("housekeeping failed; the next run will try again")
                return
            log.info("housekeeping: %d event(s) deleted, %d message text(s) blanked", purged.events, purged.bodies)

    async def deliver_webhooks(self) -> None:
        """Webhooks due (dripper/webhooks/delivery.py), in a thread: httpx blocks. Rows are
        claimed with a lease, so workers side by side never send one twice at once."""
        from dripper.webhooks import subscriptions
        from dripper.webhooks.delivery import deliver_due

        try:
            loaded = self.watcher.refresh()
            with self.store.begin() as conn:
                subscriptions.sync(conn, loaded.campaigns.webhooks, self.clock.now())
            summary = await asyncio.to_thread(
                deliver_due, self.store, self.clock, f"{self.settings.worker_id}:webhooks", limit=500
            )
        except Exception:
            log.exception("delivering webhooks failed; the next run will try again")
            return
        if summary.delivered or summary.failed or summary.dead:
            log.info("webhooks delivered=%d retry=%d dead=%d", summary.delivered, summary.failed, summary.dead)

    def request_stop(self) -> None:
        log.info("stop requested: finishing in-flight sends")
        if self._current is not None:
            self._current.stop()
        self._stopped.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        scheduler = AsyncIOScheduler(timezone=UTC, event_loop=loop)
        _every(scheduler, "tick", self.tick, self.settings.tick_interval, misfire_grace_time=None)
        _every(scheduler, "housekeeping", self.housekeeping, HOUSEKEEPING_INTERVAL)
        if self.settings.imap_url:  # every worker schedules it; the one that gets the lock polls
            _every(scheduler, "imap", self.poll_inbound, self.settings.imap_interval)
        _every(scheduler, "webhooks", self.deliver_webhooks, WEBHOOK_INTERVAL)
        scheduler.start()
        log.info(
            "worker %s started: tick every %ss",
            self.settings.worker_id,
            self.settings.tick_interval,
            extra={"tick_interval": self.settings.tick_interval},
        )
        await self._stopped.wait()
        # Pause, not shut down, while the tick finishes: shutting APScheduler's asyncio
        # executor down cancels the running tick at once, in-flight sends and all (a 250
        # not yet recorded would be sent again; claimed touches would wait out the lease).
        scheduler.pause()
        running = self._running
        if running is not None and not running.done():
            done, _ = await asyncio.wait({running}, timeout=STOP_GRACE)
            if not done:  # a hung SMTP server: its in-flight touches stay `sending` for lease recovery
                running.cancel()
                await asyncio.wait({running}, timeout=CANCEL_GRACE)  # it releases what it had not started
        scheduler.shutdown(wait=False)
        log.info("worker stopped")


def _every(
    scheduler: AsyncIOScheduler, name: str, job: Callable[[], Awaitable[None]], seconds: float, **options: Any
) -> None:
    """A periodic job that starts at once and never runs twice at the same time: a run that
    is still going when the next is due makes the next one wait, and missed runs collapse
    into one."""
    scheduler.add_job(
        job,
        IntervalTrigger(seconds=seconds),
        id=name,
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        **options,
    )
