"""Inbox hygiene: DKIM, VERP, Feedback-ID, and SpamAssassin's verdict on the shipped templates."""

from __future__ import annotations

import json
import mailbox
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import Dripper

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 2048-bit RSA key (openssl) and the DNS TXT record that publishes it."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    import base64

    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _sent(dripper: Dripper, **env: str) -> dict[str, bytes]:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), **env)
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat(), **env)
    return {p.name: p.read_bytes() for p in Path("outbox").glob("*.eml")}


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers(dripper_sqlite: Dripper, rsa_key) -> None:
    import dkim

    key, record = rsa_key
    messages = _sent(dripper_sqlite, DRIPPER_DKIM_KEY=str(key), DRIPPER_DKIM_SELECTOR="drip2026")
    assert len(messages) == 3
    looked_up = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record if name == b"drip2026._domainkey.acme.example." else b""

    for data in messages.values():
        assert dkim.verify(data, dnsfunc=dns), "the signature must verify"
        signature = message_from_bytes(data, policy=policy.compat32)["DKIM-Signature"]
        fields = dict(part.strip().split("=", 1) for part in re.sub(r"\s+", "", signature).split(";") if part)
        signed = fields["h"].lower().split(":")
        for header in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post", "to", "date", "message-id"):
            assert header in signed, header
        assert fields["d"] == "acme.example" and fields["s"] == "drip2026"
        tampered = data.replace(b"Subject: ", b"Subject: Re: ", 1)
        assert not dkim.verify(tampered, dnsfunc=dns)
    assert looked_up


def test_unsigned_without_a_key(dripper_sqlite: Dripper) -> None:
    for data in _sent(dripper_sqlite).values():
        assert b"DKIM-Signature" not in data


def test_feedback_id_and_verp_return_path(dripper_sqlite: Dripper) -> None:
    from dripper.tokens import Tokens

    messages = _sent(dripper_sqlite)
    plan = {t["message_id"]: t for t in dripper_sqlite.json("plan", "ada@lovelace.example", "--json")["touches"]}
    for name, data in messages.items():
        message = message_from_bytes(data, policy=policy.default)
        assert message["Feedback-ID"] == "literature-follow-up:thanks:acme.example"
        return_path = message["Return-Path"].strip("<>")
        assert re.fullmatch(r"bounces\+t\d+-[0-9a-f]{10}@acme\.example", return_path), return_path
        assert Tokens("test-secret").read_bounce_address(return_path) is not None
        if "ada@" in name:
            assert message["Message-ID"] in plan


def test_bounce_address_is_configurable(dripper_sqlite: Dripper, project: Path) -> None:
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(
        campaigns.read_text().replace(
            '  reply_to: "reply@acme.example"\n',
            '  reply_to: "reply@acme.example"\n  bounce_address: "dsn@mail.acme.example"\n',
        )
    )
    for data in _sent(dripper_sqlite).values():
        assert re.match(rb"Return-Path: <dsn\+t\d+-[0-9a-f]{10}@mail\.acme\.example>", data)


CONTROL = (  # what spam looks like to SpamAssassin's local rules (scores about 7.5)
    b'From: "WINNER" <win@lottery.example>\nTo: you@example.com\n'
    b"Subject: FREE!!! You WON $1,000,000 - CLICK NOW!!! 100% GUARANTEED\n"
    b"Date: Mon, 05 Jan 2026 08:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/html\n\n"
    b"<html><body><font size=7 color=red>CLICK HERE NOW!!! FREE MONEY!!! Viagra cheap pills, no prescription, "
    b'act now, 100% guaranteed, risk free, unsubscribe never</font><a href="http://1.2.3.4/x">CLICK</a></body></html>\n'
)


def test_shipped_templates_score_low_with_spamassassin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """Every e-mail step of the shipped campaigns, sent through dripper, scores under 2.0
    with SpamAssassin's local rules; a spammy control message scores high (so this check
    can fail)."""
    if shutil.which("spamassassin") is None:
        pytest.fail("spamassassin is missing: run scripts/test (it installs it) or apt-get install spamassassin")
    monkeypatch.chdir(tmp_path)
    from dripper.campaign.model import FUNNEL_STAGES as stages

    rows = ["email,first_name,last_name,company,stage,timezone,address_line1,city,postal_code,country,product"]
    rows += [
        f"buyer{i}@plant{i}.example,Zoë,Müller,Müller Anlagenbau GmbH,{stage},Europe/Berlin,Hauptstr. 5,"
        f"Stuttgart,70173,DE,stainless valves"
        for i, stage in enumerate(stages)
    ]
    (tmp_path / "leads.csv").write_text("\n".join(rows) + "\n")
    drip = Dripper(
        tmp_path,
        sqlite_url,
        {"DRIPPER_CAMPAIGNS": str(ROOT / "campaigns.yaml"), "DRIPPER_BASE_URL": "https://drip.acme.example"},
    )
    drip("leads", "import", "leads.csv", "--at", T0.isoformat())
    dues = sorted(
        {
            t["due"]
            for i in range(len(stages))
            for t in drip.json("plan", f"buyer{i}@plant{i}.example", "--json")["touches"]
            if t["channel"] == "email"
        }
    )
    for due in dues:
        drip("tick", "--at", due)
    sent = sorted(tmp_path.glob("outbox/*.eml"))
    shipped = json.loads(drip("simulate", "--days", "800", "--json", "--at", T0.isoformat()).stdout)
    assert len(sent) == sum(1 for row in shipped if row["channel"] == "email")  # every e-mail step, once
    box = mailbox.mbox(str(tmp_path / "all.mbox"), create=True)
    for path in sent:
        box.add(mailbox.mboxMessage(path.read_bytes()))
    box.flush()
    ours = _spam_scores(tmp_path / "all.mbox", "--mbox")
    assert len(ours) == len(sent)
    (tmp_path / "control.eml").write_bytes(CONTROL)
    assert _spam_scores(tmp_path / "control.eml")[0] >= 5.0, "the control must be caught, or this test proves nothing"
    worst = max(ours)
    assert worst < 2.0, f"a shipped template scores {worst}"


def _spam_scores(path: Path, *options: str) -> list[float]:
    with open(path, "rb") as handle:
        report = subprocess.run(
            ["spamassassin", "-t", "-L", *options], stdin=handle, capture_output=True, timeout=600
        ).stdout.decode("utf-8", "replace")
    return [float(s) for s in re.findall(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.MULTILINE)]
