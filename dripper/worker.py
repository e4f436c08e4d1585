"""`dripper run`: APScheduler drives periodic work (the tick); it holds no job per lead.

On SIGTERM/SIGINT the worker stops claiming, lets in-flight sends finish (or leaves them
to lease recovery if they hang), releases what it claimed but did not start, and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from dripper.clock import Clock
from dripper.config import Watcher
from dripper.sender import Sender
from dripper.settings import Settings
from dripper.store import Store

log = logging.getLogger("dripper.worker")
STOP_GRACE = 7.0  # seconds in-flight sends get after a stop signal (the contract allows 10)


class Worker:
    def __init__(self, store: Store, watcher: Watcher, settings: Settings, clock: Clock):
        self.store = store
        self.watcher = watcher
        self.settings = settings
        self.clock = clock
        self._current: Sender | None = None
        self._running: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    async def tick(self) -> None:
        loaded = self.watcher.refresh()
        sender = Sender(self.store, loaded, self.settings, self.clock)
        self._current = sender
        self._running = asyncio.current_task()
        try:
            summary = await sender.tick()
        except Exception:
            log.exception("tick failed; the next one will try again")
            return
        finally:
            self._current = None
            self._running = None
        counts = " ".join(f"{k}={v}" for k, v in summary.counts().items())
        log.info("tick at=%s %s%s", self.clock.now().isoformat(timespec="seconds"), counts,
                 f" replanned={','.join(summary.replanned)}" if summary.replanned else "")

    def request_stop(self) -> None:
        log.info("stop requested: finishing in-flight sends")
        if self._current is not None:
            self._current.stop()
        self._stopped.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        scheduler = AsyncIOScheduler(timezone=timezone.utc, event_loop=loop)
        scheduler.add_job(self.tick, IntervalTrigger(seconds=self.settings.tick_interval), id="tick",
                          next_run_time=datetime.now(timezone.utc), max_instances=1, coalesce=True,
                          misfire_grace_time=None)
        scheduler.start()
        log.info("worker %s started: tick every %ss", self.settings.worker_id, self.settings.tick_interval)
        await self._stopped.wait()
        scheduler.shutdown(wait=False)
        running = self._running
        if running is not None and not running.done():
            done, _ = await asyncio.wait({running}, timeout=STOP_GRACE)
            if not done:  # a hung SMTP server: its touches stay `sending` for lease recovery
                running.cancel()
        log.info("worker stopped")
