"""Sending for real: an SMTP server on loopback, retries, hard bounces, outages, crashes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import update

from dripper.clock import FrozenClock
from dripper.store import open_store, touches
from dripper.store.queries import touchrows

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window


def iso(t: datetime) -> str:
    return t.isoformat()


def plan(dripper, email):
    return {t["step"]: t for t in dripper.json("plan", email, "--json")["touches"]}


def test_smtp_delivers_each_touch_once(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    counts = dripper.json("tick", "--at", iso(T0 + timedelta(days=1)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert counts["sent"] == 3
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "ada@lovelace.example",
        "grace@hopper.example",
        "zoe@mueller.example",
    ]
    from sqlalchemy import select

    from dripper.store import touches
    from dripper.tokens import Tokens

    store = open_store(dripper.db_url)
    for m in smtp_sink.messages:
        parsed = message_from_bytes(m.data, policy=policy.default)
        assert parsed["To"].addresses[0].addr_spec == m.rcpt_tos[0]
        # VERP: the envelope sender names the touch, signed.
        assert m.mail_from.startswith("bounces+t") and m.mail_from.endswith("@acme.example")
        touch_id = Tokens("test-secret").read_bounce_address(m.mail_from)
        with store.begin() as conn:
            assert conn.scalar(select(touches.c.message_id).where(touches.c.id == touch_id)) == parsed["Message-ID"]
    store.dispose()
    again = dripper.json("tick", "--at", iso(T0 + timedelta(days=1)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert again["sent"] == 0 and len(smtp_sink.messages) == 3


def test_4xx_is_retried_later(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    smtp_sink.data_reply = "451 4.3.0 Try again later"
    at = T0 + timedelta(days=1)
    counts = dripper.json("tick", "--at", iso(at), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert counts["deferred"] == 3 and counts["sent"] == 0
    thanks = plan(dripper, "ada@lovelace.example")["thanks"]
    assert thanks["state"] == "planned" and thanks["reason"].startswith("smtp_retry: 451")
    assert datetime.fromisoformat(thanks["due"]) > at
    smtp_sink.data_reply = None
    assert dripper.json("tick", "--at", iso(at), "--json", DRIPPER_SMTP_URL=smtp_sink.url)["sent"] == 0
    later = dripper.json("tick", "--at", iso(at + timedelta(minutes=10)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert later["sent"] == 3 and len(smtp_sink.messages) == 3
    assert plan(dripper, "ada@lovelace.example")["thanks"]["attempts"] == 2


def test_5xx_on_the_recipient_is_a_hard_bounce(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    smtp_sink.rcpt_reply["ada@lovelace.example"] = "550 5.1.1 <ada@lovelace.example>: no such user"
    counts = dripper.json("tick", "--at", iso(T0 + timedelta(days=1)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert counts["failed"] == 1 and counts["sent"] == 2
    data = dripper.json("plan", "ada@lovelace.example", "--json")
    assert data["lead"]["status"] == "bounced"
    steps = {t["step"]: t for t in data["touches"]}
    assert steps["thanks"]["state"] == "failed" and "550" in steps["thanks"]["reason"]
    assert (steps["reminder-1"]["state"], steps["reminder-1"]["reason"]) == ("suppressed", "bounced")
    assert any(e["kind"] == "bounced" and e["source"] == "smtp" for e in data["events"])


def test_an_smtp_outage_sends_nothing_and_loses_nothing(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    url = smtp_sink.url
    smtp_sink.stop()
    at = T0 + timedelta(days=1)
    counts = dripper.json("tick", "--at", iso(at), "--json", DRIPPER_SMTP_URL=url)
    assert counts["deferred"] == 3 and counts["sent"] == 0
    assert plan(dripper, "ada@lovelace.example")["thanks"]["reason"].startswith("smtp_retry: connection")
    smtp_sink.start()
    counts = dripper.json("tick", "--at", iso(at + timedelta(minutes=30)), "--json", DRIPPER_SMTP_URL=url)
    assert counts["sent"] == 3 and len(smtp_sink.messages) == 3


def test_a_dead_workers_touches_are_resent_after_the_lease(dripper, smtp_sink):
    """The lease runs on the real clock, whatever instant a tick runs at (`--at`): a dead
    worker's claims wait out 60 s after its last renewal, then any tick takes them again."""
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    at = T0 + timedelta(days=1)
    store = open_store(dripper.db_url)
    renewed = datetime.now(UTC) - timedelta(seconds=30)
    with store.begin() as conn:  # a worker claims two touches, renews them 30 s ago, then dies before sending
        claimed = touchrows.claim(conn, at, renewed, "dead-worker", 2)
    assert len(claimed) == 2
    days_later = iso(at + timedelta(days=2))  # the business clock has nothing to do with it
    soon = dripper.json("tick", "--at", days_later, "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert soon["sent"] == 1 and soon["recovered"] == 0  # the lease still holds
    with store.begin() as conn:  # the real clock goes on: its last renewal is now 61 s ago
        conn.execute(
            update(touches)
            .where(touches.c.claimed_by == "dead-worker")
            .values(claimed_at=datetime.now(UTC) - timedelta(seconds=61))
        )
    store.dispose()
    later = dripper.json("tick", "--at", days_later, "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert later["recovered"] == 2 and later["sent"] == 2
    assert len(smtp_sink.messages) == 3
    resent = [
        t
        for e in ("ada@lovelace.example", "zoe@mueller.example", "grace@hopper.example")
        for t in [plan(dripper, e)["thanks"]]
        if t["reason"] == "resent_after_interruption"
    ]
    assert len(resent) == 2 and all(t["state"] == "sent" for t in resent)
    ids = {message_from_bytes(m.data, policy=policy.default)["Message-ID"] for m in smtp_sink.messages}
    assert {t["message_id"] for t in resent} <= ids


def test_in_flight_sends_are_bounded(dripper, smtp_sink):
    """At most --max-in-flight messages are at the server at once: that bounds what a
    crash can send twice. Claimed-but-not-started touches are only ever sent once."""
    lines = ["email,stage"] + [f"lead{i}@bulk.example,supplier_research" for i in range(40)]
    (dripper.root / "bulk.csv").write_text("\n".join(lines) + "\n")
    dripper("leads", "import", "bulk.csv", "--at", iso(T0))
    at_server = peak_at_server = peak_sending = 0
    store = open_store(dripper.db_url)
    original = smtp_sink.handler.handle_DATA

    async def watching(server, session, envelope):
        nonlocal at_server, peak_at_server, peak_sending
        from sqlalchemy import func, select

        from dripper.store import touches

        at_server += 1
        peak_at_server = max(peak_at_server, at_server)
        with store.engine.connect() as conn:
            peak_sending = max(peak_sending, conn.scalar(select(func.count()).where(touches.c.state == "sending")))
        await asyncio.sleep(0.01)
        at_server -= 1
        return await original(server, session, envelope)

    smtp_sink.handler.handle_DATA = watching
    counts = dripper.json(
        "tick", "--at", iso(T0 + timedelta(days=1)), "--json", "--max-in-flight", "3", DRIPPER_SMTP_URL=smtp_sink.url
    )
    store.dispose()
    assert counts["sent"] == 40 and len(smtp_sink.messages) == 40
    assert 2 <= peak_at_server <= 3
    from dripper.sending.tick import CLAIM_BATCH

    assert peak_sending <= CLAIM_BATCH + 3  # one claimed batch plus what is still being recorded


def test_frozen_clock_moves_only_when_told():
    clock = FrozenClock(T0)
    clock.advance(timedelta(days=180))
    assert clock.now() == T0 + timedelta(days=180)


def test_connections_dropped_mid_message_lose_and_duplicate_nothing(dripper, smtp_sink):
    """The server hangs up during DATA for the first messages: those touches are retried
    and each lead receives its message exactly once."""
    lines = ["email,stage"] + [f"lead{i}@drop.example,supplier_research" for i in range(12)]
    (dripper.root / "drop.csv").write_text("\n".join(lines) + "\n")
    dripper("leads", "import", "drop.csv", "--at", iso(T0))
    original = smtp_sink.handler.handle_DATA
    dropped = 0

    async def hang_up_sometimes(server, session, envelope):
        nonlocal dropped
        if dropped < 5:
            dropped += 1
            server.transport.close()  # no reply: the client cannot know whether it arrived
            return "421 closing"
        return await original(server, session, envelope)

    smtp_sink.handler.handle_DATA = hang_up_sometimes
    at = T0 + timedelta(days=1)
    first = dripper.json("tick", "--at", iso(at), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert first["deferred"] == 5 and first["sent"] == 7
    later = dripper.json("tick", "--at", iso(at + timedelta(minutes=10)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert later["sent"] == 5
    received = sorted(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert received == sorted(f"lead{i}@drop.example" for i in range(12))  # each once


# --- no touch retries forever for a reason that will never change (issue 15) --------------

# Addresses an older version let in (and the CSV import may now refuse): written straight
# into the database. A non-ASCII local part cannot go into a header or an SMTP command
# without SMTPUTF8; a local part of 300 octets makes a file name longer than the file
# system allows (whatever else dripper puts into the name).
UNSENDABLE = {"ada@lovelace.example": "jörg@lovelace.example", "zoe@mueller.example": "z" * 300 + "@mueller.example"}


def set_emails(db_url: str, new: dict[str, str]) -> list[int]:
    """Give leads these addresses in the database itself; their ids."""
    from dripper.store import leads

    store = open_store(db_url)
    try:
        with store.begin() as conn:
            return [
                conn.execute(
                    update(leads).where(leads.c.email == old).values(email=email).returning(leads.c.id)
                ).scalar_one()
                for old, email in new.items()
            ]
    finally:
        store.dispose()


def steps_of(db_url: str, lead_id: int) -> dict[str, dict]:
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            return {t["step_id"]: t for t in touchrows.for_lead(conn, lead_id)}
    finally:
        store.dispose()


@pytest.mark.parametrize("transport", ["outbox", "smtp"])
def test_an_address_that_can_never_be_sent_fails_at_once_and_the_track_goes_on(dripper, smtp_sink, transport):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    ids = set_emails(dripper.db_url, UNSENDABLE)
    env = {"DRIPPER_SMTP_URL": smtp_sink.url} if transport == "smtp" else {}
    at = T0 + timedelta(days=1)
    counts = dripper.json("tick", "--at", iso(at), "--json", **env)
    assert counts["deferred"] == 0 and counts["sent"] + counts["failed"] == 3, counts  # nothing left to retry
    for lead_id in ids:
        steps = steps_of(dripper.db_url, lead_id)
        thanks = steps["thanks"]
        assert thanks["state"] in ("sent", "failed"), thanks
        if thanks["state"] == "failed":
            assert thanks["reason"].startswith("permanent_error: "), thanks["reason"]
            assert len(thanks["reason"]) < 400  # readable, even when the error quotes a 4 KB file name
        assert steps["reminder-1"]["state"] == "planned"  # the track goes on, as after any failure
    jorg = steps_of(dripper.db_url, ids[0])["thanks"]
    if jorg["state"] == "failed":  # unless this version sends it with SMTPUTF8
        assert "UnicodeEncodeError" in jorg["reason"]
    assert dripper.json("tick", "--at", iso(at + timedelta(hours=7)), "--json", **env)["failed"] == 0  # once


def test_a_recipient_4xx_is_retried_for_five_days_then_the_touch_fails_and_the_track_goes_on(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    smtp_sink.rcpt_reply["ada@lovelace.example"] = "452 4.2.2 <ada@lovelace.example>: mailbox full"
    first = T0 + timedelta(days=1)
    counts = dripper.json("tick", "--at", iso(first), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert counts["sent"] == 2 and counts["deferred"] == 1
    for day in range(1, 5):  # retried with backoff (at most 6 h apart); a tick a day catches each up
        at = first + timedelta(days=day)
        counts = dripper.json("tick", "--at", iso(at), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
        assert counts["deferred"] == 1 and counts["failed"] == 0, (day, counts)
        thanks = plan(dripper, "ada@lovelace.example")["thanks"]
        assert thanks["state"] == "planned" and thanks["reason"].startswith("smtp_retry: 452 4.2.2")
    # The weekend's ticks (outside the send window) kept the retry's reason and its start;
    # Monday's attempt, six days after the first, gives up.
    counts = dripper.json("tick", "--at", iso(first + timedelta(days=6)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert counts["failed"] == 1 and counts["deferred"] == 0
    data = dripper.json("plan", "ada@lovelace.example", "--json")
    steps = {t["step"]: t for t in data["touches"]}
    assert steps["thanks"]["state"] == "failed"
    assert steps["thanks"]["reason"].startswith("gave_up: smtp_retry: 452 4.2.2")
    assert steps["reminder-1"]["state"] == "planned"  # the track goes on
    assert data["lead"]["status"] != "bounced"  # a full mailbox is no hard bounce


def test_an_smtp_server_down_or_refusing_for_a_week_never_fails_a_touch(dripper, smtp_sink):
    """Nothing about the touch is wrong when our server is unreachable, or answers 4xx
    about itself: it waits, however long, and goes out once the server is back."""
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    url = smtp_sink.url
    first = T0 + timedelta(days=1)
    smtp_sink.stop()
    for day in range(4):
        counts = dripper.json("tick", "--at", iso(first + timedelta(days=day)), "--json", DRIPPER_SMTP_URL=url)
        assert counts["deferred"] == 3 and counts["failed"] == 0, (day, counts)
    smtp_sink.start()
    smtp_sink.data_reply = "451 4.3.0 Mail system busy, try later"
    for day in (4, 5, 6, 7, 8):  # Saturday and Sunday only defer them to Monday (the send window)
        counts = dripper.json("tick", "--at", iso(first + timedelta(days=day)), "--json", DRIPPER_SMTP_URL=url)
        assert counts["deferred"] == (0 if day == 5 else 3) and counts["failed"] == 0, (day, counts)
    smtp_sink.data_reply = None
    counts = dripper.json("tick", "--at", iso(first + timedelta(days=9)), "--json", DRIPPER_SMTP_URL=url)
    assert counts["sent"] == 3 and len(smtp_sink.messages) == 3
