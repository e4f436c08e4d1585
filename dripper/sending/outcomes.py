"""What became of a claimed touch, as the tick records it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dripper.states import REPLANNABLE, TouchState
from dripper.store.touchrows import reason_columns


@dataclass(frozen=True)
class Outcome:
    """The outcome of one claimed touch: its new state and reason, the columns that go
    with them, and what the same commit must also write (a letter into the day's print
    batch, a call task) or do afterwards (a hard bounce to apply to the lead).

    A column left None is not written, except `claimed_by`: a touch that goes back to
    `planned` (a retry, a deferral) is released by the same update."""

    state: TouchState
    reason: str | None = None
    due_at: datetime | None = None  # when a touch back in the queue is due again
    attempts: int | None = None  # set when the attempt does not count (a deferral)
    message_id: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None
    letter: tuple[str, dict[str, Any]] | None = None  # (business day, the letters row)
    call: dict[str, Any] | None = None  # the calls row
    hard_bounce: dict[str, Any] | None = None  # the bounce event's detail

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


__all__ = ["Outcome"]
