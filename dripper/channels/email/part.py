"""E-mail as a channel part: compose (in the render worker when the batch is large),
hand to the transport, and turn what the server said into an outcome.

A touch is `sent` only after the server accepted it; a transient refusal is retried, a
permanent one fails the touch, and one about the recipient's address is handed back as a
hard bounce (the tick applies it to the lead after recording the outcome).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import datetime
from typing import ClassVar, cast

from jinja2 import TemplateError

from dripper.bounces import bounce_kind
from dripper.campaign.model import Campaign, Step
from dripper.campaign.templates import LeadView
from dripper.channels.base import ChannelPart, Job, OutputDir, PartContext, Previewer
from dripper.channels.compose import Composed, Composer
from dripper.channels.email import preview as previews
from dripper.channels.email.transports import Envelope, SendError
from dripper.channels.failures import Failure, classify, describe, smtp_reply
from dripper.channels.limits import Held, Limiter
from dripper.channels.outcomes import Outcome, kept_reason, render_failed, unsent
from dripper.forked import render_worker_composer
from dripper.settings import Settings
from dripper.states import Channel, InboundKind, Reason, TouchState
from dripper.store.queries import touchrows as touch_q
from dripper.store.queries.touchrows import Claimed

log = logging.getLogger("dripper.sender")

RENDER_CHUNK = 16  # e-mails per job sent to the render worker
RENDER_ERROR = Reason.RENDER_ERROR.value
# A message, or why there is none: (RENDER_ERROR or a Failure's value, reason). Plain
# data: it comes back from the render worker process.
ComposeResult = Composed | tuple[str, str]
# What the render worker gets for one e-mail: (touch id, lead row, campaign, step id, now).
ComposeJob = tuple[int, LeadView, str, str, datetime]


def compose_one(
    composer: Composer, touch_id: int, view: LeadView, campaign: Campaign, step: Step, now: datetime
) -> ComposeResult:
    try:
        return composer.email(touch_id, view, campaign, step, now)
    except TemplateError as exc:
        return (RENDER_ERROR, str(exc))
    except Exception as exc:
        return (classify(exc).value, describe(exc))


def compose_chunk(jobs: list[ComposeJob]) -> list[ComposeResult]:
    """In the render worker: compose a chunk of a batch's e-mails."""
    composer = render_worker_composer()
    config = composer.loaded.campaigns
    out: list[ComposeResult] = []
    for touch_id, lead, campaign_name, step_id, now in jobs:
        campaign = config.campaigns[campaign_name]
        found = campaign.step(step_id)
        assert found is not None, f"the main process claimed a touch of step {step_id}"
        step = found[1]
        out.append(compose_one(composer, touch_id, lead.for_templates(config.defaults.timezone), campaign, step, now))
    return out


async def _pick(future: Awaitable[list[ComposeResult]], index: int) -> ComposeResult:
    try:
        return (await future)[index]
    except Exception as exc:
        return (Failure.LASTING.value, f"render worker: {describe(exc)}")


class EmailPart(ChannelPart):
    channel: ClassVar[Channel] = Channel.EMAIL
    needs_subject: ClassVar[bool] = True
    text_part: ClassVar[bool] = True

    previewer: ClassVar[Previewer | None] = previews

    def __init__(self, context: PartContext):
        super().__init__(context)
        self.transport = context.transport
        self.composer = context.composer
        self.limiter = Limiter(context.store, context.loaded.campaigns.limits)

    @classmethod
    def output_dir(cls, settings: Settings, used: bool) -> OutputDir | None:
        if settings.smtp_url:  # the outbox is also where forwarded replies and test sends go
            return None
        return OutputDir(settings.outbox_dir, "the e-mail outbox", "DRIPPER_OUTBOX")

    async def open(self) -> None:
        await self.transport.open()

    async def close(self) -> None:
        await self.transport.close()

    def admit(self, jobs: Sequence[Job], now: datetime) -> Mapping[int, Held]:
        return self.limiter.admit(
            [
                (job.touch.id, job.view.email.rpartition("@")[2], self.composer.sender(job.view, job.campaign).key)
                for job in jobs
            ],
            now,
        )

    def ahead_due(self, at: datetime, up_to: int) -> int:
        with self.context.store.begin() as conn:  # counted up to the threshold only: flat in the backlog
            return touch_q.count_due(conn, at, Channel.EMAIL, up_to=up_to)

    def compose_ahead(
        self, jobs: Sequence[Job], leads: Mapping[int, LeadView], pool: Executor, now: datetime
    ) -> dict[int, Awaitable[object]]:
        loop = asyncio.get_running_loop()
        out: dict[int, Awaitable[object]] = {}
        for start in range(0, len(jobs), RENDER_CHUNK):
            chunk = [job.touch for job in jobs[start : start + RENDER_CHUNK]]
            work = [(t.id, leads[t.lead_id], t.campaign, t.step_id, now) for t in chunk]
            future = loop.run_in_executor(pool, compose_chunk, work)
            for index, touch in enumerate(chunk):
                out[touch.id] = _pick(future, index)
        return out

    async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
        touch = job.touch
        result = (
            cast(ComposeResult, ahead)
            if ahead is not None
            else compose_one(self.composer, touch.id, job.view, job.campaign, job.step, now)
        )
        if isinstance(result, tuple):
            kind, reason = result
            if kind == RENDER_ERROR:
                return render_failed(reason)
            if kind == Failure.PERMANENT.value:
                log.warning("touch %s can never be sent as its data stand: %s", touch.id, reason)
            return unsent(touch, Failure(kind), Reason.RETRY, reason, now)
        try:
            await self.transport.send(Envelope(result.mail_from, result.recipient, result.data, result.name))
        except SendError as exc:
            return self._send_error(touch, exc, now)
        return Outcome(TouchState.SENT, kept_reason(touch), message_id=result.message_id, sent_at=now)

    @staticmethod
    def _send_error(touch: Claimed, exc: SendError, now: datetime) -> Outcome:
        if exc.transient:  # retried; given up after days only when it is about the recipient's mailbox
            return unsent(touch, smtp_reply(exc), Reason.SMTP_RETRY, str(exc), now)
        # Refused at RCPT: a hard bounce only on the evidence a bounce needs (the address
        # or its domain is gone), never for a refusal of our message (blocklists, policy).
        bounce = None
        if exc.recipient and bounce_kind(str(exc), phase="RCPT") == InboundKind.BOUNCE_HARD:
            bounce = {"status": exc.code, "message": str(exc), "touch": touch.id}
        return Outcome(TouchState.FAILED, Reason.SMTP_ERROR.with_detail(str(exc)), hard_bounce=bounce)


__all__ = ["ComposeResult", "EmailPart", "compose_chunk", "compose_one"]
