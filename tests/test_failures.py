"""The retry policy (dripper.failures): what can never succeed fails at once, what may
pass later is retried, and what may never pass is given up after five days."""

from __future__ import annotations

import errno
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dripper.channels.email.transports import SendError
from dripper.channels.failures import (
    GIVE_UP_AFTER,
    Failure,
    classify,
    describe,
    retrying_since,
    smtp_reply,
    verdict,
)

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except BaseException as exc:
        return exc
    raise AssertionError("it did not raise")


def test_errors_from_the_data_themselves_are_permanent(tmp_path: Path) -> None:
    assert classify(raised(lambda: "jörg@example.com".encode("ascii"))) is Failure.PERMANENT
    assert classify(raised(lambda: ("ü" * 70 + ".example").encode("idna"))) is Failure.PERMANENT  # label too long
    too_long = raised(lambda: open(tmp_path / ("z" * 300 + ".eml"), "wb"))
    assert isinstance(too_long, OSError) and too_long.errno == errno.ENAMETOOLONG
    assert classify(too_long) is Failure.PERMANENT


def test_errors_of_our_side_are_retried_until_they_pass(tmp_path: Path) -> None:
    assert classify(OSError(errno.ENOSPC, "No space left on device")) is Failure.PASSING
    assert classify(raised(lambda: open(tmp_path / "missing" / "x.eml", "wb"))) is Failure.PASSING
    assert classify(TimeoutError()) is Failure.PASSING
    assert classify(ConnectionRefusedError()) is Failure.PASSING


def test_unknown_errors_are_retried_for_a_while() -> None:
    assert classify(raised(lambda: b"\xff".decode("utf-8"))) is Failure.LASTING  # reading something of ours
    assert classify(KeyError("x")) is Failure.LASTING
    assert classify(RuntimeError("render worker died")) is Failure.LASTING


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("452 4.2.2 <a@b.example>: mailbox full", Failure.LASTING),
        ("450 4.2.1 receiving mail at a rate that prevents additional messages", Failure.LASTING),
        ("450 4.1.1 <a@b.example>: Recipient address rejected: unverified address", Failure.LASTING),
        ("450 Requested mail action not taken: mailbox unavailable", Failure.LASTING),
        ("451 4.1.8 <bounces@acme.example>: Sender address rejected: Domain not found", Failure.PASSING),
        ("421 4.3.2 Service shutting down", Failure.PASSING),
        ("451 4.3.0 Mail system busy", Failure.PASSING),
        ("452 4.3.1 Insufficient system storage", Failure.PASSING),
        ("450 4.7.1 Client host rejected: cannot find your hostname", Failure.PASSING),
        ("451 Local error in processing", Failure.PASSING),
    ],
)
def test_smtp_4xx_about_the_recipient_are_retried_for_a_while_the_rest_until_they_pass(
    reply: str, kind: Failure
) -> None:
    assert smtp_reply(SendError(reply, transient=True, code=int(reply[:3]))) is kind


def test_no_connection_and_refused_credentials_are_never_given_up() -> None:
    assert smtp_reply(SendError("connection: [Errno 111] Connect call failed", transient=True)) is Failure.PASSING
    assert smtp_reply(SendError("auth: 535 5.7.8 bad credentials", transient=True, code=535)) is Failure.PASSING
    assert smtp_reply(SendError("auth: 454 4.7.0 try later", transient=True, code=454)) is Failure.PASSING


def test_a_run_of_lasting_failures_is_given_up_after_five_days_from_its_first() -> None:
    first = verdict(Failure.LASTING, "smtp_retry", "452 4.2.2 full", None, T)
    assert not first.fail and retrying_since(first.reason) == T
    assert first.reason.startswith("smtp_retry: 452 4.2.2 full")
    later = verdict(Failure.LASTING, "retry", "KeyError: 'x'", first.reason, T + GIVE_UP_AFTER - timedelta(minutes=1))
    assert not later.fail and retrying_since(later.reason) == T  # the run goes on, from its first failure
    last = verdict(Failure.LASTING, "smtp_retry", "452 4.2.2 full", later.reason, T + GIVE_UP_AFTER)
    assert last.fail and last.reason.startswith("gave_up: smtp_retry: 452 4.2.2 full")
    # Another reason in between (an outage, a pause) starts a new run.
    fresh = verdict(
        Failure.LASTING, "smtp_retry", "452 4.2.2 full", "smtp_retry: connection: refused", T + timedelta(days=9)
    )
    assert not fresh.fail and retrying_since(fresh.reason) == T + timedelta(days=9)


def test_passing_failures_are_never_given_up_and_permanent_ones_at_once() -> None:
    week = verdict(
        Failure.PASSING, "smtp_retry", "connection: refused", "smtp_retry: connection: refused", T + timedelta(days=30)
    )
    assert not week.fail and week.reason == "smtp_retry: connection: refused"
    now = verdict(Failure.PERMANENT, "retry", describe(UnicodeEncodeError("ascii", "jörg", 1, 2, "no")), None, T)
    assert now.fail and now.reason.startswith("permanent_error: UnicodeEncodeError")


def test_a_long_message_is_shortened_in_the_reason() -> None:
    assert len(describe(OSError(errno.ENAMETOOLONG, "File name too long", "z" * 4000))) <= 300
