"""IMAP polling against a real Dovecot on loopback: ingested, moved (never deleted), restart-safe."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from conftest import Dripper, ImapServer

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
CORPUS = Path(__file__).parent / "corpus" / "own"


def test_polling_ingests_and_moves_messages(dripper_sqlite: Dripper, imap_server: ImapServer) -> None:
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper_sqlite("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    sent = message_from_bytes(
        next(Path("outbox").glob("*_ada@lovelace.example.eml")).read_bytes(), policy=policy.default
    )
    reply = (CORPUS / "reply.eml").read_bytes().replace(b"<MSGID@acme.example>", sent["Message-ID"].encode())
    to_zoe = message_from_bytes(
        next(Path("outbox").glob("*_zoe@mueller.example.eml")).read_bytes(), policy=policy.default
    )
    unsubscribe = (
        (CORPUS / "unsubscribe-de.eml")
        .read_bytes()
        .replace(b"Message-ID:", b"In-Reply-To: " + to_zoe["Message-ID"].encode() + b"\nMessage-ID:")
    )
    imap_server.deliver(reply)
    imap_server.deliver(unsubscribe)
    out = dripper_sqlite(
        "ingest", "--imap", "--json", "--at", (T0 + timedelta(days=2)).isoformat(), DRIPPER_IMAP_URL=imap_server.url
    )
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["kind"], r["lead"]) for r in results] == [
        ("reply", "ada@lovelace.example"),
        ("unsubscribe", "zoe@mueller.example"),
    ]
    assert imap_server.count("INBOX") == 0 and imap_server.count("Processed") == 2  # moved, not deleted
    assert dripper_sqlite.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "replied"
    # a crash after ingesting but before moving: the same message again changes nothing
    imap_server.deliver(reply)
    again = dripper_sqlite("ingest", "--imap", "--json", DRIPPER_IMAP_URL=imap_server.url)
    [line] = [json.loads(x) for x in again.stdout.splitlines()]
    assert line["duplicate"] and not line["applied"]
    assert imap_server.count("INBOX") == 0 and imap_server.count("Processed") == 3


def test_wrong_imap_credentials_are_a_clear_error(dripper_sqlite: Dripper, imap_server: ImapServer) -> None:
    url = imap_server.url.replace(":s3cret@", ":wrong@")
    result = dripper_sqlite("ingest", "--imap", ok=1, DRIPPER_IMAP_URL=url)
    assert "IMAP:" in result.stderr


def test_dripper_run_polls_the_mailbox(dripper_sqlite: Dripper, imap_server: ImapServer, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_inbound import authenticated, trust_our_mail_server

    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    trust_our_mail_server(dripper_sqlite)  # a removal request that is no reply: believed when authenticated
    imap_server.deliver(authenticated((CORPUS / "unsubscribe-de.eml").read_text(), "mueller.example").encode())
    env = {
        **os.environ,
        "DRIPPER_DATABASE_URL": dripper_sqlite.db_url,
        "DRIPPER_SECRET": "s",
        "DRIPPER_IMAP_URL": imap_server.url,
        "DRIPPER_IMAP_INTERVAL": "1",
        "DRIPPER_TICK_INTERVAL": "30",
    }
    with open(tmp_path / "run.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dripper", "run"],
            env=env,
            cwd=dripper_sqlite.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while imap_server.count("Processed") < 1:
                assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
                time.sleep(0.3)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(15) == 0
    assert dripper_sqlite.json("plan", "zoe@mueller.example", "--json")["lead"]["status"] == "unsubscribed"
    assert "inbound imap:INBOX/" in (tmp_path / "run.log").read_text()
