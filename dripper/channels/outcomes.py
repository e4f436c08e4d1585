"""What became of a claimed touch, as the tick records it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dripper.channels.failures import Failure, verdict
from dripper.states import REPLANNABLE, Reason, TouchState
from dripper.store.queries.touchrows import Claimed, reason_columns

if TYPE_CHECKING:
    from dripper.channels.base import ChannelRecord

RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)


@dataclass(frozen=True)
class Outcome:
    """The outcome of one claimed touch: its new state and reason, the columns that go
    with them, and what the same commit must also write (the channel's record: a letter
    into the day's print batch, a call task) or do afterwards (a hard bounce to apply to the lead).

    A column left None is not written, except `claimed_by`: a touch that goes back to
    `planned` (a retry, a deferral) is released by the same update."""

    state: TouchState
    reason: str | None = None
    due_at: datetime | None = None  # when a touch back in the queue is due again
    attempts: int | None = None  # set when the attempt does not count (a deferral)
    message_id: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None
    record: ChannelRecord | None = None  # the channel's row, stored in the same commit
    hard_bounce: dict[str, Any] | None = None  # the bounce event's detail
    variant: str | None = None  # the A/B variant of the step the work was done with

    def columns(self) -> dict[str, Any]:
        """The touch columns this outcome writes (the reason apart from its detail)."""
        values: dict[str, Any] = {"state": self.state, **reason_columns(self.reason)}
        if self.state is TouchState.PLANNED:
            values["claimed_by"] = None
        optional = {
            "due_at": self.due_at,
            "attempts": self.attempts,
            "message_id": self.message_id,
            "sent_at": self.sent_at,
            "updated_at": self.updated_at,
            "variant": self.variant,
        }
        values.update((name, value) for name, value in optional.items() if value is not None)
        return values

    @property
    def goes_on(self) -> bool:
        """After this outcome the track goes on to its next step. Not after a suppression
        (the lead stopped the track), a touch still pending (retried, deferred, released),
        or a step that left the campaign (the edit re-plans the track)."""
        if self.state in (TouchState.SENT, TouchState.FAILED):
            return True
        return self.state is TouchState.SKIPPED and self.reason not in REPLANNABLE


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_FIRST * (1 << max(0, attempts - 1)), RETRY_MAX)


def render_failed(reason: str) -> Outcome:
    return Outcome(TouchState.FAILED, Reason.RENDER_ERROR.with_detail(reason))


def retry(touch: Claimed, reason: str, now: datetime) -> Outcome:
    return Outcome(TouchState.PLANNED, reason, due_at=now + retry_delay(touch.attempts))


def unsent(touch: Claimed, failure: Failure, prefix: Reason, detail: str, now: datetime) -> Outcome:
    """The outcome of an attempt that failed, by the failure's kind (dripper.channels.failures):
    failed at once, retried until GIVE_UP_AFTER has gone by since its run of failures
    began, or retried until it passes."""
    judged = verdict(failure, prefix, detail, touch.reason, now)
    if judged.fail:
        return Outcome(TouchState.FAILED, judged.reason)
    return retry(touch, judged.reason, now)


def kept_reason(touch: Claimed) -> str | None:
    """The reason a delivered touch keeps: only that it was sent again after an interruption."""
    return touch.reason if touch.reason == Reason.RESENT_AFTER_INTERRUPTION else None


__all__ = ["Outcome", "kept_reason", "render_failed", "retry", "retry_delay", "unsent"]
