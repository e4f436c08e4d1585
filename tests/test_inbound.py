"""Inbound: classification of the corpus, and `dripper ingest` acting on leads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import Dripper
from corpus_labels import EXPECTED_OWN

from dripper.inbound import classify

CORPUS = Path(__file__).parent / "corpus" / "own"
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window

EXPECTED = EXPECTED_OWN  # tests/corpus_labels.py: the hand-labelled messages of tests/corpus/own


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_classification(name: str) -> None:
    found = classify(message_from_bytes((CORPUS / name).read_bytes(), policy=policy.compat32))
    assert (found.kind, found.status, found.recipients) == EXPECTED[name]


def test_every_corpus_file_is_expected() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


# --- end to end --------------------------------------------------------------------------


@pytest.fixture
def sent(dripper: Dripper) -> Dripper:
    """Three leads, each sent its first touch."""
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    return dripper


def _sent_to(email: str) -> bytes:
    return next(p for p in Path("outbox").glob(f"*_{email}.eml")).read_bytes()


def _as_sent_to(template: str, email: str, tmp: Path) -> Path:
    """A corpus message rewritten to refer to what dripper really sent to `email`."""
    ours = message_from_bytes(_sent_to(email), policy=policy.default)
    verp = ours["Return-Path"].strip("<>")
    text = (CORPUS / template).read_text()
    text = text.replace("<MSGID@acme.example>", ours["Message-ID"]).replace("zoe@mueller.example", email)
    text = re.sub(r"bounces\+t\d+-0{10}@acme\.example", verp, text)
    out = tmp / f"{email}-{template}"
    out.write_text(text)
    return out


def _ingest(dripper: Dripper, *files: Path, at: datetime | None = None, dry_run: bool = False) -> list[dict]:
    args = ["ingest", *map(str, files), "--json", "--at", (at or T0 + timedelta(days=2)).isoformat()]
    out = dripper(*args, *(["--dry-run"] if dry_run else []))
    return [json.loads(line) for line in out.stdout.splitlines()]


def _plan(dripper: Dripper, email: str) -> dict:
    return dripper.json("plan", email, "--json")


def test_hard_bounce_matched_by_verp_suppresses_and_is_idempotent(sent: Dripper, tmp_path: Path) -> None:
    dsn = _as_sent_to("dsn-hard-511.eml", "ada@lovelace.example", tmp_path)
    [first] = _ingest(sent, dsn)
    assert first["kind"] == "bounce_hard" and first["status"] == "5.1.1"
    assert first["lead"] == "ada@lovelace.example" and first["matched_by"] == "verp"
    assert first["touch"] == {"campaign": "literature-follow-up", "step": "thanks"} and first["applied"]
    plan = _plan(sent, "ada@lovelace.example")
    assert plan["lead"]["status"] == "bounced"
    assert all(t["reason"] == "bounced" for t in plan["touches"] if t["state"] == "suppressed")
    events_before = len(plan["events"])
    [again] = _ingest(sent, dsn)
    assert again["duplicate"] and not again["applied"]
    assert len(_plan(sent, "ada@lovelace.example")["events"]) == events_before


def test_reply_unsubscribe_complaint_and_auto_reply(sent: Dripper, tmp_path: Path) -> None:
    unsubscribe = _as_sent_to("unsubscribe-de.eml", "zoe@mueller.example", tmp_path)
    results = _ingest(
        sent,
        _as_sent_to("reply.eml", "ada@lovelace.example", tmp_path),
        _replying(unsubscribe, "zoe@mueller.example"),
        _as_sent_to("ooo-en.eml", "grace@hopper.example", tmp_path),
    )
    assert [(r["kind"], r["lead"], r["matched_by"]) for r in results] == [
        ("reply", "ada@lovelace.example", "in_reply_to"),
        ("unsubscribe", "zoe@mueller.example", "in_reply_to"),
        ("auto_reply", "grace@hopper.example", "in_reply_to"),
    ]
    assert _plan(sent, "ada@lovelace.example")["lead"]["status"] == "replied"
    assert _plan(sent, "zoe@mueller.example")["lead"]["status"] == "unsubscribed"
    # an out-of-office never stops a lead
    grace = _plan(sent, "grace@hopper.example")
    assert grace["lead"]["status"] == "active" and any(t["state"] == "planned" for t in grace["touches"])
    [complaint] = _ingest(sent, _as_sent_to("arf-complaint.eml", "grace@hopper.example", tmp_path))
    assert (complaint["kind"], complaint["lead"], complaint["matched_by"]) == (
        "complaint",
        "grace@hopper.example",
        "in_reply_to",
    )  # by the Message-ID of the original inside
    assert _plan(sent, "grace@hopper.example")["lead"]["status"] == "complained"


def _replying(path: Path, email: str) -> Path:
    """The message made a reply to what dripper sent to `email` (In-Reply-To its Message-ID)."""
    ours = message_from_bytes(_sent_to(email), policy=policy.default)
    text = path.read_text()
    head, _, body = text.partition("\n\n")
    path.write_text(f"{head}\nIn-Reply-To: {ours['Message-ID']}\n\n{body}")
    return path


def test_a_removal_request_that_is_not_a_reply_changes_nothing_until_verified(sent: Dripper, tmp_path: Path) -> None:
    """Matched by its From address alone, anyone could have written it: recorded for a
    person to see (unknown, with whom it claims to be about), never applied."""
    [result] = _ingest(sent, _as_sent_to("unsubscribe-de.eml", "zoe@mueller.example", tmp_path))
    assert (result["kind"], result["lead"], result["matched_by"]) == ("unknown", None, None)
    assert (result["classified_as"], result["suspected_lead"]) == ("unsubscribe", "zoe@mueller.example")
    assert "unverified unsubscribe" in result["reason"] and "inbound.trusted_authserv_ids" in result["reason"]
    assert result["applied"] and result["effect"] == "recorded as unknown (unverified: changed nothing)"
    assert _plan(sent, "zoe@mueller.example")["lead"]["status"] == "active"


def _to_verp(path: Path, email: str) -> Path:
    """A report sent back to the VERP address of what dripper sent to `email`."""
    verp = message_from_bytes(_sent_to(email), policy=policy.default)["Return-Path"].strip("<>")
    path.write_text(path.read_text().replace("To: bounces@acme.example", f"To: {verp}"))
    return path


def test_soft_bounces_retry_then_escalate(sent: Dripper, tmp_path: Path) -> None:
    base = _to_verp(
        _as_sent_to("dsn-mailbox-full-522.eml", "zoe@mueller.example", tmp_path), "zoe@mueller.example"
    ).read_text()
    files = []
    for i in range(3):
        path = tmp_path / f"soft{i}.eml"
        path.write_text(base.replace("<dsn-2@googlemail.example>", f"<dsn-2-{i}@googlemail.example>"))
        files.append(path)
    [first] = _ingest(sent, files[0])
    assert (first["kind"], first["status"], first["lead"]) == ("bounce_soft", "5.2.2", "zoe@mueller.example")
    assert first["effect"] == "soft_bounce (1 of 3)"
    assert _plan(sent, "zoe@mueller.example")["lead"]["status"] == "active"
    _ingest(sent, files[1], at=T0 + timedelta(days=5))
    [third] = _ingest(sent, files[2], at=T0 + timedelta(days=9))
    assert third["effect"].startswith("bounced (3 soft bounces")
    assert _plan(sent, "zoe@mueller.example")["lead"]["status"] == "bounced"


def test_a_soft_bounced_touch_goes_out_again(sent: Dripper, tmp_path: Path) -> None:
    dsn = _to_verp(_as_sent_to("dsn-mailbox-full-522.eml", "zoe@mueller.example", tmp_path), "zoe@mueller.example")
    [result] = _ingest(sent, dsn)
    assert result["matched_by"] == "verp" and result["touch"]["step"] == "thanks"
    thanks = next(t for t in _plan(sent, "zoe@mueller.example")["touches"] if t["step"] == "thanks")
    assert thanks["state"] == "planned" and thanks["reason"] == "soft_bounce: 5.2.2"
    counts = sent.json("tick", "--at", (T0 + timedelta(days=3)).isoformat(), "--json")  # 16:00 in Berlin
    assert counts["sent"] >= 1
    assert next(t for t in _plan(sent, "zoe@mueller.example")["touches"] if t["step"] == "thanks")["state"] == "sent"


def test_unmatched_is_recorded_as_unknown_and_dry_run_changes_nothing(sent: Dripper, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.eml"
    stranger.write_text(
        "From: someone@else.example\nTo: sales@acme.example\nSubject: hello\n"
        "Message-ID: <s-1@else.example>\n\nDo you sell pumps?\n"
    )
    reply = _as_sent_to("reply.eml", "ada@lovelace.example", tmp_path)
    dry = _ingest(sent, stranger, reply, dry_run=True)
    assert [(r["kind"], r["lead"], r["applied"]) for r in dry] == [
        ("unknown", None, False),
        ("reply", "ada@lovelace.example", False),
    ]
    assert _plan(sent, "ada@lovelace.example")["lead"]["status"] == "active"
    [unknown] = _ingest(sent, stranger)
    assert unknown["applied"] and unknown["effect"] == "recorded as unknown"
    [again] = _ingest(sent, stranger)
    assert again["duplicate"]


def test_ingest_reads_stdin(sent: Dripper, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dripper.cli import main

    reply = _as_sent_to("reply.eml", "ada@lovelace.example", tmp_path).read_bytes()
    result = CliRunner().invoke(
        main,
        ["ingest", "-", "--json", "--at", (T0 + timedelta(days=2)).isoformat()],
        input=reply,
        env={"DRIPPER_DATABASE_URL": sent.db_url, "DRIPPER_SECRET": "test-secret"},
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert (line["file"], line["kind"], line["lead"]) == ("-", "reply", "ada@lovelace.example")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I am out of the office until 3 December with limited access.", "2026-12-03"),
        ("I'm back on Monday, December 7th.", "2026-12-07"),
        ("Ich bin bis zum 03.12. nicht im Büro.", "2026-12-03"),
        ("Ich bin ab dem 4. Dezember wieder erreichbar.", "2026-12-04"),
        ("Je serai de retour le 3 décembre.", "2026-12-03"),
        ("Estaré fuera hasta el 3 de diciembre.", "2026-12-03"),
        ("Returning January 5, 2027.", "2027-01-05"),
        ("I am out of the office.", None),
    ],
)
def test_return_dates(text: str, expected: str | None) -> None:
    from datetime import date

    from dripper.inbound.dates import return_date

    found = return_date(text, date(2026, 11, 23))
    assert (found.isoformat() if found else None) == expected


def trust_our_mail_server(dripper: Dripper) -> None:
    """campaigns.yaml believes the Authentication-Results of mx.acme.example."""
    campaigns = dripper.root / "campaigns.yaml"
    campaigns.write_text(
        campaigns.read_text().replace(
            "campaigns:\n", "inbound:\n  trusted_authserv_ids: [mx.acme.example]\ncampaigns:\n", 1
        )
    )


def authenticated(text: str, domain: str) -> str:
    """The message as our receiving server hands it over: DMARC passed for its From domain."""
    return f"Authentication-Results: mx.acme.example; dmarc=pass header.from={domain}\n{text}"


OOO_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday


def _auto_reply_from_a_new_lead(sent: Dripper, tmp_path: Path, email: str, text: str) -> dict:
    """`email` is added as a lead at OOO_AT and its auto-reply `text`, authenticated by our
    trusted mail server, is ingested at once: the ingest's result."""
    sent("leads", "add", email, "--stage", "supplier_research", "--at", OOO_AT.isoformat())
    trust_our_mail_server(sent)
    ooo = tmp_path / "ooo.eml"
    ooo.write_text(authenticated(text, email.split("@")[1]))
    [result] = _ingest(sent, ooo, at=OOO_AT)
    return result


def test_an_out_of_office_with_a_return_date_holds_the_next_touch(sent: Dripper, tmp_path: Path) -> None:
    text = (
        (CORPUS / "ooo-en.eml")
        .read_text()
        .replace("Ada Lovelace <ada@lovelace.example>", "Nia <nia@new.example>")
        .replace("In-Reply-To: <MSGID@acme.example>\n", "")
    )  # "until 3 December"
    result = _auto_reply_from_a_new_lead(sent, tmp_path, "nia@new.example", text)
    assert (result["kind"], result["lead"], result["matched_by"]) == (
        "auto_reply",
        "nia@new.example",
        "authenticated_sender",
    )
    assert "held until after 2026-12-03" in result["effect"]
    plan = _plan(sent, "nia@new.example")
    assert plan["lead"]["status"] == "active"
    steps = {t["step"]: t for t in plan["touches"]}
    # thanks was due today: now 09:00 Chicago on Friday 4 December, the first opening after the return date
    assert steps["thanks"]["due"] == "2026-12-04T15:00:00+00:00"
    assert steps["thanks"]["reason"] == "held: away until 2026-12-03"
    assert steps["reminder-1"]["reason"] is None  # due after the return date: unchanged
    assert steps["reminder-1"]["due"] == "2026-12-07T15:00:00+00:00"


def test_replies_are_forwarded_and_posted_to_the_sales_team(sent: Dripper, tmp_path: Path, smtp_sink) -> None:
    """Forwarded through the SMTP server, posted to a webhook on a real local HTTP server."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    posted: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    campaigns = sent.root / "campaigns.yaml"
    campaigns.write_text(
        campaigns.read_text().replace(
            "campaigns:\n",
            (
                "inbound:\n  notify:\n    forward_to: team@acme.example\n"
                f"    webhook: http://127.0.0.1:{server.server_port}/dripper\n"
                "campaigns:\n"
            ),
            1,
        )
    )
    try:
        reply = _as_sent_to("reply.eml", "ada@lovelace.example", tmp_path)
        args = ["ingest", str(reply), "--json", "--at", (T0 + timedelta(days=2)).isoformat()]
        [result] = [json.loads(line) for line in sent(*args, DRIPPER_SMTP_URL=smtp_sink.url).stdout.splitlines()]
    finally:
        server.shutdown()
    assert "forwarded to team@acme.example" in result["effect"] and "posted to webhook (204)" in result["effect"]
    assert len(smtp_sink.messages) == 1 and smtp_sink.messages[0].rcpt_tos == ["team@acme.example"]
    forwarded = message_from_bytes(smtp_sink.messages[0].data, policy=policy.default)
    assert forwarded["Subject"] == "Reply from ada@lovelace.example: thanks"
    assert b"could you send a quote for 40 units" in smtp_sink.messages[0].data
    assert posted and posted[0]["lead"] == "ada@lovelace.example" and posted[0]["kind"] == "reply"


def test_an_out_of_office_without_a_date_pauses_for_a_week(sent: Dripper, tmp_path: Path) -> None:
    text = (
        "From: Ben <ben@new.example>\nTo: sales@acme.example\nSubject: Out of Office\n"
        "Auto-Submitted: auto-replied\nMessage-ID: <ooo-b@new.example>\n\n"
        "I am away with limited access.\n"
    )
    result = _auto_reply_from_a_new_lead(sent, tmp_path, "ben@new.example", text)
    assert result["kind"] == "auto_reply" and "held until after 2026-11-29" in result["effect"]
    plan = _plan(sent, "ben@new.example")
    assert plan["lead"]["status"] == "active"  # paused, never stopped
    thanks = next(t for t in plan["touches"] if t["step"] == "thanks")
    assert thanks["state"] == "planned" and thanks["due"] == "2026-11-30T15:00:00+00:00"  # Monday 09:00 Chicago
