"""Record: the outcomes of a tick's touches, committed in groups on one held connection.

Each commit finishes the touches, stores their channels' records (a letter in the day's
print batch, a call task) and plans each track's next touch, so an outcome and what follows
from it are never half written. A send's slot is freed only once its outcome is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import Connection

from dripper.channels.base import ChannelRecord
from dripper.channels.outcomes import Outcome
from dripper.clock import Clock
from dripper.leads.records import Lead
from dripper.planning.planner import Finished, Planner, advance
from dripper.states import Reason, TouchState
from dripper.store import Store
from dripper.store.queries import touchrows as touch_q
from dripper.webhooks.outbox import Announcer

log = logging.getLogger("dripper.sender")


class Recorder:
    """Commits touch outcomes in groups, on one held connection. A send's slot is freed
    only once its outcome is committed."""

    def __init__(
        self, store: Store, worker: str, records: list[ChannelRecord], planner: Planner, at: datetime, clock: Clock
    ):
        self.store = store
        self.clock = clock
        self.worker = worker
        self.records = records  # the channels' records committed, for their paperwork after the tick
        self.planner = planner
        self.at = at
        self.planned_due = 0  # next touches planned by these outcomes that are due by `at`
        self.missed = 0  # steps those outcomes found superseded on the way (catching up)
        self._queue: list[tuple[touch_q.Claimed, Outcome, Lead | None, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._announcer = Announcer()  # webhooks for touch.sent / touch.failed (reads once a tick)

    async def record(self, touch: touch_q.Claimed, outcome: Outcome, lead: Lead | None = None) -> None:
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
                    # In the loop itself: a commit is short, and a thread hand-off cost
                    # more than it saved. Whatever completed since the last commit goes
                    # into this one.
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
        items: list[tuple[touch_q.Claimed, Outcome, Lead | None, asyncio.Future[None]]],
    ) -> Exception | None:
        records: dict[type[ChannelRecord], list[ChannelRecord]] = defaultdict(list)
        outcomes = []
        finished = []
        for touch, outcome, lead, _ in items:
            if outcome.record is not None:
                records[type(outcome.record)].append(outcome.record)
            outcomes.append((touch.id, outcome.columns()))
            if outcome.goes_on:
                finished.append(
                    Finished(touch.lead_id, touch.campaign, touch.stage, touch.step_id, touch.planned_at, lead)
                )
        try:
            with conn.begin():
                held = touch_q.finish_many(conn, self.worker, outcomes)
                # A channel's record (a letter in the day's batch, a call task) is written
                # in the commit that records the touch as sent.
                now = outcomes[0][1].get("updated_at") or self.clock.now()
                for kind, group in records.items():
                    kind.store_all(conn, group, now)
                # The track's next touch is planned in the commit that records this one's outcome.
                planned = advance(conn, self.planner, finished, self.at)
                # Webhooks of these outcomes, in the same commit (dripper/webhooks/outbox.py).
                self._announcer.outcomes(
                    conn, [(t, columns) for (t, *_), (_, columns) in zip(items, outcomes, strict=True)], now
                )
        except Exception as exc:
            log.exception("recording %d outcome(s) failed", len(items))
            return exc
        self.planned_due += sum(row["state"] == TouchState.PLANNED and row["due_at"] <= self.at for row in planned)
        self.missed += sum(row["reason"] == Reason.MISSED for row in planned)
        for group in records.values():
            self.records.extend(group)
        if held < len(items):
            log.warning("%d touch(es) were taken over by another worker before they were recorded", len(items) - held)
        return None


__all__ = ["Recorder"]
