"""Several senders (issue 19): identities under `senders:` chosen by the lead's owner, each
e-mail from its identity, signed with its domain's DKIM key; replies matched whatever the
sender, and told to the lead's owner."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import Dripper

from dripper.campaign.model import parse
from dripper.errors import ConfigError

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # inside the send window in Chicago and Berlin
CORPUS = Path(__file__).parent / "corpus" / "own"

SENDERS = """senders:
  alice:
    from: "Alice Smith <alice@acme.example>"
    reply_to: "alice.replies@acme.example"
    signature: {name: Alice Smith, title: Account manager, phone: "+1 217 555 0101"}
    owners: [asmith]
    notify: alice.notes@acme.example
  bob:
    from: "Bob Jones <bob@widgets.example>"
    postal_address: "Widgets GmbH, Hauptstr. 1, 70173 Stuttgart, Germany"
    signature: {name: Bob Jones, title: Vertrieb}
"""

LEADS = """email,first_name,last_name,company,stage,timezone,campaign,owner
ada@lovelace.example,Ada,Lovelace,Engines,supplier_research,America/Chicago,literature-follow-up,asmith
zoe@mueller.example,Zoe,Mueller,Anlagenbau,supplier_research,Europe/Berlin,literature-follow-up,BOB@widgets.example
grace@hopper.example,Grace,Hopper,,supplier_research,,literature-follow-up,nobody-we-know
"""


def with_senders(root: Path, extra: str = SENDERS, campaign_sender: str | None = None) -> None:
    campaigns = root / "campaigns.yaml"
    text = campaigns.read_text().replace("defaults:\n", extra + "defaults:\n", 1)
    if campaign_sender:
        text = text.replace("  literature-follow-up:\n", f"  literature-follow-up:\n    sender: {campaign_sender}\n", 1)
    campaigns.write_text(text)
    (root / "leads.csv").write_text(LEADS)
    base = root / "templates" / "mail" / "base.html"
    base.write_text(
        base.read_text().replace(
            "{{ sender.from_name }}</p>", "{{ sender.from_name }} ({{ sender.signature.title }})</p>"
        )
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """An RSA key per domain (openssl) and the DNS TXT record that publishes each."""
    folder = tmp_path_factory.mktemp("dkim")
    made = {}
    for domain in ("acme.example", "widgets.example"):
        key = folder / f"{domain}.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        public = subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
        ).stdout
        made[domain] = (key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))
    return made


def _sent(dripper: Dripper, **env: str) -> dict[str, bytes]:
    """The e-mails of the first tick, by lead."""
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), **env)
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat(), **env)
    return {p.name.rpartition("_")[2].removesuffix(".eml"): p.read_bytes() for p in Path("outbox").glob("*.eml")}


# --- the model ----------------------------------------------------------------------------


def _model(extra: str = SENDERS, campaign_sender: str | None = None):
    from conftest import FIXTURES

    text = (FIXTURES / "project" / "campaigns.yaml").read_text().replace("defaults:\n", extra + "defaults:\n", 1)
    if campaign_sender:
        text = text.replace("  literature-follow-up:\n", f"  literature-follow-up:\n    sender: {campaign_sender}\n", 1)
    return parse(text, "campaigns.yaml")


def test_an_owner_chooses_by_name_address_or_owners_value_else_the_campaign_default() -> None:
    model = _model()
    pick = lambda owner: model.sender_for("literature-follow-up", owner).key  # noqa: E731
    assert pick("alice") == pick(" ALICE ") == pick("asmith") == pick("alice@acme.example") == "alice"
    assert pick("Bob@Widgets.example") == "bob"
    assert pick("") == pick("   ") == pick("somebody") == ""  # the file's sender:
    assert _model(campaign_sender="bob").sender_for("literature-follow-up", "Sales@acme.example").key == ""
    assert model.sender_for("literature-follow-up", "").address == "sales@acme.example"
    bob = model.sender_for("literature-follow-up", "bob")
    assert bob.postal_address.startswith("Widgets GmbH") and bob.signature.name == "Bob Jones"
    alice = model.sender_for("literature-follow-up", "alice")
    assert alice.postal_address == model.sender.postal_address  # not given: the default's
    defaulted = _model(campaign_sender="bob")
    assert defaulted.sender_for("literature-follow-up", "somebody").key == "bob"
    assert defaulted.sender_for("literature-follow-up", "alice").key == "alice"


def test_a_file_without_senders_is_unchanged() -> None:
    model = _model(extra="")
    assert model.sender_for("literature-follow-up", "alice") is model.sender
    assert model.book.all == (model.sender,)


@pytest.mark.parametrize(
    ("extra", "campaign_sender", "expected"),
    [
        (SENDERS, "carol", r"campaigns.yaml:\d+:\d+: unknown sender 'carol'"),
        (SENDERS, "alicia", r"unknown sender 'alicia' \(did you mean 'alice'\?\)"),
        (SENDERS.replace("owners: [asmith]", "owners: [bob]"), None, r"owner 'bob' would choose both senders"),
        (SENDERS.replace("    notify:", "    notfy:"), None, r"unknown key 'notfy' \(did you mean 'notify'\?\)"),
        (SENDERS.replace("phone:", "phnoe:"), None, r"unknown key 'phnoe' \(did you mean 'phone'\?\)"),
        (SENDERS.replace("  bob:", "  default:"), None, r":\d+:3: 'default' is reserved"),
        (
            SENDERS.replace('"Bob Jones <bob@widgets.example>"', "Bob Jones"),
            None,
            r"from: no e-mail address in 'Bob Jones'",
        ),
        (
            SENDERS.replace("notify: alice.notes@acme.example", "notify: alice"),
            None,
            r"notify: no e-mail address in 'alice'",
        ),
    ],
)
def test_check_locates_sender_mistakes(extra: str, campaign_sender: str | None, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _model(extra, campaign_sender)
    assert re.search(expected, str(caught.value)), str(caught.value)


# --- what goes out ------------------------------------------------------------------------


def test_each_lead_gets_mail_from_its_owners_identity_signed_with_its_domains_key(
    dripper_sqlite: Dripper, keys: dict[str, tuple[Path, bytes]]
) -> None:
    import dkim

    with_senders(dripper_sqlite.root)
    (acme_key, acme_record), (widgets_key, widgets_record) = keys["acme.example"], keys["widgets.example"]
    spec = f"acme.example=s1:{acme_key}, widgets.example=w2:{widgets_key}"
    messages = _sent(dripper_sqlite, DRIPPER_DKIM_KEYS=spec)
    assert set(messages) == {"ada@lovelace.example", "zoe@mueller.example", "grace@hopper.example"}
    records = {b"s1._domainkey.acme.example.": acme_record, b"w2._domainkey.widgets.example.": widgets_record}

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name, b"")

    expected = {
        "ada@lovelace.example": (
            "alice@acme.example",
            "alice.replies@acme.example",
            "acme.example",
            "s1",
            "Account manager",
        ),
        "zoe@mueller.example": ("bob@widgets.example", None, "widgets.example", "w2", "Vertrieb"),
        "grace@hopper.example": ("sales@acme.example", "reply@acme.example", "acme.example", "s1", "()"),
    }
    for lead, data in messages.items():
        address, reply_to, domain, selector, title = expected[lead]
        message = message_from_bytes(data, policy=policy.default)
        assert message["From"].addresses[0].addr_spec == address
        assert (message["Reply-To"] and message["Reply-To"].addresses[0].addr_spec) == reply_to
        assert message["Message-ID"].endswith(f"@{domain}>")
        assert re.fullmatch(rf"bounces\+t\d+-[0-9a-f]{{10}}@{re.escape(domain)}", message["Return-Path"].strip("<>"))
        assert message["Feedback-ID"].endswith(f":{domain}")
        assert title.encode() in data  # the template saw its identity's signature
        assert dkim.verify(data, dnsfunc=dns), f"{lead}: the signature must verify"
        signature = re.sub(r"\s+", "", message["DKIM-Signature"])
        assert f"d={domain};" in signature and f"s={selector};" in signature
        # and with the other domain's key published under this name, it fails
        other = acme_record if domain == "widgets.example" else widgets_record
        assert not dkim.verify(data, dnsfunc=lambda name, timeout=5, other=other: other)
    footer = message_from_bytes(messages["zoe@mueller.example"], policy=policy.default)
    assert "Widgets GmbH" in footer.get_body(("plain",)).get_content()  # its own postal address


def test_keys_from_a_directory_and_the_single_key_for_the_other_domains(
    dripper_sqlite: Dripper, keys: dict[str, tuple[Path, bytes]], tmp_path: Path
) -> None:
    import dkim

    with_senders(dripper_sqlite.root)
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "widgets.example.w2.pem").write_bytes(keys["widgets.example"][0].read_bytes())
    messages = _sent(
        dripper_sqlite,
        DRIPPER_DKIM_KEYS=str(folder),
        DRIPPER_DKIM_KEY=str(keys["acme.example"][0]),
        DRIPPER_DKIM_SELECTOR="legacy",
    )
    records = {
        b"legacy._domainkey.acme.example.": keys["acme.example"][1],
        b"w2._domainkey.widgets.example.": keys["widgets.example"][1],
    }
    for data in messages.values():
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: records.get(name, b""))
    assert b"d=widgets.example" in messages["zoe@mueller.example"]


def test_a_bad_key_list_stops_the_tick_with_a_clear_message(dripper_sqlite: Dripper) -> None:
    with_senders(dripper_sqlite.root)
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    result = dripper_sqlite(
        "tick", "--at", (T0 + timedelta(days=1)).isoformat(), ok=1, DRIPPER_DKIM_KEYS="acme.example=nokeypath"
    )
    assert "DRIPPER_DKIM_KEYS: 'acme.example=nokeypath': write each key as DOMAIN=SELECTOR:PATH" in result.stderr


def test_check_warns_about_a_sending_domain_without_a_key(
    dripper_sqlite: Dripper, keys: dict[str, tuple[Path, bytes]]
) -> None:
    with_senders(dripper_sqlite.root)
    acme = f"acme.example=s1:{keys['acme.example'][0]}"
    warned = dripper_sqlite("check", DRIPPER_DKIM_KEYS=acme).stderr
    assert re.search(
        r"campaigns.yaml:\d+:11: warning: sender 'bob' sends from widgets.example, which has no DKIM key", warned
    )
    assert "acme.example" not in warned.replace("widgets.example", "")
    both = f"{acme},widgets.example=w2:{keys['widgets.example'][0]}"
    assert "DKIM" not in dripper_sqlite("check", DRIPPER_DKIM_KEYS=both).stderr
    assert "DKIM" not in dripper_sqlite("check").stderr  # DKIM off: nothing to say


def test_a_reassigned_owner_takes_effect_from_the_next_touch(dripper_sqlite: Dripper) -> None:
    with_senders(dripper_sqlite.root)
    first = _sent(dripper_sqlite)["ada@lovelace.example"]
    assert b"From: Alice Smith <alice@acme.example>" in first
    added = dripper_sqlite("leads", "add", "ada@lovelace.example", "--attr", "owner=bob", "--at", T0.isoformat())
    assert "names no sender" not in added.stderr
    unknown = dripper_sqlite("leads", "add", "new@lead.example", "--attr", "owner=carol", "--at", T0.isoformat())
    assert "dripper: warning: owner 'carol' names no sender under senders:" in unknown.stderr
    dripper_sqlite("tick", "--at", (T0 + timedelta(days=16)).isoformat())
    reminder = next(Path("outbox").glob("*_reminder-1_ada@lovelace.example.eml")).read_bytes()
    assert b"From: Bob Jones <bob@widgets.example>" in reminder


def test_a_reply_to_any_sender_is_matched_and_told_to_the_leads_owner(dripper_sqlite: Dripper, tmp_path: Path) -> None:
    with_senders(dripper_sqlite.root)
    sent = _sent(dripper_sqlite)
    for lead in ("ada@lovelace.example", "zoe@mueller.example"):
        ours = message_from_bytes(sent[lead], policy=policy.default)
        reply = (CORPUS / "reply.eml").read_text().replace("<MSGID@acme.example>", ours["Message-ID"])
        reply = re.sub(
            r"(?m)^Message-ID: .*$", f"Message-ID: <reply-{lead}>", reply.replace("zoe@mueller.example", lead)
        )
        path = tmp_path / f"reply-{lead}.eml"
        path.write_text(reply)
        out = dripper_sqlite("ingest", str(path), "--json", "--at", (T0 + timedelta(days=2)).isoformat())
        [result] = [json.loads(line) for line in out.stdout.splitlines()]
        assert (result["kind"], result["lead"], result["matched_by"]) == ("reply", lead, "in_reply_to")
        told = "alice.notes@acme.example" if lead.startswith("ada") else "bob@widgets.example"
        assert f"forwarded to {told}" in result["effect"]
    forwards = sorted(Path("outbox").glob("reply-from_*.eml"))
    recipients = {message_from_bytes(p.read_bytes(), policy=policy.default)["To"] for p in forwards}
    assert recipients == {"alice.notes@acme.example", "bob@widgets.example"}


def test_a_bounce_to_another_domains_verp_address_is_matched(dripper_sqlite: Dripper, tmp_path: Path) -> None:
    with_senders(dripper_sqlite.root)
    ours = message_from_bytes(_sent(dripper_sqlite)["zoe@mueller.example"], policy=policy.default)
    verp = ours["Return-Path"].strip("<>")
    assert verp.endswith("@widgets.example")
    dsn = (CORPUS / "dsn-hard-511.eml").read_text()
    dsn = re.sub(r"bounces\+t\d+-0{10}@acme\.example", verp, dsn).replace("<MSGID@acme.example>", "<x@y>")
    path = tmp_path / "dsn.eml"
    path.write_text(dsn)
    out = dripper_sqlite("ingest", str(path), "--json", "--at", (T0 + timedelta(days=2)).isoformat())
    [result] = [json.loads(line) for line in out.stdout.splitlines()]
    assert (result["kind"], result["lead"], result["matched_by"]) == ("bounce_hard", "zoe@mueller.example", "verp")


def test_rate_limits_per_sender(dripper: Dripper) -> None:
    """Counted in the store, for all workers together: on SQLite and PostgreSQL."""
    dripper_sqlite = dripper
    with_senders(dripper_sqlite.root)
    campaigns = dripper_sqlite.root / "campaigns.yaml"
    limits = 'limits:\n  per_sender:\n    alice: "2/h"\n    default: ["3/min"]\n'
    campaigns.write_text(campaigns.read_text().replace("campaigns:\n", limits + "campaigns:\n", 1))
    owners = {"a": "alice", "b": "bob", "n": ""}
    rows = [f"{o}{i}@x{i}.example,N,supplier_research,{owner}\n" for o, owner in owners.items() for i in range(5)]
    (dripper_sqlite.root / "many.csv").write_text("email,first_name,stage,owner\n" + "".join(rows))
    dripper_sqlite("check")
    dripper_sqlite("leads", "import", "many.csv", "--at", T0.isoformat())
    counts = dripper_sqlite.json("tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json")
    sent = [p.name.rpartition("_")[2] for p in Path("outbox").glob("*.eml")]
    assert [sum(n.startswith(o) for n in sent) for o in owners] == [2, 3, 3]  # alice 2/h, bob and sender 3/min
    assert counts["sent"] == 8 and counts["deferred"] == 7
    firsts = [dripper_sqlite.json("plan", f"a{i}@x{i}.example", "--json")["touches"][0] for i in range(5)]
    waiting = [t for t in firsts if t["state"] == "planned"]  # which ones: the claim order decides
    assert len(waiting) == 3 and {t["reason"] for t in waiting} == {"rate_limited: sender:alice 2/h"}


def test_per_sender_limits_name_known_senders(dripper_sqlite: Dripper) -> None:
    with_senders(dripper_sqlite.root)
    campaigns = dripper_sqlite.root / "campaigns.yaml"
    limits = 'limits:\n  per_sender:\n    alcie: "2/h"\n'
    campaigns.write_text(campaigns.read_text().replace("campaigns:\n", limits + "campaigns:\n", 1))
    result = dripper_sqlite("check", ok=1)
    assert re.search(r"campaigns.yaml:\d+:5: unknown sender 'alcie' \(did you mean 'alice'\?\)", result.stderr)


def test_letters_and_calls_use_the_owners_identity(dripper_sqlite: Dripper) -> None:
    """A letter's return address and signature block come from the chosen identity; a call
    to a lead without an owner goes to the campaign's named sender."""
    root = dripper_sqlite.root
    with_senders(root, campaign_sender="bob")
    campaigns = root / "campaigns.yaml"
    call = (
        "        - id: call-1\n          after: 0d\n          channel: call\n          kind: follow_up\n"
        "          template: calls/call.html\n"
    )
    campaigns.write_text(
        campaigns.read_text().replace("        - id: reminder-1\n", call + "        - id: reminder-1\n", 1)
    )
    (root / "templates" / "calls").mkdir()
    (root / "templates" / "calls" / "call.html").write_text(
        "<p>Call {{ lead.first_name }} for {{ sender.signature.name }}.</p>\n"
    )
    letter = root / "templates" / "letters" / "follow_up.html"
    letter.write_text(letter.read_text().replace("</body>", "<p class=signer>{{ sender.signature.name }}</p></body>"))
    dripper_sqlite("check")
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper_sqlite("leads", "add", "linus@torvalds.example", "--stage", "supplier_research", "--at", T0.isoformat())
    dripper_sqlite("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    calls = {c["email"]: c for c in dripper_sqlite.json("calls", "--date", "all", "--json")}
    assert calls["linus@torvalds.example"]["owner"] == "bob"  # the campaign's sender
    assert calls["ada@lovelace.example"]["owner"] == "asmith"  # the lead's own owner
    assert "for Alice Smith." in calls["ada@lovelace.example"]["talking_points"]
    assert "for Bob Jones." in calls["linus@torvalds.example"]["talking_points"]

    from dripper.channels.compose import Composer
    from dripper.config import load
    from dripper.leads.records import Lead
    from dripper.settings import Settings

    loaded = load(Settings(campaigns_path=campaigns))
    campaign = loaded.campaigns.campaigns["literature-follow-up"]
    step = campaign.step("letter-1")[1]  # type: ignore[index]
    address = {"address_line1": "1 Engine Way", "city": "Springfield", "postal_code": "62701", "country": "US"}
    composer = Composer(loaded, "https://x.example", "secret")
    for owner, signer, returned in (("alice", "Alice Smith", "Acme Inc."), ("bob", "Bob Jones", "Widgets GmbH")):
        view = Lead(
            "ada@x.example",
            "supplier_research",
            campaign.name,
            "Ada",
            timezone="UTC",
            attrs={"owner": owner},
            **address,
        )
        html = composer.letter(view, campaign, step, T0).html
        assert f'<p class="signer">{signer}</p>' in html and returned in html


def test_import_warns_about_an_owner_that_names_no_sender(dripper_sqlite: Dripper) -> None:
    with_senders(dripper_sqlite.root)
    result = dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    assert "leads.csv:4: warning: owner 'nobody-we-know' names no sender" in result.stderr
    assert result.stderr.count("names no sender") == 1 and "3 lead(s) imported" in result.stdout


def test_a_key_that_cannot_be_read_stops_run_and_preview(dripper_sqlite: Dripper, tmp_path: Path) -> None:
    with_senders(dripper_sqlite.root)
    missing = f"widgets.example=w2:{tmp_path / 'nowhere.pem'}"
    for args in (("run",), ("preview", "literature-follow-up", "thanks"), ("check",)):
        result = dripper_sqlite(*args, ok=1, DRIPPER_DKIM_KEYS=missing)
        assert "DRIPPER_DKIM_KEYS: cannot read the key of widgets.example" in result.stderr, args


def test_the_render_workers_sign_each_sender_with_its_key(
    dripper_sqlite: Dripper, keys: dict[str, tuple[Path, bytes]]
) -> None:
    """At 200 due or more, render worker processes compose: they choose and sign alike."""
    import dkim

    with_senders(dripper_sqlite.root)
    owners = ["alice", "bob", ""]
    rows = [f"l{i}@x{i % 9}.example,N,supplier_research,{owners[i % 3]}\n" for i in range(210)]
    (dripper_sqlite.root / "many.csv").write_text("email,first_name,stage,owner\n" + "".join(rows))
    spec = f"acme.example=s1:{keys['acme.example'][0]},widgets.example=w2:{keys['widgets.example'][0]}"
    env = {"DRIPPER_DKIM_KEYS": spec, "DRIPPER_RENDER_PROCESSES": "1"}
    dripper_sqlite("leads", "import", "many.csv", "--at", T0.isoformat(), **env)
    assert dripper_sqlite.json("tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json", **env)["sent"] == 210
    records = {
        b"s1._domainkey.acme.example.": keys["acme.example"][1],
        b"w2._domainkey.widgets.example.": keys["widgets.example"][1],
    }
    froms = {}
    for path in Path("outbox").glob("*.eml"):
        data = path.read_bytes()
        lead = int(path.name.rpartition("_")[2].split("@")[0][1:])
        froms[lead] = message_from_bytes(data, policy=policy.default)["From"].addresses[0].addr_spec
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: records.get(name, b"")), path.name
    expected = ["alice@acme.example", "bob@widgets.example", "sales@acme.example"]
    assert froms == {i: expected[i % 3] for i in range(210)}


def test_the_shipped_templates_sign_as_the_chosen_sender(tmp_path: Path) -> None:
    """The shipped e-mail base signs with `sender.signature`, and as the team without one."""
    import shutil

    from dripper.campaign.templates import sample_lead
    from dripper.channels.compose import Composer
    from dripper.config import load
    from dripper.settings import Settings

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "templates", tmp_path / "templates")
    text = (root / "campaigns.yaml").read_text()
    (tmp_path / "campaigns.yaml").write_text(text.replace("\ndefaults:\n", "\n" + SENDERS + "defaults:\n", 1))
    # The shipped e-mails sign as named people; one that keeps the base's signature block:
    first = next(
        x
        for t in load(Settings(campaigns_path=tmp_path / "campaigns.yaml"))
        .campaigns.campaigns["literature-follow-up"]
        .stages.values()
        for x in t
        if x.channel == "email"
    )
    (tmp_path / "templates" / first.template).write_text(
        '{% extends "email/base.html" %}{% block content %}<p>News.</p>{% endblock %}'
    )
    loaded = load(Settings(campaigns_path=tmp_path / "campaigns.yaml"))
    campaign = loaded.campaigns.campaigns["literature-follow-up"]
    stage, step = next((s, x) for s, t in campaign.stages.items() for x in t if x.id == first.id)
    composer = Composer(loaded, "https://x.example", "secret")
    lead = sample_lead(loaded.campaigns)
    for owner, shown in (("alice", "Alice Smith"), ("", "The Acme Sales Team")):
        view = replace(lead, stage=stage, attrs={**lead.attrs, "owner": owner})
        html = composer.loaded.renderer.email(campaign, step, composer.context(view, campaign, step, T0)[0]).html
        assert shown in html, owner
        assert ("Account manager" in html) == bool(owner)


def test_check_locates_a_signature_field_a_sender_does_not_have(dripper_sqlite: Dripper) -> None:
    with_senders(dripper_sqlite.root)
    thanks = dripper_sqlite.root / "templates" / "mail" / "thanks.html"
    thanks.write_text(thanks.read_text() + "\n<p>{{ sender.signature.phnoe }}</p>\n")
    lines = thanks.read_text().count("\n")
    result = dripper_sqlite("check", ok=1)
    expected = f"thanks.html:{lines}:1: variable sender.signature.phnoe that it does not have (did you mean 'phone'?)"
    assert expected in result.stderr, result.stderr
    thanks.write_text(thanks.read_text().replace("phnoe", "phone"))
    dripper_sqlite("check")


def test_a_test_send_and_the_preview_page_come_from_the_leads_sender(dripper_sqlite: Dripper) -> None:
    with_senders(dripper_sqlite.root)
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    preview = ("preview", "literature-follow-up", "thanks", "--lead", "zoe@mueller.example")
    dripper_sqlite(*preview, "--to", "tester@example.org", "--at", T0.isoformat())
    [test_file] = Path("outbox").glob("test_*.eml")
    message = message_from_bytes(test_file.read_bytes(), policy=policy.default)
    assert message["From"].addresses[0].addr_spec == "bob@widgets.example"
    assert message["Return-Path"] == "<bounces@widgets.example>" and message["Message-ID"].endswith("@widgets.example>")
    page = Path("bob-page.html")
    dripper_sqlite(*preview, "--open", "--out", str(page), "--at", T0.isoformat(), DRIPPER_NO_BROWSER="1")
    assert ">Bob Jones &lt;bob@widgets.example&gt;</td>" in page.read_text()  # the From shown above the mail
