"""Phone calls as a channel part: a call step that falls due becomes a task on its
business day's call list (talking points rendered from the step's template, for the
lead's owner); the task goes into the commit that records the outcome, and after the
tick the call lists of the days that gained calls are rewritten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import ClassVar, Self

from sqlalchemy import Connection

from dripper.channels.base import ChannelPart, ChannelRecord, Job, OutputDir, Previewer, business_day
from dripper.channels.calls import preview as previews
from dripper.channels.calls import tasks as calltasks
from dripper.channels.outcomes import Outcome
from dripper.settings import Settings
from dripper.states import Channel, Reason, TouchState
from dripper.store.queries import callrows

log = logging.getLogger("dripper.sender")


@dataclass(frozen=True)
class CallRecord(ChannelRecord):
    """A call task for the business day's list."""

    channel: ClassVar[Channel] = Channel.CALL

    touch_id: int
    lead_id: int
    day: str
    owner: str
    talking_points: str

    @classmethod
    def store_all(cls, conn: Connection, records: Sequence[Self], now: datetime) -> None:
        callrows.add(conn, [asdict(record) for record in records], now)


class CallPart(ChannelPart):
    channel: ClassVar[Channel] = Channel.CALL

    previewer: ClassVar[Previewer | None] = previews

    @classmethod
    def output_dir(cls, settings: Settings, used: bool) -> OutputDir | None:
        return OutputDir(settings.calls_dir, "call lists", "DRIPPER_CALLS") if used else None

    async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
        config = self.context.loaded.campaigns
        notes = self.context.composer.call_notes(job.view, job.campaign, job.step, now)
        # The lead's owner; else the step's; else the campaign's named sender (campaign/senders.py).
        named = config.book.for_campaign(job.campaign.name).key
        owner = job.view.owner or job.step.owner or named or config.letters.call_owner or ""
        record = CallRecord(
            touch_id=job.touch.id,
            lead_id=job.touch.lead_id,
            day=business_day(now, config.defaults.timezone),
            owner=owner,
            talking_points=notes,
        )
        return Outcome(TouchState.SENT, Reason.CALL_TASK, sent_at=now, record=record)

    def after_tick(self, at: datetime, records: Sequence[ChannelRecord]) -> None:
        """The call lists of days that gained calls are rewritten."""
        for day in sorted({record.day for record in records if isinstance(record, CallRecord)}):
            try:
                calltasks.export_day(
                    self.context.store,
                    day,
                    self.context.settings.calls_dir,
                    self.context.loaded.campaigns.defaults.timezone,
                )
            except OSError:
                log.exception("call list for %s could not be written; `dripper calls` still lists it", day)


__all__ = ["CallPart", "CallRecord"]
