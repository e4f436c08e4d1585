"""What a failed attempt at a touch means for the next one.

Three kinds, so that no touch retries forever for a reason that will never change, and
none is dropped for a reason that will pass:

- PERMANENT: the touch can never go out as its data stand (an address that cannot be
  encoded for SMTP or a header, a file name the file system refuses as too long). It
  fails at once, and the lead's track goes on to its next step.
- LASTING: it may pass later, or never (a recipient's mailbox full for days, an error
  dripper does not know). Retried with backoff, as an MTA does, for up to
  GIVE_UP_AFTER of the business clock, then failed.
- PASSING: our side of the delivery is down (the SMTP server unreachable or refusing
  for its own reasons, wrong credentials, a full disk). Retried until it passes, never
  failed: nothing about the touch is wrong.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from dripper.channels.email.transports import SendError
from dripper.states import Reason

GIVE_UP_AFTER = timedelta(days=5)  # the queue lifetime of common MTAs (Postfix, Exim, sendmail)
DETAIL_MAX = 300  # characters of an error message kept in a reason (file names can run to 4 KB)

# File-system errors about the name itself: the same name fails the same way every time.
_BAD_NAME = {errno.ENAMETOOLONG, errno.EILSEQ}

# An SMTP reply: basic code, then maybe an enhanced status code (RFC 3463).
_REPLY = re.compile(r"^(?P<code>[45]\d\d)(?:[ -](?P<cls>[245])\.(?P<subject>\d{1,3})\.(?P<detail>\d{1,3})\b)?")
# A retry of the LASTING kind carries the instant its run of failures began.
_SINCE = re.compile(r" \[retrying since (?P<at>[^\]]+)\]$")


class Failure(Enum):
    PERMANENT = "permanent"
    LASTING = "lasting"
    PASSING = "passing"


def classify(exc: BaseException) -> Failure:
    """The kind of an exception raised while composing, writing or sending a touch (not
    an SMTP answer: see `smtp_reply`)."""
    if isinstance(exc, UnicodeError) and not isinstance(exc, UnicodeDecodeError):
        # Encoding lead data (an address, a header) for a transport that cannot carry it:
        # the same data fail the same way. (Decoding reads something of ours: a file.)
        return Failure.PERMANENT
    if isinstance(exc, OSError):
        return Failure.PERMANENT if exc.errno in _BAD_NAME else Failure.PASSING
    if isinstance(exc, SendError):
        return smtp_reply(exc) if exc.transient else Failure.PERMANENT
    return Failure.LASTING


def smtp_reply(exc: SendError) -> Failure:
    """The kind of a transient SMTP failure. LASTING when the server answered about the
    recipient's mailbox or address (enhanced status 4.1.x or 4.2.x, except 4.1.7 and
    4.1.8, which are about our sender address; or a plain 450, "mailbox unavailable"):
    that may never change, and an MTA gives up on it after days. Anything else (no
    connection, a timeout, refused credentials, 421, 4.3.x system, 4.4.x network, 4.7.x
    policy) is about the server or us: PASSING."""
    found = _REPLY.match(str(exc))
    if exc.code is None or not 400 <= exc.code < 500 or found is None:
        return Failure.PASSING
    if found["cls"] is None:
        return Failure.LASTING if found["code"] == "450" else Failure.PASSING
    subject, detail = int(found["subject"]), int(found["detail"])
    if subject == 2 or (subject == 1 and detail not in (7, 8)):
        return Failure.LASTING
    return Failure.PASSING


def describe(exc: BaseException) -> str:
    """`Type: message`, shortened to DETAIL_MAX characters."""
    return brief(f"{type(exc).__name__}: {exc}")


def brief(text: str) -> str:
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


@dataclass(frozen=True)
class Verdict:
    """What becomes of a touch after a failed attempt: failed now, or retried; and why."""

    fail: bool
    reason: str


def verdict(failure: Failure, prefix: Reason, detail: str, previous: str | None, now: datetime) -> Verdict:
    """The verdict on a failed attempt at `now` (business clock). `prefix` names what
    failed (`retry`, `smtp_retry`), `detail` how; `previous` is the touch's reason before
    the attempt, which tells when a run of LASTING failures began."""
    if failure is Failure.PERMANENT:
        return Verdict(True, Reason.PERMANENT_ERROR.with_detail(detail))
    reason = Reason(prefix).with_detail(detail)
    if failure is Failure.PASSING:
        return Verdict(False, reason)
    since = retrying_since(previous) or now
    if now - since >= GIVE_UP_AFTER:
        return Verdict(
            True, Reason.GAVE_UP.with_detail(f"{reason} (retried since {since.isoformat(timespec='seconds')})")
        )
    return Verdict(False, f"{reason} [retrying since {since.isoformat(timespec='seconds')}]")


def retrying_since(reason: str | None) -> datetime | None:
    """When the run of LASTING failures that `reason` records began; None if it records none."""
    found = _SINCE.search(reason or "")
    if found is None:
        return None
    try:
        return datetime.fromisoformat(found["at"])
    except ValueError:
        return None


__all__ = [
    "DETAIL_MAX",
    "GIVE_UP_AFTER",
    "Failure",
    "Verdict",
    "brief",
    "classify",
    "describe",
    "retrying_since",
    "smtp_reply",
    "verdict",
]
