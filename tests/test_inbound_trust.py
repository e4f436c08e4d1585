"""Inbound mail changes a lead only on proof that it concerns mail we sent, and one bad
message never stops the mailbox (issue 15, sections 1 and 2).

Every forged message here is one an outsider can write without ever receiving our mail:
before keyed Message-IDs and proof checks, each of them stopped or paused a real lead.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import Dripper, ImapServer
from sqlalchemy import create_engine, select, update
from test_inbound import authenticated, trust_our_mail_server

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
AT = T0 + timedelta(days=2)
CAMPAIGN = "literature-follow-up"


@pytest.fixture
def sent(dripper: Dripper) -> Dripper:
    """Three leads, each sent its first touch (thanks)."""
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    return dripper


def ingest(dripper: Dripper, tmp: Path, *messages: str | bytes, ok: int = 0, at: datetime = AT) -> list[dict]:
    files = []
    for index, message in enumerate(messages):
        path = tmp / f"in-{len(list(tmp.glob('in-*')))}-{index}.eml"
        path.write_bytes(message.encode() if isinstance(message, str) else message)
        files.append(str(path))
    out = dripper("ingest", *files, "--json", "--at", at.isoformat(), ok=ok)
    return [json.loads(line) for line in out.stdout.splitlines()]


def status(dripper: Dripper, email: str) -> str:
    return dripper.json("plan", email, "--json")["lead"]["status"]


def sent_message(email: str):
    return message_from_bytes(next(Path("outbox").glob(f"*_{email}.eml")).read_bytes(), policy=policy.default)


def matched(result: dict) -> tuple[str, str | None, str | None]:
    """What an ingested message was taken for, the lead it acted on and the proof it was matched by."""
    return result["kind"], result["lead"], result["matched_by"]


def suspected(result: dict) -> tuple[str, str | None, str | None]:
    """What an ingested message was taken for, what it claimed to be and the lead it named."""
    return result["kind"], result["classified_as"], result["suspected_lead"]


def unknown_events(dripper: Dripper) -> list[dict]:
    from dripper.store.tables import events

    engine = create_engine(dripper.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(events.c.lead_id, events.c.detail).where(events.c.kind == "unknown"))
            return [{"lead_id": r.lead_id, **(r.detail or {})} for r in rows]
    finally:
        engine.dispose()


# --- forged messages ---------------------------------------------------------------------------


def forged_dsn(victim: str, status_code: str = "5.1.1", message_id: str = "<dsn-x@attacker.example>") -> str:
    return f"""From: Mail Delivery System <MAILER-DAEMON@attacker.example>
To: sales@acme.example
Subject: Undelivered Mail Returned to Sender
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message to {victim} could not be delivered: 550 {status_code} User unknown.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; attacker.example

Final-Recipient: rfc822; {victim}
Action: failed
Status: {status_code}
Diagnostic-Code: smtp; 550 {status_code} <{victim}>: Recipient address rejected: User unknown

--B--
"""


def forged_arf(victim: str) -> str:
    return f"""From: <feedbackloop@attacker.example>
To: <fbl@acme.example>
Subject: FW: Your valves information pack
Message-ID: <arf-x@attacker.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B"

--B
Content-Type: text/plain

This is an email abuse report.

--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: <{victim}>

--B--
"""


def message_from(
    sender: str, subject: str, body: str, *, in_reply_to: str | None = None, message_id: str = "<m-1@outside.example>"
) -> str:
    thread = f"In-Reply-To: {in_reply_to}\n" if in_reply_to else ""
    return f"From: {sender}\nTo: sales@acme.example\nSubject: {subject}\nMessage-ID: {message_id}\n{thread}\n{body}\n"


def computable_message_id(email: str, step: str = "thanks") -> str:
    """What versions before keyed Message-IDs sent: anyone can compute it (the campaign and
    step are in every message's Feedback-ID header)."""
    digest = hashlib.sha256(f"{email}\0{CAMPAIGN}\0{step}".encode()).hexdigest()[:32]
    return f"<{digest}.drip@acme.example>"


def test_a_forged_bounce_naming_a_lead_changes_nothing(sent: Dripper, tmp_path: Path) -> None:
    [result] = ingest(sent, tmp_path, forged_dsn("ada@lovelace.example"))
    assert matched(result) == ("unknown", None, None)
    assert (result["classified_as"], result["suspected_lead"]) == ("bounce_hard", "ada@lovelace.example")
    assert "unverified bounce hard" in result["reason"] and "without our VERP address" in result["reason"]
    assert status(sent, "ada@lovelace.example") == "active"
    # kept for a person to see, and never lost
    [event] = unknown_events(sent)
    assert event["lead_id"] is None and event["suspected_lead"] == "ada@lovelace.example"
    assert event["classified_as"] == "bounce_hard" and event["unverified"]


def test_a_forged_complaint_naming_a_lead_changes_nothing(sent: Dripper, tmp_path: Path) -> None:
    [result] = ingest(sent, tmp_path, forged_arf("zoe@mueller.example"))
    assert suspected(result) == ("unknown", "complaint", "zoe@mueller.example")
    assert status(sent, "zoe@mueller.example") == "active"


def test_an_opt_out_report_needs_proof_like_a_complaint(sent: Dripper, tmp_path: Path) -> None:
    forged = forged_arf("grace@hopper.example").replace("Feedback-Type: abuse", "Feedback-Type: opt-out")
    ours = sent_message("grace@hopper.example")["Message-ID"]
    real = forged.replace("<arf-x@attacker.example>", "<arf-y@isp.example>").replace(
        "--B--", (f"--B\nContent-Type: text/rfc822-headers\n\nTo: grace@hopper.example\nMessage-ID: {ours}\n\n--B--")
    )
    first, second = ingest(sent, tmp_path, forged, real)
    assert suspected(first) == ("unknown", "unsubscribe", "grace@hopper.example")
    assert matched(second) == ("unsubscribe", "grace@hopper.example", "in_reply_to")
    assert status(sent, "grace@hopper.example") == "unsubscribed"


def test_a_forged_soft_bounce_sends_nothing_again(sent: Dripper, tmp_path: Path) -> None:
    forged = [forged_dsn("zoe@mueller.example", "5.2.2", f"<soft-{i}@attacker.example>") for i in range(3)]
    results = ingest(sent, tmp_path, *forged)
    assert {(r["kind"], r["classified_as"]) for r in results} == {("unknown", "bounce_soft")}
    plan = sent.json("plan", "zoe@mueller.example", "--json")
    assert plan["lead"]["status"] == "active"  # three soft bounces would have made a hard one
    thanks = next(t for t in plan["touches"] if t["step"] == "thanks")
    assert thanks["state"] == "sent" and thanks["reason"] is None  # not queued to go out again
    assert not [e for e in plan["events"] if e["kind"] == "soft_bounce"]


@pytest.mark.parametrize(
    ("subject", "body", "classified"),
    [
        ("Re: Your valves information pack", "Thanks, we bought elsewhere.", "reply"),
        ("Re: Your valves information pack", "Please unsubscribe me.", "unsubscribe"),
    ],
)
def test_a_computable_message_id_proves_nothing(
    sent: Dripper, tmp_path: Path, subject: str, body: str, classified: str
) -> None:
    forged = message_from(
        "Mallory <mallory@outside.example>", subject, body, in_reply_to=computable_message_id("ada@lovelace.example")
    )
    [result] = ingest(sent, tmp_path, forged)
    assert (result["kind"], result["lead"], result["classified_as"]) == ("unknown", None, classified)
    assert status(sent, "ada@lovelace.example") == "active"


def test_a_message_id_sent_by_an_older_version_is_not_proof(sent: Dripper, tmp_path: Path) -> None:
    """Mail already sent with a computable Message-ID: a message naming it is kept, not applied."""
    from dripper.store.tables import touches

    legacy = computable_message_id("ada@lovelace.example")
    engine = create_engine(sent.db_url)
    with engine.begin() as conn:
        conn.execute(
            update(touches)
            .where(touches.c.step_id == "thanks", touches.c.state == "sent", touches.c.lead_id == 1)
            .values(message_id=legacy)
        )
    engine.dispose()
    [result] = ingest(
        sent, tmp_path, message_from("Ada <ada@lovelace.example>", "Re: pack", "Stop, please.", in_reply_to=legacy)
    )
    assert (result["kind"], result["suspected_lead"]) == ("unknown", "ada@lovelace.example")
    assert "anyone can compute" in result["reason"]
    assert status(sent, "ada@lovelace.example") == "active"


def test_a_spoofed_sender_asking_to_be_removed_changes_nothing(sent: Dripper, tmp_path: Path) -> None:
    [result] = ingest(sent, tmp_path, message_from("Grace Hopper <grace@hopper.example>", "unsubscribe", "Remove me."))
    assert suspected(result) == ("unknown", "unsubscribe", "grace@hopper.example")
    assert status(sent, "grace@hopper.example") == "active"


def test_our_message_id_about_another_recipient_proves_nothing(sent: Dripper, tmp_path: Path) -> None:
    """A report that carries a message we sent to Ada but says Zoë's address bounced."""
    ours = sent_message("ada@lovelace.example")["Message-ID"]
    report = forged_dsn("zoe@mueller.example").replace(
        "--B--",
        (
            "--B\nContent-Type: text/rfc822-headers\n\nFrom: Acme Sales <sales@acme.example>\n"
            f"To: Ada <ada@lovelace.example>\nMessage-ID: {ours}\n\n--B--"
        ),
    )
    [result] = ingest(sent, tmp_path, report)
    assert result["kind"] == "unknown" and "but about zoe@mueller.example" in result["reason"]
    assert status(sent, "ada@lovelace.example") == status(sent, "zoe@mueller.example") == "active"


# --- what does prove it ------------------------------------------------------------------------


def test_a_real_bounce_carrying_our_message_id_is_applied(sent: Dripper, tmp_path: Path) -> None:
    ours = sent_message("ada@lovelace.example")["Message-ID"]
    report = forged_dsn("ada@lovelace.example").replace(
        "--B--",
        (f"--B\nContent-Type: text/rfc822-headers\n\nTo: Ada <ada@lovelace.example>\nMessage-ID: {ours}\n\n--B--"),
    )
    [result] = ingest(sent, tmp_path, report)
    assert matched(result) == ("bounce_hard", "ada@lovelace.example", "in_reply_to")
    assert status(sent, "ada@lovelace.example") == "bounced"


def test_a_report_carrying_our_verp_return_path_is_applied(sent: Dripper, tmp_path: Path) -> None:
    """Forwarded feedback loops lose their envelope, but the original keeps our Return-Path."""
    verp = sent_message("zoe@mueller.example")["Return-Path"].strip("<>")
    report = forged_arf("redacted@mueller.example").replace(
        "--B--",
        (
            f"--B\nContent-Type: message/rfc822\n\nReturn-Path: <{verp}>\nFrom: sales@acme.example\n"
            "To: redacted@mueller.example\nSubject: pack\n\nHello\n--B--"
        ),
    )
    [result] = ingest(sent, tmp_path, report)
    assert matched(result) == ("complaint", "zoe@mueller.example", "verp")
    assert status(sent, "zoe@mueller.example") == "complained"


def test_the_list_unsubscribe_mailto_is_proof(sent: Dripper, tmp_path: Path) -> None:
    """A mail client's one-click unsubscribe by mailto sends back our signed token."""
    from urllib.parse import parse_qs, unquote, urlsplit

    header = sent_message("zoe@mueller.example")["List-Unsubscribe"]
    mailto = next(part.strip(" <>") for part in header.split(",") if "mailto:" in part)
    subject = unquote(parse_qs(urlsplit(mailto).query)["subject"][0])
    token = subject.split()[-1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    forged, real = ingest(
        sent,
        tmp_path,
        message_from("x@mueller.example", f"unsubscribe {tampered}", "", message_id="<t-1@mueller.example>"),
        message_from("x@mueller.example", subject, "", message_id="<t-2@mueller.example>"),
    )
    assert forged["kind"] == "unknown"
    assert matched(real) == ("unsubscribe", "zoe@mueller.example", "unsubscribe_token")
    assert status(sent, "zoe@mueller.example") == "unsubscribed"


@pytest.mark.parametrize(
    ("results", "applied"),
    [
        (["mx.acme.example; dmarc=pass header.from=hopper.example"], True),
        (["mx.acme.example; dkim=pass header.d=hopper.example header.s=s1"], True),
        (["mx.acme.example; spf=pass smtp.mailfrom=grace@hopper.example"], True),
        (["mx.acme.example; dkim=pass header.d=attacker.example"], False),  # not aligned with From
        (["mx.acme.example; spf=pass smtp.mailfrom=attacker.example"], False),
        (["mx.acme.example; dmarc=fail header.from=hopper.example"], False),
        (["mx.attacker.example; dmarc=pass header.from=hopper.example"], False),  # a server we do not trust
        # the topmost header of our server is the one it wrote; a lower one came with the message
        (
            [
                "mx.acme.example; dmarc=fail header.from=hopper.example",
                "mx.acme.example; dmarc=pass header.from=hopper.example",
            ],
            False,
        ),
    ],
)
def test_an_authenticated_sender_is_proof(sent: Dripper, tmp_path: Path, results: list[str], applied: bool) -> None:
    trust_our_mail_server(sent)
    head = "".join(f"Authentication-Results: {value}\n" for value in results)
    [result] = ingest(sent, tmp_path, head + message_from("Grace <grace@hopper.example>", "unsubscribe", "Remove me"))
    if applied:
        assert matched(result) == ("unsubscribe", "grace@hopper.example", "authenticated_sender")
    else:
        assert (result["kind"], result["suspected_lead"]) == ("unknown", "grace@hopper.example")
    assert status(sent, "grace@hopper.example") == ("unsubscribed" if applied else "active")


def test_without_trusted_servers_authentication_results_are_ignored(sent: Dripper, tmp_path: Path) -> None:
    message = authenticated(message_from("Grace <grace@hopper.example>", "unsubscribe", "Remove me"), "hopper.example")
    [result] = ingest(sent, tmp_path, message)
    assert result["kind"] == "unknown" and status(sent, "grace@hopper.example") == "active"


# --- one bad message never stops the mailbox ---------------------------------------------------


def nested_multipart(depth: int) -> bytes:
    head = b"From: x@outside.example\r\nTo: sales@acme.example\r\nSubject: deep\r\nMessage-ID: <deep-mp@x>\r\n"
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nunsubscribe\r\n" + closing


def nested_rfc822(depth: int) -> bytes:
    head = b"From: x@outside.example\r\nTo: sales@acme.example\r\nSubject: deep\r\nMessage-ID: <deep-822@x>\r\n"
    return (
        head + b"Content-Type: message/rfc822\r\n\r\nFrom: z@y\r\n" * depth + b"Content-Type: text/plain\r\n\r\nhi\r\n"
    )


def many_parts(count: int) -> bytes:
    head = (
        b"From: x@outside.example\r\nSubject: wide\r\nMessage-ID: <wide@x>\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    return head + b"--b\r\n\r\nx\r\n" * count + b"--b--\r\n"


def test_messages_that_cannot_be_read_within_limits_do_not_stop_the_batch(sent: Dripper, tmp_path: Path) -> None:
    ada = sent_message("ada@lovelace.example")["Message-ID"]
    zoe = sent_message("zoe@mueller.example")["Message-ID"]
    results = ingest(
        sent,
        tmp_path,
        message_from("Ada <ada@lovelace.example>", "Re: pack", "Send a quote.", in_reply_to=ada),
        nested_multipart(3000),
        nested_rfc822(2000),
        many_parts(200_000),
        message_from(
            "Zoë <zoe@mueller.example>",
            "Re: pack",
            "Bitte abmelden.",
            in_reply_to=zoe,
            message_id="<m-2@mueller.example>",
        ),
    )
    assert [(r["kind"], r["lead"]) for r in results] == [
        ("reply", "ada@lovelace.example"),
        ("unknown", None),
        ("unknown", None),
        ("unknown", None),
        ("unsubscribe", "zoe@mueller.example"),
    ]
    deep, deeper, wide = results[1:4]
    assert "too deeply nested" in deep["reason"] and "too deeply nested" in deeper["reason"]
    assert "too many parts" in wide["reason"]
    assert all(r["quarantine"] and r["applied"] for r in (deep, deeper, wide))
    assert status(sent, "ada@lovelace.example") == "replied"
    assert status(sent, "zoe@mueller.example") == "unsubscribed"
    assert {e["reason"] for e in unknown_events(sent)} == {r["reason"] for r in (deep, deeper, wide)}


def test_an_unreadable_file_is_reported_and_the_rest_is_ingested(sent: Dripper, tmp_path: Path) -> None:
    ada = sent_message("ada@lovelace.example")["Message-ID"]
    reply = tmp_path / "reply.eml"
    reply.write_text(message_from("Ada <ada@lovelace.example>", "Re: pack", "Quote?", in_reply_to=ada))
    out = sent("ingest", str(tmp_path / "missing.eml"), str(reply), "--json", "--at", AT.isoformat(), ok=1)
    assert "missing.eml: cannot read" in out.stderr
    assert json.loads(out.stdout)["lead"] == "ada@lovelace.example"
    assert status(sent, "ada@lovelace.example") == "replied"


def test_a_large_reply_is_classified_without_its_attachment(sent: Dripper, tmp_path: Path) -> None:
    """A person's reply with a big attachment: read, matched and applied (the classifier
    reads its text, not the 8 MB of base64)."""
    import base64

    ada = sent_message("ada@lovelace.example")["Message-ID"]
    attachment = base64.encodebytes(b"%PDF-1.7 " + bytes(range(256)) * 24_000).decode()
    message = (
        f"From: Ada <ada@lovelace.example>\nTo: sales@acme.example\nSubject: Re: pack\n"
        f"Message-ID: <big@lovelace.example>\nIn-Reply-To: {ada}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
        "Our drawing is attached; please quote.\n--b\nContent-Type: application/pdf\n"
        f"Content-Transfer-Encoding: base64\n\n{attachment}--b--\n"
    )
    [result] = ingest(sent, tmp_path, message)
    assert (result["kind"], result["lead"], result["quarantine"]) == ("reply", "ada@lovelace.example", False)


def test_imap_quarantines_what_it_cannot_read_and_goes_on(
    dripper_sqlite: Dripper, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dripper.inbound import parse

    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper_sqlite("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    zoe = sent_message("zoe@mueller.example")["Message-ID"]
    monkeypatch.setattr(parse, "MAX_BYTES", 512 * 1024)  # so that a "too large" message stays small here
    imap_server.deliver(nested_multipart(3000))  # first in the folder: it used to fail every poll
    imap_server.deliver(
        b"From: big@outside.example\r\nSubject: big\r\nMessage-ID: <big@x>\r\n\r\n" + b"x" * 76 * 10_000
    )
    imap_server.deliver(
        message_from("Zoë <zoe@mueller.example>", "Re: pack", "Bitte abmelden.", in_reply_to=zoe).encode()
    )
    out = dripper_sqlite("ingest", "--imap", "--json", "--at", AT.isoformat(), DRIPPER_IMAP_URL=imap_server.url)
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["kind"], r["quarantine"]) for r in results] == [
        ("unknown", True),
        ("unknown", True),
        ("unsubscribe", False),
    ]
    assert "larger than" in results[1]["reason"]
    assert status(dripper_sqlite, "zoe@mueller.example") == "unsubscribed"
    assert (imap_server.count("INBOX"), imap_server.count("Quarantine"), imap_server.count("Processed")) == (0, 2, 1)


def test_an_unverified_removal_request_reaches_a_person(sent: Dripper, tmp_path: Path, smtp_sink) -> None:
    """It changes nothing, so the sales team gets it to judge (and to apply by hand)."""
    campaigns = sent.root / "campaigns.yaml"
    campaigns.write_text(
        campaigns.read_text().replace(
            "campaigns:\n", "inbound:\n  notify:\n    forward_to: team@acme.example\ncampaigns:\n", 1
        )
    )
    message = message_from("Zoë <zoe@mueller.example>", "Bitte abmelden", "Keine E-Mails mehr.")
    path = tmp_path / "unsubscribe.eml"
    path.write_text(message)
    out = sent("ingest", str(path), "--json", "--at", AT.isoformat(), DRIPPER_SMTP_URL=smtp_sink.url)
    result = json.loads(out.stdout)
    assert result["kind"] == "unknown" and "forwarded to team@acme.example" in result["effect"]
    [forward] = smtp_sink.messages
    forwarded = message_from_bytes(forward.data, policy=policy.default)
    assert forwarded["Subject"] == "Unverified unsubscribe claiming to be from zoe@mueller.example"
    assert "dripper event zoe@mueller.example unsubscribed" in forwarded.get_body(("plain",)).get_content()
    assert status(sent, "zoe@mueller.example") == "active"
