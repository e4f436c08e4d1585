"""The vocabulary of the store: touch states, reasons, channels, event kinds, inbound kinds.

Every value is a StrEnum member whose value is the string stored in the database and
shown in `plan`/`report` output, so a member compares equal to (and serialises as) the
string it replaces: no data migration, no change to any JSON.

A touch moves `planned` -> `sending` -> `sent` | `failed` | `suppressed` | `skipped`, and
every state but `sent` carries a reason. Some reasons stand alone (`missed`); others are
a prefix followed by what went wrong (`smtp_retry: 451 4.3.0 try later`): that detail
is `Reason.parse`'s second part.

`python -m dripper.states` prints the reference table of reasons (docs/reference/reasons.md).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from enum import StrEnum


class TouchState(StrEnum):
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"

    @property
    def is_pending(self) -> bool:
        """Not yet decided: a tick may still send it."""
        return self in PENDING

    @property
    def is_final(self) -> bool:
        return self in FINAL

    def can_become(self, other: TouchState) -> bool:
        """Whether a touch in this state may be moved to `other`."""
        return other in TRANSITIONS[self]


PENDING: frozenset[TouchState] = frozenset({TouchState.PLANNED, TouchState.SENDING})
FINAL: frozenset[TouchState] = frozenset(set(TouchState) - PENDING)
# Ordered as the store, the report and the dashboard list them.
STATES: tuple[TouchState, ...] = tuple(TouchState)

# Where each state may go. A planned touch is claimed (sending) or closed before it is
# sent (suppressed, skipped). A claim ends in an outcome, or goes back to planned (a retry,
# a deferral, a release, a lease taken over). A sent touch goes back to planned only when
# a soft bounce says it did not arrive. Failed, suppressed and skipped rows are reopened
# by re-planning (a track that comes back to them), which rewrites them as planned.
TRANSITIONS: dict[TouchState, frozenset[TouchState]] = {
    TouchState.PLANNED: frozenset({TouchState.SENDING, TouchState.SUPPRESSED, TouchState.SKIPPED}),
    TouchState.SENDING: frozenset(
        {
            TouchState.PLANNED,
            TouchState.SENT,
            TouchState.FAILED,
            TouchState.SUPPRESSED,
            TouchState.SKIPPED,
        }
    ),
    TouchState.SENT: frozenset({TouchState.PLANNED}),
    TouchState.FAILED: frozenset({TouchState.PLANNED}),
    TouchState.SUPPRESSED: frozenset({TouchState.PLANNED}),
    TouchState.SKIPPED: frozenset({TouchState.PLANNED}),
}


class Reason(StrEnum):
    """Why a touch is in its state. The value is what is stored (alone, or as the prefix
    of `value: detail`); `meaning` is the one line the docs and the dashboard show."""

    # the lead stopped all mail, or the sequence that was running
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    CONVERTED = "converted"
    REPLIED = "replied"
    OPTED_OUT = "opted_out"
    STOPPED = "stopped"
    # closed by dripper itself: planned again when the track comes back to them
    STAGE_CHANGED = "stage_changed"
    CAMPAIGN_CHANGED = "campaign_changed"
    STEP_REMOVED = "step_removed"
    # skipped, the track goes on
    MISSED = "missed"
    NO_POSTAL_ADDRESS = "no_postal_address"
    CONDITION = "condition"
    # sent
    RESENT_AFTER_INTERRUPTION = "resent_after_interruption"
    CALL_TASK = "call_task"
    # followed by a detail
    SMTP_RETRY = "smtp_retry"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    OUTSIDE_WINDOW = "outside_window"
    LETTERS_UNAVAILABLE = "letters_unavailable"
    HELD = "held"
    PAUSED = "paused"
    SOFT_BOUNCE = "soft_bounce"
    SMTP_ERROR = "smtp_error"
    RENDER_ERROR = "render_error"
    PERMANENT_ERROR = "permanent_error"
    GAVE_UP = "gave_up"

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]

    @property
    def states(self) -> tuple[TouchState, ...]:
        """The states a touch carries this reason in."""
        return _STATES_OF[self]

    @property
    def has_detail(self) -> bool:
        """Stored with what went wrong after it (`smtp_error: 550 …`)."""
        return self in _DETAILED

    @property
    def separator(self) -> str:
        # `paused until 2026-05-01` reads as a sentence; the others are `prefix: detail`.
        return " " if self is Reason.PAUSED else ": "

    def with_detail(self, detail: str | None) -> str:
        """The stored text: this reason, followed by `detail` when there is one."""
        return self.value if detail is None else f"{self.value}{self.separator}{detail}"

    @classmethod
    def parse(cls, text: str | None) -> tuple[Reason | None, str | None]:
        """A stored reason as (the Reason, its detail). (None, text) when the text names
        no known reason: it is kept whole, never lost."""
        if not text:
            return None, None
        if text in _BY_VALUE:
            return _BY_VALUE[text], None
        for reason in _DETAILED:
            head = reason.value + reason.separator
            if text.startswith(head):
                return reason, text[len(head) :]
        return None, text

    @classmethod
    def meaning_of(cls, text: str | None) -> str | None:
        """The meaning of a stored reason (alone or with its detail); None if unknown."""
        reason, _ = cls.parse(text)
        return reason.meaning if reason is not None else None


_BY_VALUE: dict[str, Reason] = {r.value: r for r in Reason}


def reason_text(reason: str | None, detail: str | None) -> str | None:
    """A stored reason and its detail joined, as `plan` and `report` show them."""
    if detail is None or reason is None:
        return reason
    known = _BY_VALUE.get(reason)
    return known.with_detail(detail) if known is not None else f"{reason}: {detail}"


_MEANINGS: dict[Reason, str] = {
    Reason.UNSUBSCRIBED: "the lead unsubscribed: no more mail from any campaign",
    Reason.BOUNCED: "the address bounced: no more mail",
    Reason.COMPLAINED: "the lead reported a message as spam: no more mail",
    Reason.CONVERTED: "the lead converted: this sequence stopped",
    Reason.REPLIED: "the lead replied: this sequence stopped",
    Reason.OPTED_OUT: "the lead stopped this campaign on the preference page (or on a call)",
    Reason.STOPPED: "an operator stopped every campaign for the lead (`dripper leads stop`; `resume` undoes it)",
    Reason.STAGE_CHANGED: "the lead moved to another stage, whose track started then",
    Reason.CAMPAIGN_CHANGED: "a re-import moved the lead to another campaign",
    Reason.STEP_REMOVED: "the step was deleted from campaigns.yaml",
    Reason.MISSED: "more than a day overdue when its turn came: skipped, not sent late",
    Reason.NO_POSTAL_ADDRESS: "a letter, and the lead's postal address is incomplete",
    Reason.CONDITION: "the step's `when:` condition was false for this lead when the touch fell due",
    Reason.RESENT_AFTER_INTERRUPTION: "a worker died with it in flight: sent again with the same Message-ID",
    Reason.CALL_TASK: "a call task for the sales team (see Calls)",
    Reason.SMTP_RETRY: "the SMTP server asked to try again later",
    Reason.RETRY: "the touch could not be processed on our side (e.g. a full disk); it is tried again later",
    Reason.RATE_LIMITED: "a sending limit was reached; due again when its window ends",
    Reason.OUTSIDE_WINDOW: "the tick ran outside the step's send window (e.g. the first tick after a pause): "
    "due again when the window next opens on the lead's own clock (holidays included)",
    Reason.LETTERS_UNAVAILABLE: "this machine cannot print letters yet (Pango is missing: `dripper check` says "
    "what to install); the letter waits and goes out once it is installed",
    Reason.HELD: "an out-of-office reply: held until after the lead's return",
    Reason.PAUSED: "the lead paused its mail on the preference page: due again when the pause ends",
    Reason.SOFT_BOUNCE: "a soft bounce said it did not arrive: sent again later",
    Reason.SMTP_ERROR: "the SMTP server refused it for good",
    Reason.RENDER_ERROR: "a template failed for this lead",
    Reason.PERMANENT_ERROR: "the lead's data cannot be sent (e.g. an address SMTP cannot carry)",
    Reason.GAVE_UP: "retried for days without success: given up, as an MTA does",
}

_SUPPRESSED = (TouchState.SUPPRESSED,)
_SKIPPED = (TouchState.SKIPPED,)
_WAITING = (TouchState.PLANNED,)
_FAILED = (TouchState.FAILED,)
_STATES_OF: dict[Reason, tuple[TouchState, ...]] = {
    Reason.UNSUBSCRIBED: _SUPPRESSED,
    Reason.BOUNCED: _SUPPRESSED,
    Reason.COMPLAINED: _SUPPRESSED,
    Reason.CONVERTED: _SUPPRESSED,
    Reason.REPLIED: _SUPPRESSED,
    Reason.OPTED_OUT: _SUPPRESSED,
    Reason.STOPPED: _SUPPRESSED,
    Reason.STAGE_CHANGED: _SKIPPED,
    Reason.CAMPAIGN_CHANGED: _SKIPPED,
    Reason.STEP_REMOVED: _SKIPPED,
    Reason.MISSED: _SKIPPED,
    Reason.NO_POSTAL_ADDRESS: _SKIPPED,
    Reason.CONDITION: _SKIPPED,
    # taken back after the lease, then sent with the reason kept
    Reason.RESENT_AFTER_INTERRUPTION: (TouchState.PLANNED, TouchState.SENT),
    Reason.CALL_TASK: (TouchState.SENT,),
    Reason.SMTP_RETRY: _WAITING,
    Reason.RETRY: _WAITING,
    Reason.RATE_LIMITED: _WAITING,
    Reason.OUTSIDE_WINDOW: _WAITING,
    Reason.LETTERS_UNAVAILABLE: _WAITING,
    Reason.HELD: _WAITING,
    Reason.PAUSED: _WAITING,
    Reason.SOFT_BOUNCE: _WAITING,
    Reason.SMTP_ERROR: _FAILED,
    Reason.RENDER_ERROR: _FAILED,
    Reason.PERMANENT_ERROR: _FAILED,
    Reason.GAVE_UP: _FAILED,
}

_DETAILED: frozenset[Reason] = frozenset(
    {
        Reason.SMTP_RETRY,
        Reason.RETRY,
        Reason.RATE_LIMITED,
        Reason.OUTSIDE_WINDOW,
        Reason.LETTERS_UNAVAILABLE,
        Reason.HELD,
        Reason.PAUSED,
        Reason.SOFT_BOUNCE,
        Reason.SMTP_ERROR,
        Reason.RENDER_ERROR,
        Reason.PERMANENT_ERROR,
        Reason.GAVE_UP,
    }
)

# Rows closed by dripper itself (not by anything the lead did): planned again when the
# track comes back to them.
REPLANNABLE: frozenset[Reason] = frozenset({Reason.STAGE_CHANGED, Reason.CAMPAIGN_CHANGED, Reason.STEP_REMOVED})


class Channel(StrEnum):
    EMAIL = "email"
    LETTER = "letter"
    CALL = "call"


# Every channel, in the enum's order: charts give each its colour by it, and metrics export
# each one even at 0.
CHANNELS: tuple[str, ...] = tuple(channel.value for channel in Channel)


class EventKind(StrEnum):
    """What the events table records about a lead."""

    CONVERTED = "converted"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    STAGE = "stage"
    OPTED_OUT = "opted_out"
    PAUSED = "paused"
    CALLED = "called"
    AUTO_REPLY = "auto_reply"
    SOFT_BOUNCE = "soft_bounce"
    UNKNOWN = "unknown"
    CLICKED = "clicked"  # a person followed a tracked link (`tracking: {clicks: true}`)
    OPENED = "opened"  # the open pixel of a message loaded, first time (`tracking: {opens: true}`)
    STOPPED = "stopped"  # an operator stopped the lead (`dripper leads stop`)
    RESUMED = "resumed"  # an operator lifted a stop or a pause (`dripper leads resume`)
    FORGOTTEN = "forgotten"  # the lead's personal data was erased (`dripper leads forget`); nothing else is kept


# In a lead's `opted_out` list: an operator stopped it from every campaign, also ones
# added later (`dripper leads stop`; `resume` takes it out).
EVERY_CAMPAIGN = "*"

# The kinds `dripper event EMAIL KIND` accepts, in the order the usage lists them.
USER_EVENTS: tuple[EventKind, ...] = (
    EventKind.CONVERTED,
    EventKind.REPLIED,
    EventKind.UNSUBSCRIBED,
    EventKind.BOUNCED,
    EventKind.COMPLAINED,
    EventKind.STAGE,
)


class InboundKind(StrEnum):
    """What an inbound message is (`ingest --json`'s `kind`)."""

    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE_HARD = "bounce_hard"
    BOUNCE_SOFT = "bounce_soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    UNKNOWN = "unknown"


def reasons_markdown(reasons: Iterable[Reason] = Reason) -> str:
    """The reference page of reasons: a markdown table, one row per reason."""
    lines = [
        "# Touch reasons",
        "",
        "Every touch state but `sent` carries a reason (`dripper plan` shows it). A reason",
        "shown with `…` is followed by what went wrong, e.g. `smtp_retry: 451 4.3.0 try again later`.",
        "",
        "This page is generated by `python -m dripper.states`; a test fails when they differ.",
        "",
        "| reason | state | meaning |",
        "|---|---|---|",
    ]
    for reason in reasons:
        shown = f"`{reason.value}{reason.separator.rstrip()} …`" if reason.has_detail else f"`{reason.value}`"
        meaning = reason.meaning.replace("|", "\\|")
        states = ", ".join(f"`{state.value}`" for state in reason.states)
        lines.append(f"| {shown} | {states} | {meaning} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(reasons_markdown())


if __name__ == "__main__":
    main()
