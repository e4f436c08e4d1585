"""One hard/soft rule on every path: an RFC 3464 report, a non-standard bounce and a
refusal at SMTP time reach the same verdict on the same answer from the server. Hard only
on evidence that the address or its domain is gone."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flufl.bounce import all_failures

from dripper.inbound.classify import bounce_kind, classify

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window

# The copy of our message that many bounces return: its headers and footer say "DKIM",
# "spam", "policy", none of which is the server's answer.
RETURNED = """\
Return-Path: <bounces+t1@acme.example>
Received: from mail.acme.example (mail.acme.example [192.0.2.10])
\tby mx.example.org with ESMTPS id 4F2; Mon, 5 Jan 2026 09:00:00 +0000
DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=dripper; h=from:to:subject; b=abc
X-Spam-Status: No, score=-0.1
From: Acme <sales@acme.example>
To: ada@lovelace.example
Subject: Thank you for your interest
Message-ID: <0123456789abcdef.drip@acme.example>

Thanks for reading our paper. Our privacy policy: https://acme.example/policy
"""

ANSWERS = [
    # (the server's answer, the verdict)
    ("550 5.1.0 Recipient rejected", "bounce_hard"),  # 5.1.x: about the address
    ("550 5.1.1 <ada@lovelace.example>: Recipient address rejected: User unknown", "bounce_hard"),
    ("550 No such user here", "bounce_hard"),
    ("550 5.7.1 Service unavailable; client host [192.0.2.10] blocked using zen.spamhaus.org", "bounce_soft"),
    ("554 5.7.1 Message rejected as spam by content filter", "bounce_soft"),
    ("552 5.2.2 Mailbox full", "bounce_soft"),
    ("550 5.2.1 This mailbox is disabled", "bounce_soft"),  # it exists: suspended, not gone
    ("550 Message rejected", "bounce_soft"),  # no evidence either way
]


def dsn(answer: str) -> bytes:
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: bounces+t1@acme.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; ada@lovelace.example
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; {answer}

--b
Content-Type: message/rfc822

{RETURNED}
--b--
""".encode()


def nonstandard(answer: str, returned: str = RETURNED) -> bytes:
    """A bounce in prose, the returned message inline (as Exim and qmail send them)."""
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: bounces+t1@acme.example
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  ada@lovelace.example
    host mx.lovelace.example [192.0.2.20]
    SMTP error from remote mail server after RCPT TO:<ada@lovelace.example>:
    {answer}

------ This is a copy of the message, including all the headers. ------

{returned}""".encode()


def kind_of(raw: bytes) -> str:
    return classify(message_from_bytes(raw, policy=policy.compat32)).kind


@pytest.mark.parametrize(("answer", "verdict"), ANSWERS)
def test_every_path_reaches_the_same_verdict(answer: str, verdict: str) -> None:
    assert kind_of(dsn(answer)) == verdict
    assert kind_of(nonstandard(answer)) == verdict
    assert bounce_kind(answer, phase="RCPT") == verdict  # the sender's refusal at RCPT


def test_the_returned_message_is_not_the_servers_answer() -> None:
    # The example: a non-standard bounce of "550 5.1.0 Recipient rejected" was
    # soft because the returned message's DKIM-Signature read as a policy refusal.
    found = classify(message_from_bytes(nonstandard("550 5.1.0 Recipient rejected"), policy=policy.compat32))
    assert (found.kind, found.status, found.recipients) == ("bounce_hard", "5.1.0", ["ada@lovelace.example"])


def test_mailmans_permanent_is_not_evidence() -> None:
    # A permanent failure with no reason given (here a local program that failed) is soft:
    # Mailman's detectors call it permanent, which does not say the address is gone.
    raw = nonstandard("pipe to |/usr/local/bin/filter failed: exit code 75", returned="Subject: Hello\n").replace(
        b"SMTP error from remote mail server after RCPT TO:<ada@lovelace.example>:", b""
    )
    message = message_from_bytes(raw, policy=policy.compat32)
    assert all_failures(message) == (frozenset(), {b"ada@lovelace.example"})  # permanent, for Mailman
    assert classify(message).kind == "bounce_soft"


def test_words_about_the_mailbox_after_data_are_the_messages_refusal() -> None:
    # Some carriers answer "unknown user" to mail their filters refuse, after DATA, once
    # they had accepted the recipient at RCPT.
    assert bounce_kind("550 Unknown user ada@lovelace.example (in reply to end of DATA command)") == "bounce_soft"
    assert bounce_kind("550 Unknown user ada@lovelace.example (in reply to RCPT TO command)") == "bounce_hard"
    assert bounce_kind("550 Unknown user ada@lovelace.example", phase="DATA") == "bounce_soft"
    # A code that says the address is gone is evidence whenever it comes.
    assert bounce_kind("550 5.1.1 Unknown user (in reply to end of DATA command)") == "bounce_hard"


def test_a_recipient_named_like_a_policy_word_says_nothing() -> None:
    assert bounce_kind("550 5.1.0 <dmarc@reports.example>: Recipient rejected") == "bounce_hard"


def test_a_multi_recipient_bounce_is_as_bad_as_its_worst() -> None:
    raw = b"""\
From: Mailer Daemon <MAILER-DAEMON@mx.example.org>
Subject: Delivery status notification: error

An error has occurred while attempting to deliver a message for
the following list of recipients:

zoe@mueller.example: 550 5.2.2 <zoe@mueller.example>... Mailbox Full
ada@lovelace.example: 550 5.1.1 <ada@lovelace.example>... User Unknown
"""
    assert kind_of(raw) == "bounce_hard"


def test_a_refusal_of_our_message_at_rcpt_does_not_bounce_the_lead(dripper, smtp_sink) -> None:
    # The server refuses the recipient at RCPT because of our IP's reputation: the touch
    # fails, but nothing says the lead's address is gone.
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    smtp_sink.rcpt_reply["ada@lovelace.example"] = (
        "550 5.7.1 Service unavailable; client host [127.0.0.1] blocked using zen.spamhaus.org"
    )
    counts = dripper.json(
        "tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json", DRIPPER_SMTP_URL=smtp_sink.url
    )
    assert counts["failed"] == 1 and counts["sent"] == 2
    data = dripper.json("plan", "ada@lovelace.example", "--json")
    assert data["lead"]["status"] != "bounced"
    assert not any(e["kind"] == "bounced" for e in data["events"])
    steps = {t["step"]: t for t in data["touches"]}
    assert steps["thanks"]["state"] == "failed" and "spamhaus" in steps["thanks"]["reason"]


def test_mailmans_detectors_read_a_from_header_with_raw_8bit_bytes(caplog) -> None:
    # compat32 gives a Header object, not a str, for a header with raw 8-bit bytes; one of
    # Mailman's detectors called .lower() on it and logged an ERROR with a traceback for
    # every such message. The detectors get a message they can read, and still find the
    # failed recipient.
    raw = (
        b"From: Syst\xe8me de messagerie <MAILER-DAEMON@mail.plant.example>\n"
        + (Path(__file__).parent / "corpus" / "own" / "bounce-nonstandard-qmail.eml").read_bytes().split(b"\n", 1)[1]
    )
    message = message_from_bytes(raw, policy=policy.compat32)
    assert not isinstance(message.get("From"), str)
    with caplog.at_level(logging.INFO, logger="flufl.bounce"):
        found = classify(message)
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert (found.kind, found.recipients) == ("bounce_hard", ["grace@hopper.example"])
    assert not isinstance(message.get("From"), str)  # the message itself is left as it came


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        # RFC 2047 encoded words were matched undecoded
        (b"=?utf-8?q?R=C3=A9ponse_automatique=3A_Votre_message?=", "auto_reply"),
        (b"=?ISO-2022-JP?B?GyRCJWEhPCVrJSglaSE8RExDThsoQg==?=", "bounce_soft"),  # a carrier's "mail error notice"
        # raw UTF-8 (RFC 6532), which compat32 leaves as undecodable bytes
        ("メールエラー通知".encode(), "bounce_soft"),
    ],
)
def test_a_subject_is_read_decoded(subject: bytes, kind: str) -> None:
    raw = (
        b"From: no-reply@mail.plant.example\nTo: bounces+t1@acme.example\nSubject: "
        + subject
        + b"\n\nYour mail could not be delivered.\n"
    )
    assert kind_of(raw) == kind


def ses(notification: str, wrap: int = 0) -> bytes:
    """An Amazon SES notification as SNS sends it by e-mail (its one line wrapped by a
    mail system at `wrap` characters, a space starting each continuation)."""
    if wrap:
        notification = "\n ".join(notification[i : i + wrap] for i in range(0, len(notification), wrap))
    return (
        b"From: AWS Notifications <no-reply@sns.amazonaws.com>\nTo: ops@acme.example\n"
        b"Subject: AWS Notification Message\nContent-Type: text/plain; charset=UTF-8\n\n"
        + notification.encode()
        + b"\n\n--\nIf you wish to stop receiving notifications from this topic, ...\n"
    )


def ses_bounce(kind: str, subtype: str, status: str, diagnostic: str) -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": kind,
                "bounceSubType": subtype,
                "timestamp": "2026-01-05T09:00:00.000Z",
                "bouncedRecipients": [
                    {
                        "emailAddress": "Ada@Lovelace.example",
                        "action": "failed",
                        "status": status,
                        "diagnosticCode": diagnostic,
                    }
                ],
            },
            "mail": {
                "messageId": "0101",
                "destination": ["ada@lovelace.example"],
                "headers": [{"name": "Message-ID", "value": "<0123456789abcdef.drip@acme.example>"}],
            },
        }
    )


@pytest.mark.parametrize(
    ("notification", "verdict"),
    [
        (ses_bounce("Permanent", "General", "5.1.1", "smtp; 550 5.1.1 user unknown"), "bounce_hard"),
        (ses_bounce("Permanent", "General", "5.7.1", "smtp; 550 5.7.1 blocked using zen.spamhaus.org"), "bounce_soft"),
        (ses_bounce("Permanent", "NoEmail", "5.0.0", ""), "bounce_hard"),  # SES: the address does not exist
        (ses_bounce("Permanent", "MailboxFull", "5.2.2", "smtp; 552 5.2.2 mailbox full"), "bounce_soft"),
        (ses_bounce("Transient", "General", "4.4.7", "smtp; 421 4.4.7 timed out"), "bounce_soft"),
        (
            json.dumps(
                {
                    "notificationType": "Complaint",
                    "mail": {"messageId": "0101"},
                    "complaint": {"complainedRecipients": [{"emailAddress": "ada@lovelace.example"}]},
                }
            ),
            "complaint",
        ),
    ],
)
def test_amazon_ses_notifications_follow_the_same_rule(notification: str, verdict: str) -> None:
    for raw in (
        ses(notification),
        ses(notification, wrap=76),
        ses(json.dumps({"Type": "Notification", "Message": notification})),
    ):
        found = classify(message_from_bytes(raw, policy=policy.compat32))
        assert (found.kind, found.recipients) == (verdict, ["ada@lovelace.example"])
        if verdict.startswith("bounce"):
            assert str(found.original and found.original["Message-ID"]) == "<0123456789abcdef.drip@acme.example>"


def test_the_phase_is_read_as_mtas_write_it() -> None:
    # Exim with PIPELINING, and reports that name the SMTP command
    assert (
        bounce_kind(
            "550 Unknown user ada@lovelace.example",
            context="SMTP error from remote mail server after pipelined end of data:",
        )
        == "bounce_soft"
    )
    assert bounce_kind("550 No such user", context="-------SMTP command\nDATA\n") == "bounce_soft"
    # sendmail's transcript shows DATA before the pipelined RCPT refusals' replies; the
    # DATA reply "no valid recipients" says the refusals were of the recipients
    transcript = """... while talking to mx.lovelace.example.:
>>> DATA
<<< 550 5.5.0 Invalid recipient
550 5.1.1 <ada@lovelace.example>... User unknown
<<< 554 5.5.1 Error: no valid recipients"""
    assert bounce_kind("550 5.5.0 Invalid recipient", context=transcript) == "bounce_hard"


def test_sendmail_lists_one_line_per_recipient() -> None:
    # a deferral for another host does not hide the failure of this one
    raw = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
Subject: Returned mail: Deferred: Connection timed out

   ----- Transcript of session follows -----
550 <ada@lovelace.example>... User unknown
421 plant.example (smtp)... Deferred: Connection timed out during user open with plant.example

   ----- Unsent message follows -----
Subject: Hello
"""
    assert kind_of(raw) == "bounce_hard"


def test_an_ip_address_is_not_a_status_code() -> None:
    # Found on the fresh split after it was measured: "4.79.181.22" was read as status
    # 4.79.181, a deferral, and a 5.1.1 bounce came out soft.
    answer = "host mx.plant.example[4.79.181.22] said: 550 5.1.1 <ada@lovelace.example>: User unknown"
    found = classify(message_from_bytes(nonstandard(answer), policy=policy.compat32))
    assert (found.kind, found.status) == ("bounce_hard", "5.1.1")


# Answers as mailbox providers and MTAs publish or are widely seen to send them, with
# the verdict RFC 3463 and the rule give: hard only when the address or its domain is
# gone; a disabled or full mailbox, a refusal of the sender or of our message, soft.
PUBLISHED = [
    # Gmail
    (
        "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the "
        "recipient's email address for typos or unnecessary spaces.",
        "bounce_hard",
    ),
    ("550 5.2.1 The email account that you tried to reach is disabled.", "bounce_soft"),
    ("552-5.2.2 The email account that you tried to reach is over quota.", "bounce_soft"),
    ("550-5.7.1 Our system has detected that this message is likely unsolicited mail.", "bounce_soft"),
    ("550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender", "bounce_soft"),
    ("DNS Error: DNS type 'mx' lookup of nowhere.example responded with code NXDOMAIN", "bounce_hard"),
    ("DNS Error: Address resolution of nowhere.example. failed: Domain name not found", "bounce_hard"),
    # Microsoft (Exchange Online, Outlook.com)
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "bounce_hard"),
    ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", "bounce_hard"),  # not in the directory
    ("550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized", "bounce_soft"),
    ("550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)", "bounce_hard"),
    ("#550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain ##", "bounce_hard"),
    ("550 5.4.310 DNS domain nowhere.example does not exist [Message=InfoDomainNonexistent]", "bounce_hard"),
    ("#550 4.4.7 QUEUE.Expired; message expired ##", "bounce_soft"),
    (
        "550 5.1.90 Your message can't be sent because you've reached your daily limit for message recipients",
        "bounce_soft",
    ),
    # Yahoo (it checks recipients at the end of DATA)
    ("554 delivery error: dd This user doesn't have a yahoo.com account (ada@yahoo.example) [0]", "bounce_hard"),
    ("552 1 Requested mail action aborted, mailbox not found", "bounce_hard"),
    (
        "554 30 Sorry, your message to ada@yahoo.example cannot be delivered. This mailbox is disabled (554.30).",
        "bounce_soft",
    ),
    ("553 5.7.2 [TSS09] All messages from 192.0.2.10 will be permanently deferred", "bounce_soft"),
    # Exim (cPanel's sender verification), Postfix, qmail, sendmail
    (
        "550-Verification failed for <sales@acme.example>\n550-No Such User Here\n550 Sender verify failed",
        "bounce_soft",
    ),
    ("550 Unrouteable address", "bounce_hard"),
    (
        "Host or domain name not found. Name service error for name=nowhere.example type=A: Host not found",
        "bounce_hard",
    ),
    (
        "Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found, try again",
        "bounce_soft",
    ),
    (
        "550 5.1.1 <ada@lovelace.example>: Recipient address rejected: User unknown in virtual mailbox table",
        "bounce_hard",
    ),
    ("Sorry, no mailbox here by that name. (#5.1.1)", "bounce_hard"),
    ("This address no longer accepts mail.", "bounce_hard"),
    ("Sorry, I couldn't find any host named nowhere.example. (#5.1.2)", "bounce_hard"),
    ("552 5.2.2 Mailbox size limit exceeded", "bounce_soft"),
    ("554 5.7.1 <ada@lovelace.example>: Relay access denied", "bounce_soft"),
    ("connect to mx.lovelace.example[192.0.2.20]:25: No route to host", "bounce_soft"),
    ("vdeliver: Invalid or unknown virtual user 'ada'", "bounce_hard"),
    ("550 Mailbox not present in directory", "bounce_hard"),
    ("The e-mail address you entered couldn't be found.", "bounce_hard"),
    # the sender's side: our HELO name, our IP's host name, our own address (X.1.7, X.1.8)
    ("550 5.7.1 <mail.acme.example>: Helo command rejected: Host not found", "bounce_soft"),
    ("550 5.7.1 Client host rejected: cannot find your hostname, [192.0.2.10]", "bounce_soft"),
    ("501 5.1.7 Invalid address", "bounce_soft"),
    ("553 5.1.8 <sales@acme.example>... Domain of sender address does not exist", "bounce_soft"),
    # in other languages
    ("550 El usuario no existe", "bounce_hard"),
    ("550 Adresse inconnue", "bounce_hard"),
    ("550 Utente sconosciuto", "bounce_hard"),
]


@pytest.mark.parametrize(("answer", "verdict"), PUBLISHED)
def test_published_answers_reach_their_verdict_on_every_path(answer: str, verdict: str) -> None:
    assert bounce_kind(answer) == verdict
    assert kind_of(dsn(answer.replace("\n", "\n "))) == verdict  # a folded Diagnostic-Code
    assert kind_of(nonstandard(answer)) == verdict


def test_a_bounce_in_prose_is_read_for_the_servers_answer_not_its_boilerplate() -> None:
    # A non-standard bounce about one recipient: the paragraph with the server's reply is
    # its answer, as a DSN's Diagnostic-Code is; the notice around it ("spam", "policy")
    # is context, read only when the answer says nothing.
    raw = b"""\
From: postmaster@mx.example.org
Subject: Undeliverable: Thank you for your interest

Your message to ada@lovelace.example couldn't be delivered.

The response from the remote server was:
550 5.1.0 Recipient rejected

Messages are scanned for spam and checked against our security policy.
"""
    assert kind_of(raw) == "bounce_hard"
    assert kind_of(raw.replace(b"550 5.1.0 Recipient rejected", b"550 Message rejected")) == "bounce_soft"


def test_a_mailbox_code_outweighs_words_unless_the_recipient_was_refused_at_rcpt() -> None:
    # X.2.x (RFC 3463: mailbox status) says the mailbox exists; "User Unknown" with it is
    # a filter's word, but for a refusal of the recipient itself at RCPT.
    answer = "550 5.2.1 <ada@lovelace.example>... User Unknown"
    assert bounce_kind(answer) == "bounce_soft"
    assert kind_of(dsn(answer)) == "bounce_soft"
    assert bounce_kind(answer, phase="RCPT") == "bounce_hard"
    assert kind_of(nonstandard(answer)) == "bounce_hard"  # "after RCPT TO:"


def test_kddi_names_no_address_when_the_recipients_filter_refused() -> None:
    assert bounce_kind("550 : User unknown") == "bounce_soft"
    assert kind_of(dsn("550 : User unknown")) == "bounce_soft"
    assert bounce_kind("550 <ada@ezweb.example>: User unknown") == "bounce_hard"


def test_yahoos_answers_at_the_end_of_data_are_about_the_address() -> None:
    answer = "554 delivery error: dd This user doesn't have a yahoo.com account (ada@yahoo.example) [0]"
    assert bounce_kind(answer, phase="DATA") == "bounce_hard"
    assert bounce_kind(f"{answer} (in reply to end of DATA command)") == "bounce_hard"
    # other words about the mailbox after DATA stay a refusal of the message
    assert bounce_kind("550 No such user here", phase="DATA") == "bounce_soft"


def test_a_multipart_whose_boundary_is_not_a_parameter_is_read_as_text() -> None:
    # The boundary on a line of its own (not folded into Content-Type) leaves the part a
    # multipart without parts: its body is the text there is.
    raw = b"""\
From: post_master@vtext.example
Subject: Re: Thank you
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative;
boundary="inner"

--inner
Content-Type: text/plain

Error: Invalid user address

Error message below:
550 - Requested action not taken: no such user here

--inner--

--outer--
"""
    found = classify(message_from_bytes(raw, policy=policy.compat32))
    assert found.kind == "bounce_hard", found


@pytest.mark.parametrize(
    ("sender", "subject"),
    [
        (b"no-reply@mail.plant.example", b"Message not delivered"),
        (b"no-reply@mail.plant.example", b"Warning: could not send message for past 4 hours"),
        (b"no-reply@mail.plant.example", "Mensagem não entregue".encode()),
        (b"no-reply@mail.plant.example", b"Olevererbart: Thank you"),
        (b"MAILER_DAEMON@mail.plant.example", b"Notice"),
        (b"Mail Delivery Service <service@mail.plant.example>", b"Notice"),
    ],
)
def test_bounces_are_known_by_their_sender_or_subject(sender: bytes, subject: bytes) -> None:
    raw = b"From: " + sender + b"\nSubject: " + subject + b"\n\nThe server said: 550 No such user here\n"
    assert kind_of(raw) == "bounce_hard"
