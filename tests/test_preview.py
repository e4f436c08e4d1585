"""Previews and test sends: `preview --open` (a file, a browser when there is one),
`preview --to` (a marked test through SMTP or the outbox that records nothing, and whose
links unsubscribe nobody), and `simulate --html` (a page with a picture per track).

No test launches a browser: DRIPPER_NO_BROWSER=1 is set, or `webbrowser.get` is replaced."""

from __future__ import annotations

import subprocess
import webbrowser
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from click.testing import Result
from conftest import Dripper
from starlette.testclient import TestClient

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
CAMPAIGN = "literature-follow-up"
NO_BROWSER = {"DRIPPER_NO_BROWSER": "1"}
CALL = "<p>Call {{ lead.first_name }} about {{ lead.company }} and ask whether the {{ lead.attrs.product | default('kit') }} arrived.</p>"


def iso(t: datetime) -> str:
    return t.isoformat()


@pytest.fixture(autouse=True)
def no_real_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test does, no real browser can be started from it."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a test tried to start a real browser")

    monkeypatch.setattr(webbrowser, "get", refuse)
    monkeypatch.setattr(webbrowser, "open", refuse)


def dump(db_url: str) -> dict[str, list[str]]:
    """Every row of every table, so that a comparison shows any write at all."""
    from sqlalchemy import create_engine, select

    from dripper.store.tables import metadata

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {t.name: sorted(repr(tuple(row)) for row in conn.execute(select(t))) for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def with_limits(project: Path) -> None:
    """Sending limits on, so that the send counters have rows a test send could touch."""
    path = project / "campaigns.yaml"
    path.write_text(path.read_text().replace("defaults:\n", 'limits: {daily_cap: 100, rate: ["50/min"]}\ndefaults:\n'))


def with_call_step(project: Path) -> None:
    (project / "templates" / "mail" / "call.html").write_text(CALL)
    path = project / "campaigns.yaml"
    path.write_text(
        path.read_text().replace(
            "          template: letters/follow_up.html\n",
            """\
          template: letters/follow_up.html
        - id: call-1
          after: 5w
          channel: call
          kind: follow_up
          template: mail/call.html
""",
            1,
        )
    )


def sent_and_counted(dripper: Dripper, **env: str) -> None:
    """Three leads, their first e-mails sent (touch rows, send counters) and an event."""
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    assert dripper.json("tick", "--at", iso(T0 + timedelta(days=1)), "--json", **env)["sent"] == 3
    dripper("event", "grace@hopper.example", "replied", "--at", iso(T0 + timedelta(days=2)))


def page(path: Path) -> Any:
    return lxml.html.fromstring(path.read_bytes())


# --- --open ---------------------------------------------------------------------------------
def test_open_writes_the_email_as_a_page_and_prints_its_path(dripper: Dripper) -> None:
    from dripper.tokens import Tokens

    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    before = dump(dripper.db_url)
    result = dripper(
        "preview", CAMPAIGN, "thanks", "--lead", "zoe@mueller.example", "--open", "--at", iso(T0), **NO_BROWSER
    )
    path = Path(result.stdout.strip())
    assert path == Path("previews") / f"{CAMPAIGN}_thanks_zoe@mueller.example.html" and path.is_file()
    doc = page(path)
    assert doc.findtext(".//title") == "Your product information pack"
    header = doc.find_class("dripper-preview")[0].text_content()
    assert "Your product information pack" in header
    assert "Acme Sales <sales@acme.example>" in header and "Zoë Müller <zoe@mueller.example>" in header
    assert "Mon, 05 Jan 2026 16:00 CET" in header  # the lead's own clock
    body = doc.text_content()
    assert "Hello Zoë" in body and "Thank you for asking about our products" in body
    assert "Acme Inc., 1 Main St" in body  # the footer, as in the message
    # The CSS is inlined as in the message itself; the page brings no script.
    assert "background:#0b4f8a" in path.read_text().replace(" ", "") and not doc.xpath("//script")
    links = [a.get("href") for a in doc.xpath("//a") if "/u/" in a.get("href") or "/p/" in a.get("href")]
    assert links
    tokens = Tokens("test-secret")
    for link in links:
        token = link.rsplit("/", 1)[1]
        assert tokens.read_test(token) is not None and tokens.read(token) is None  # unsubscribes no one
    assert dump(dripper.db_url) == before


def test_open_writes_a_letter_as_the_printed_pdf(dripper: Dripper) -> None:
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    out = Path("ada-letter.pdf")
    result = dripper(
        "preview",
        CAMPAIGN,
        "letter-1",
        "--lead",
        "ada@lovelace.example",
        "--open",
        "--out",
        str(out),
        "--at",
        iso(T0),
        **NO_BROWSER,
    )
    assert result.stdout.strip() == str(out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(out), "-"], check=True, capture_output=True, text=True).stdout
    assert "1 Engine Way" in text and "62701" in text and "Lovelace" in text
    default = dripper("preview", CAMPAIGN, "letter-1", "--lead", "ada@lovelace.example", "--open", **NO_BROWSER)
    assert default.stdout.strip() == f"previews/{CAMPAIGN}_letter-1_ada@lovelace.example.pdf"
    assert Path(default.stdout.strip()).read_bytes().startswith(b"%PDF")


def test_open_writes_a_call_as_its_talking_points(dripper: Dripper, project: Path) -> None:
    with_call_step(project)
    dripper(
        "leads",
        "add",
        "cy@caller.example",
        "--first-name",
        "Cy",
        "--last-name",
        "Caller",
        "--company",
        "Caller Pumps",
        "--attr",
        "phone=+1 217 555 0199",
        "--attr",
        "owner=Marcus",
        "--at",
        iso(T0),
    )
    result = dripper("preview", CAMPAIGN, "call-1", "--lead", "cy@caller.example", "--open", **NO_BROWSER)
    path = Path(result.stdout.strip())
    assert path.suffix == ".html"
    doc = page(path)
    assert doc.findtext(".//h1") == "Call Cy Caller: call-1"
    details = {tr.findtext("th"): tr.findtext("td") for tr in doc.xpath("//table//tr")}
    assert (
        details["Phone"] == "+1 217 555 0199" and details["Owner"] == "Marcus" and details["Company"] == "Caller Pumps"
    )
    points = doc.find_class("points")[0].text_content()
    assert "Call Cy about Caller Pumps and ask whether the kit arrived." in points
    # --format that is not what --open writes for the channel is refused, clearly.
    bad = dripper("preview", CAMPAIGN, "call-1", "--open", "--format", "text", ok=1, **NO_BROWSER)
    assert "--open writes call steps as HTML" in bad.stderr


def test_open_hands_the_file_to_a_browser_only_when_there_is_one(
    dripper_sqlite: Dripper, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    class Browser:
        name = "firefox"

        def open(self, uri: str) -> bool:
            opened.append(uri)
            return True

    monkeypatch.setattr(webbrowser, "get", lambda *a: Browser())
    monkeypatch.setenv("DISPLAY", ":0")
    result = dripper_sqlite("preview", CAMPAIGN, "reminder-1", "--open")  # the sample lead
    path = Path(result.stdout.strip())
    assert opened == [path.resolve().as_uri()] and path.is_file()
    assert "opened it in your browser" in result.stderr
    # No display: just the path, and a browser is not even looked for.
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = dripper_sqlite("preview", CAMPAIGN, "reminder-1", "--open")
    assert result.stdout.strip() == str(path) and len(opened) == 1 and result.stderr == ""
    # DRIPPER_NO_BROWSER wins over a display.
    monkeypatch.setenv("DISPLAY", ":0")
    dripper_sqlite("preview", CAMPAIGN, "reminder-1", "--open", **NO_BROWSER)
    assert len(opened) == 1


def test_browser_opener_refuses_console_browsers_and_missing_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from dripper.reports.previews import browser_opener

    class Lynx:
        name = "lynx"

        def open(self, uri: str) -> bool:
            raise AssertionError("a console browser would take over the terminal")

    monkeypatch.setattr(webbrowser, "get", lambda *a: Lynx())
    assert browser_opener({"DISPLAY": ":0"}, "linux") is None
    assert browser_opener({}, "linux") is None

    def missing(*a: Any) -> Any:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", missing)
    assert browser_opener({"DISPLAY": ":0"}, "linux") is None
    assert browser_opener({}, "darwin") is None

    class Broken:
        name = "xdg-open"

        def open(self, uri: str) -> bool:
            raise OSError("exec failed")

    monkeypatch.setattr(webbrowser, "get", lambda *a: Broken())
    opener = browser_opener({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert opener is not None and opener("file:///x.html") is False  # never fails for want of a browser


# --- --to -------------------------------------------------------------------------------------
def web_client(dripper: Dripper) -> Iterator[TestClient]:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    app = create_app(WebContext(store, loaded, Tokens("test-secret"), FrozenClock(T0 + timedelta(days=3)), "api-123"))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        store.dispose()


def check_test_message(data: bytes, to: str, real_message_id: str) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == "[TEST] Your valves information pack"  # rendered for Ada (her product)
    assert msg["X-Dripper-Test"] == "yes"
    assert msg["To"] == to
    assert msg["Message-ID"] != real_message_id and msg["Message-ID"].startswith("<test.")
    assert "Feedback-ID" not in msg
    text = msg.get_body(("plain",)).get_content()
    assert "Hello Ada" in text and "valves" in text
    return msg


def follow_the_links(dripper: Dripper, msg: EmailMessage) -> None:
    """The one-click POST, the unsubscribe page and the preference page of a test answer
    "this was a test message" and change nothing."""
    url = msg["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    unsubscribe = url.removeprefix("http://127.0.0.1:8000")
    html = msg.get_body(("html",)).get_content()
    preferences = next(
        a.get("href") for a in lxml.html.fromstring(html).xpath("//a") if "/p/" in a.get("href")
    ).removeprefix("http://127.0.0.1:8000")
    for client in web_client(dripper):
        for response in (
            client.get(unsubscribe),
            client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}),
            client.get(preferences),
            client.post(preferences, data={"choice": "all", "months": "1"}),
            client.post(preferences, data={"choice": "pause", "months": "3"}),
        ):
            assert response.status_code == 200, response.text
            assert "This was a test message; nothing changed." in response.text
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "active"


def real_message_id(dripper: Dripper, email: str, step: str) -> str:
    touch = next(t for t in dripper.json("plan", email, "--json")["touches"] if t["step"] == step)
    assert touch["state"] == "sent" and touch["message_id"]
    return touch["message_id"]


def send_test(dripper: Dripper, to: str, **env: str) -> Result:
    """`preview --to` of the `thanks` e-mail Ada is sent, three days after the import."""
    return dripper(
        "preview",
        CAMPAIGN,
        "thanks",
        "--lead",
        "ada@lovelace.example",
        "--to",
        to,
        "--at",
        iso(T0 + timedelta(days=3)),
        **env,
    )


def test_to_over_smtp_sends_a_marked_test_that_records_nothing(dripper: Dripper, project: Path, smtp_sink) -> None:
    with_limits(project)
    sent_and_counted(dripper, DRIPPER_SMTP_URL=smtp_sink.url)
    real = real_message_id(dripper, "ada@lovelace.example", "thanks")
    smtp_sink.messages.clear()
    before = dump(dripper.db_url)
    assert before["send_counters"] and before["events"] and before["touches"]
    result = send_test(dripper, "Tester@Example.org", DRIPPER_SMTP_URL=smtp_sink.url)
    assert "to tester@example.org via SMTP: " in result.stdout
    assert len(smtp_sink.messages) == 1
    received = smtp_sink.messages[0]
    assert received.rcpt_tos == ["tester@example.org"] and received.mail_from == "bounces@acme.example"
    msg = check_test_message(received.data, "tester@example.org", real)
    assert msg["Message-ID"] in result.stdout
    assert dump(dripper.db_url) == before  # no touch, no event, no send counter, nothing
    follow_the_links(dripper, msg)
    assert dump(dripper.db_url) == before
    # Two tests are two messages, each with its own Message-ID.
    send_test(dripper, "tester@example.org", DRIPPER_SMTP_URL=smtp_sink.url)
    ids = {message_from_bytes(m.data, policy=policy.default)["Message-ID"] for m in smtp_sink.messages}
    assert len(ids) == 2 and real not in ids


def test_to_through_the_file_outbox_writes_its_own_file_and_records_nothing(dripper: Dripper, project: Path) -> None:
    with_limits(project)
    sent_and_counted(dripper)
    real = real_message_id(dripper, "ada@lovelace.example", "thanks")
    [real_file] = Path("outbox").glob(f"*_{CAMPAIGN}_thanks_ada@lovelace.example.eml")  # TOUCH-ID_CAMPAIGN_STEP_LEAD
    real_bytes = real_file.read_bytes()
    files = set(Path("outbox").iterdir())
    before = dump(dripper.db_url)
    result = send_test(dripper, "tester@example.org")
    new = set(Path("outbox").iterdir()) - files
    assert len(new) == 1 and real_file.read_bytes() == real_bytes  # never the real touch's file
    test_file = new.pop()
    assert test_file.name.startswith(f"test_{CAMPAIGN}_thanks_tester@example.org_") and str(test_file) in result.stdout
    data = test_file.read_bytes()
    assert data.startswith(b"Return-Path: <bounces@acme.example>\r\n")
    msg = check_test_message(data, "tester@example.org", real)
    assert dump(dripper.db_url) == before
    follow_the_links(dripper, msg)
    assert dump(dripper.db_url) == before


def test_to_refuses_what_it_cannot_send(dripper_sqlite: Dripper, project: Path) -> None:
    with_call_step(project)
    for args, says in (
        (("letter-1", "--to", "t@example.org"), "--to sends e-mail steps; 'letter-1' is a letter step"),
        (("call-1", "--to", "t@example.org"), "'call-1' is a call step"),
        (("thanks", "--to", "not-an-address"), "--to 'not-an-address' is not a valid e-mail address"),
        (("thanks", "--to", "t@example"), "is not a valid e-mail address"),
        (("thanks", "--to", "Tess <t@example.org>"), "give the bare address"),
        (("thanks", "--to", "t@example.org", "--open"), "use one at a time"),
        (("thanks", "--to", "t@example.org", "--format", "eml"), "--format and --out do not apply"),
        (("thanks", "--to", "t@example.org", "--out", "x.eml"), "--format and --out do not apply"),
    ):
        result = dripper_sqlite("preview", CAMPAIGN, *args, ok=1, **NO_BROWSER)
        assert says in result.stderr, (args, result.stderr)
    assert not Path("outbox").exists() and not Path("previews").exists()
    # An SMTP server that is not there: a clear error, exit 1.
    from conftest import free_port

    down = dripper_sqlite(
        "preview",
        CAMPAIGN,
        "thanks",
        "--to",
        "t@example.org",
        ok=1,
        DRIPPER_SMTP_URL=f"smtp://127.0.0.1:{free_port()}?timeout=5",
    )
    assert "the test to t@example.org was not sent: connection" in down.stderr


def test_test_tokens_are_never_lead_tokens() -> None:
    from dripper.tokens import Tokens

    tokens = Tokens("s3cret")
    test, real = tokens.make_test(7, CAMPAIGN), tokens.make(7, CAMPAIGN)
    assert tokens.read(test) is None and tokens.read_test(real) is None
    assert tokens.read_test(test) is not None and tokens.read_test(test).lead_id == 7  # type: ignore[union-attr]
    assert Tokens("other").read_test(test) is None
    assert tokens.read_test(test[:-2] + ("A" if test[-1] != "A" else "B")) is None


# --- simulate --html --------------------------------------------------------------------------
STEPS = {
    "supplier_research": ["thanks", "reminder-1", "letter-1", "news-1", "offer-1", "monthly-4", "monthly-6"],
    "lost_to_competitor": ["lost-1"],
    "customer": ["welcome-customer"],
}


def test_simulate_html_has_a_picture_per_track_and_every_step(dripper_sqlite: Dripper) -> None:
    from dripper.reports.charts import PALETTE

    result = dripper_sqlite("simulate", "--html", "timeline.html", "--at", iso(T0))
    assert "reminder-1" in result.stdout and "wrote timeline.html" in result.stderr  # the table as before
    text = Path("timeline.html").read_text()
    doc = lxml.html.fromstring(text)
    sections = doc.xpath("//section")
    assert [s.findtext("h2") for s in sections] == [f"{CAMPAIGN} · {stage}" for stage in STEPS]
    for section, (_stage, steps) in zip(sections, STEPS.items(), strict=False):
        assert len(section.xpath(".//svg")) == 1
        assert [tr.xpath("td")[2].text for tr in section.xpath(".//table//tr")[1:]] == steps
        marks = section.xpath(".//svg//circle[title]")
        assert [m.findtext("title").split(": ", 1)[1].split(" (")[0] for m in marks] == steps
    # Coloured by channel, the same on every chart: the letter is not the e-mails' colour.
    letter = next(m for m in doc.xpath("//svg//circle[title]") if "letter-1" in m.findtext("title"))
    emails = {m.get("fill") for m in doc.xpath("//svg//circle[title]") if "(email)" in m.findtext("title")}
    assert emails == {PALETTE[0]} and letter.get("fill") == PALETTE[1]
    first = sections[0].xpath(".//table//tr")[2].xpath("td")
    assert [c.text for c in first] == [
        "14",
        "Mon 2026-01-19 09:00",
        "reminder-1",
        "email",
        "reminder",
        "Anything else we can send you, Sam?",
    ]
    # Self-contained: no script, nothing fetched (the only URL is the SVG namespace).
    assert not doc.xpath("//script | //link | //img | //iframe | //*[@src] | //*[@href]")
    assert text.replace("http://www.w3.org/2000/svg", "").count("http") == 0


def test_simulate_html_with_json_and_one_stage(dripper_sqlite: Dripper) -> None:
    rows = dripper_sqlite.json(
        "simulate", "--stage", "supplier_research", "--days", "50", "--json", "--html", "t.html", "--at", iso(T0)
    )
    assert [r["step"] for r in rows] == ["thanks", "reminder-1", "letter-1", "news-1"]
    doc = lxml.html.fromstring(Path("t.html").read_bytes())
    assert len(doc.xpath("//svg")) == 1 and "the first 50 days" in doc.text_content()
    short = dripper_sqlite(
        "simulate", "--stage", "lost_to_competitor", "--days", "30", "--html", "e.html", "--at", iso(T0)
    )
    empty = lxml.html.fromstring(Path("e.html").read_bytes())
    assert len(empty.xpath("//svg")) == 1 and "No touches in the first 30 days." in empty.text_content()
    assert short.exit_code == 0
