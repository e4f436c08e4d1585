"""The e-mail dripper produces, built through the real pipeline and parsed back with the
stdlib: headers, encoding, List-Unsubscribe, MIME structure, CSS inlining, the footer,
line lengths and header injection."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

BASE = "https://drip.acme.example"
CAMPAIGN = "literature-follow-up"
POSTAL = "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
T_IMPORT = "2026-01-05T08:00:00Z"
T_TICK = "2026-01-06T15:00:00Z"  # 09:00 in Chicago, 16:00 in Berlin: inside the send window
AT = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)  # T_TICK


# --- helpers -----------------------------------------------------------------------------


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def raw_header_lines(data: bytes) -> list[bytes]:
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    return re.split(rb"\r?\n", head)


def raw_header(data: bytes, name: str) -> list[bytes]:
    """The raw physical lines of header `name` (its first line and any continuation lines)."""
    lines = raw_header_lines(data)
    out: list[bytes] = []
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower().encode() + b":"):
            out.append(line)
            for more in lines[i + 1 :]:
                if more[:1] in (b" ", b"\t"):
                    out.append(more)
                else:
                    break
    return out


def header_names(data: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode("ascii") for line in raw_header_lines(data) if line[:1] not in (b" ", b"\t")]


def parts(msg: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    assert msg.get_content_type() == "multipart/alternative"
    subparts = list(msg.iter_parts())
    assert [p.get_content_type() for p in subparts] == ["text/plain", "text/html"]
    return subparts[0], subparts[1]  # type: ignore[return-value]


class Elements(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def where(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture
def drip(dripper_sqlite):
    dripper_sqlite.env["DRIPPER_BASE_URL"] = BASE
    return dripper_sqlite


def ticked(drip, project: Path) -> dict[str, bytes]:
    """Import the fixture leads and tick once: {email: .eml bytes of the 'thanks' touch}."""
    drip("leads", "import", "leads.csv", "--at", T_IMPORT)
    assert drip.json("tick", "--at", T_TICK, "--json")["sent"] == 3
    files = sorted((project / "outbox").glob("*.eml"))
    assert len(files) == 3
    out = {}
    for path in files:
        data = path.read_bytes()
        out[parse(data)["To"].addresses[0].addr_spec] = data
    assert set(out) == {"ada@lovelace.example", "zoe@mueller.example", "grace@hopper.example"}
    return out


def preview(drip, step: str, lead: str, at: str = T_TICK) -> bytes:
    result = drip("preview", CAMPAIGN, step, "--lead", lead, "--format", "eml", "--at", at)
    return result.stdout_bytes


# --- headers -----------------------------------------------------------------------------


# The headers of a message, in the order build_email writes them.
EXPECTED_HEADERS = [
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
]


def test_headers_of_a_sent_message(drip, project: Path) -> None:
    data = ticked(drip, project)["ada@lovelace.example"]
    msg = parse(data)
    assert msg["From"] == "Acme Sales <sales@acme.example>"
    assert msg["Reply-To"] == "reply@acme.example"
    assert msg["To"] == "Ada Lovelace <ada@lovelace.example>"
    assert msg["Subject"] == "Your valves information pack"
    assert msg["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(msg["Date"]) == AT
    assert re.fullmatch(r"<[^<>@\s]+@acme\.example>", msg["Message-ID"])
    for name in EXPECTED_HEADERS:
        if name != "Content-Type":
            assert header_names(data).count(name) == 1, name
    assert "Bcc" not in header_names(data) and "Cc" not in header_names(data)


def test_date_is_the_at_instant_in_preview_too(drip, project: Path) -> None:
    drip("leads", "import", "leads.csv", "--at", T_IMPORT)
    msg = parse(preview(drip, "news-1", "ada@lovelace.example", at="2026-03-04T05:06:07+01:00"))
    assert parsedate_to_datetime(msg["Date"]) == datetime(2026, 3, 4, 4, 6, 7, tzinfo=UTC)


def test_non_ascii_recipient_is_rfc2047_encoded(drip, project: Path) -> None:
    data = ticked(drip, project)["zoe@mueller.example"]
    to_raw = b"".join(raw_header(data, "To"))
    to_raw.decode("ascii")  # raw header bytes are ASCII
    assert b"=?utf-8?" in to_raw.lower()
    assert "Zoë" not in to_raw.decode("ascii")
    msg = parse(data)
    assert str(msg["To"]) == "Zoë Müller <zoe@mueller.example>"
    assert msg["To"].addresses[0].display_name == "Zoë Müller"
    assert msg["To"].addresses[0].addr_spec == "zoe@mueller.example"


def test_non_ascii_subject_decodes(drip, project: Path) -> None:
    drip("leads", "import", "leads.csv", "--at", T_IMPORT)
    data = preview(drip, "reminder-1", "zoe@mueller.example")
    b"".join(raw_header(data, "Subject")).decode("ascii")
    assert parse(data)["Subject"] == "Anything else we can send you, Zoë?"


def test_all_header_bytes_are_ascii(drip, project: Path) -> None:
    for data in ticked(drip, project).values():
        for line in raw_header_lines(data):
            line.decode("ascii")


def test_subject_is_plain_text_not_html_escaped(drip, project: Path) -> None:
    drip(
        "leads", "add", "smith@sons.example", "--first-name", "Sam", "--company", "Smith & Sons <Ltd>", "--at", T_IMPORT
    )
    data = preview(drip, "offer-1", "smith@sons.example")
    msg = parse(data)
    assert msg["Subject"] == "A sample kit for Smith & Sons <Ltd>"
    assert "&amp;" not in msg["Subject"]
    text, html = parts(msg)
    assert "Smith &amp; Sons &lt;Ltd&gt;" in html.get_content()  # the HTML body is escaped ...
    assert "<Ltd>" not in html.get_content()
    assert "Smith & Sons <Ltd>" in text.get_content()  # ... the text body is not


def test_message_id_is_derived_from_the_touch(drip, project: Path) -> None:
    sent = ticked(drip, project)
    msgid = parse(sent["ada@lovelace.example"])["Message-ID"]
    # rendered again for the same touch: same Message-ID
    assert parse(preview(drip, "thanks", "ada@lovelace.example"))["Message-ID"] == msgid
    assert parse(preview(drip, "thanks", "ada@lovelace.example", at="2026-02-01T10:00:00Z"))["Message-ID"] == msgid
    # recorded in the store
    plan = drip.json("plan", "ada@lovelace.example", "--json")
    thanks = next(t for t in plan["touches"] if t["step"] == "thanks")
    assert thanks["message_id"] == msgid
    # other step, other lead: another Message-ID
    assert parse(preview(drip, "reminder-1", "ada@lovelace.example"))["Message-ID"] != msgid
    assert parse(sent["zoe@mueller.example"])["Message-ID"] != msgid
    assert len({parse(d)["Message-ID"] for d in sent.values()}) == 3
    # nobody without the secret can compute it: not the unkeyed hash of the touch key, and
    # another secret gives another one
    from dripper.channels.email.mime import legacy_message_id
    from dripper.tokens import Tokens

    domain = msgid.rsplit("@", 1)[1].rstrip(">")
    assert msgid != legacy_message_id("ada@lovelace.example", CAMPAIGN, "thanks", domain)
    assert msgid == Tokens("test-secret").message_id("ada@lovelace.example", CAMPAIGN, "thanks", domain)
    assert msgid != Tokens("another").message_id("ada@lovelace.example", CAMPAIGN, "thanks", domain)


def test_list_unsubscribe_is_one_raw_ascii_line(drip, project: Path) -> None:
    for data in ticked(drip, project).values():
        lines = raw_header(data, "List-Unsubscribe")
        assert len(lines) == 1, lines  # not folded
        line = lines[0].decode("ascii")
        assert "=?" not in line  # not RFC 2047-encoded
        match = re.fullmatch(r"List-Unsubscribe: <(https://[^<>\s]+)>, <(mailto:[^<>\s]+)>", line)
        assert match, line
        url, mailto = match.groups()
        assert url.startswith(f"{BASE}/")
        assert mailto.startswith("mailto:reply@acme.example")
        assert raw_header(data, "List-Unsubscribe-Post") == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
        msg = parse(data)
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribe_urls_differ_per_lead(drip, project: Path) -> None:
    urls = {
        re.search(rb"<(https://[^>]+)>", raw_header(d, "List-Unsubscribe")[0]).group(1)
        for d in ticked(drip, project).values()
    }
    assert len(urls) == 3


# --- body --------------------------------------------------------------------------------


def unsubscribe_url(data: bytes) -> str:
    return re.search(r"<(https://[^>]+)>", raw_header(data, "List-Unsubscribe")[0].decode("ascii")).group(1)


def test_body_is_text_then_html_in_utf8(drip, project: Path) -> None:
    for data in ticked(drip, project).values():
        text, html = parts(parse(data))
        assert text.get_content_charset() == "utf-8"
        assert html.get_content_charset() == "utf-8"


def test_text_part_keeps_urls_whole_and_has_the_footer(drip, project: Path) -> None:
    sent = ticked(drip, project)
    data = sent["ada@lovelace.example"]
    text, _ = parts(parse(data))
    body = text.get_content()
    assert "https://acme.example/literature?lead=ada%40lovelace.example&step=thanks" in body
    assert "Open your information pack" in body
    assert POSTAL in body
    url = unsubscribe_url(data)
    assert url in body
    assert body.index("Open your information pack") < body.index(POSTAL)  # the footer comes after the content
    assert "Hello Ada," in body
    zoe_text, _ = parts(parse(sent["zoe@mueller.example"]))
    assert "Hello Zoë," in zoe_text.get_content()


def test_html_part_has_css_inlined_including_loops_and_the_footer(drip, project: Path) -> None:
    data = ticked(drip, project)["ada@lovelace.example"]
    _, html = parts(parse(data))
    source = html.get_content()
    page = Elements(source)
    items = page.where("td", **{"class": "item"})
    assert len(items) == 2  # produced by {% for %} inside a <table>
    for attrs in items:
        assert "border-bottom" in attrs.get("style", "")
    cta = page.where("a", **{"class": "cta"})
    assert len(cta) == 1 and "background" in cta[0].get("style", "")
    assert cta[0]["href"] == "https://acme.example/literature?lead=ada%40lovelace.example&step=thanks"
    paragraphs = page.where("p")
    assert paragraphs and all("color" in p.get("style", "") for p in paragraphs)
    # footer: postal address and a visible unsubscribe link
    assert POSTAL in "".join(page.texts)
    assert any(a.get("href") == unsubscribe_url(data) for a in page.where("a"))
    assert "Spec sheet" in source and "Price list" in source


def test_css_is_inlined_inside_an_if_block(drip, project: Path) -> None:
    drip("leads", "import", "leads.csv", "--at", T_IMPORT)
    for lead, words in (
        ("ada@lovelace.example", "A free sample kit for Analytical Engines."),
        ("grace@hopper.example", "A free sample kit for you."),
    ):
        data = preview(drip, "offer-1", lead)
        _, html = parts(parse(data))
        source = html.get_content()
        match = re.search(r"<p([^>]*)>" + re.escape(words) + "</p>", source)
        assert match, source
        assert "color: #222" in match.group(1) or "color:#222" in match.group(1)
        assert POSTAL in source


def rfc2047_to(data: bytes) -> tuple[str, str]:
    """(name, address) of the To header as a decoder that follows RFC 2047 reads it: the
    stdlib's decode_header + make_header, which ignores the white space between adjacent
    encoded words (RFC 2047, 6.2), as mail clients do."""
    from email.header import decode_header, make_header

    raw = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    name, _, addr = str(make_header(decode_header(raw))).rpartition(" <")
    return name, addr.removesuffix(">")


def longest_line(data: bytes) -> int:
    return max(len(line) for line in re.split(rb"\r?\n", data))


def test_no_raw_line_longer_than_998_octets(drip, project: Path) -> None:
    datas = list(ticked(drip, project).values())
    company = "Smith & Sons Precision Engineering " * 40  # a long subject made of ordinary words
    drip(
        "leads",
        "add",
        "long@x.example",
        "--first-name",
        "Zoë-Charlotte",
        "--last-name",
        "Müller " * 8,
        "--company",
        company,
        "--attr",
        "product=" + "flow meters and valves " * 60,
        "--at",
        T_IMPORT,
    )
    datas += [preview(drip, step, "long@x.example") for step in ("thanks", "offer-1")]
    for data in datas:
        assert longest_line(data) <= 998
    msg = parse(datas[-1])
    assert msg["Subject"] == f"A sample kit for {company.strip()}"  # folding did not change it
    assert len(msg["Subject"]) > 998
    assert rfc2047_to(datas[-1])[0] == "Zoë-Charlotte " + ("Müller " * 8).strip()


def test_long_non_ascii_name_does_not_make_a_line_longer_than_998_octets(drip, project: Path) -> None:
    name = ("Zoë " * 150).strip()
    drip("leads", "add", "long@x.example", "--first-name", name, "--at", T_IMPORT)
    data = preview(drip, "thanks", "long@x.example")
    assert longest_line(data) <= 998
    # Display names are cut at MAX_NAME characters (nothing longer is a name).
    from dripper.channels.email.mime import MAX_NAME

    assert rfc2047_to(data)[0] == name[:MAX_NAME].strip()


def test_long_ascii_name_does_not_make_a_line_longer_than_998_octets(drip, project: Path) -> None:
    drip("leads", "add", "long@x.example", "--first-name", "E" * 1200, "--at", T_IMPORT)
    data = preview(drip, "thanks", "long@x.example")
    assert longest_line(data) <= 998
    from dripper.channels.email.mime import MAX_NAME

    assert parse(data)["To"].addresses[0].display_name == "E" * MAX_NAME


def test_long_subject_word_does_not_make_a_line_longer_than_998_octets(drip, project: Path) -> None:
    drip("leads", "add", "long@x.example", "--first-name", "Lo", "--attr", "product=" + "x" * 1500, "--at", T_IMPORT)
    data = preview(drip, "thanks", "long@x.example")
    assert longest_line(data) <= 998
    assert parse(data)["Subject"] == "Your " + "x" * 1500 + " information pack"


def test_encoded_words_are_at_most_75_characters(drip, project: Path) -> None:
    name = "Zoë-Charlotte Müller-Lüdenscheidt von Hohenzollern-Sigmaringen"
    drip("leads", "add", "zc@x.example", "--first-name", name, "--at", T_IMPORT)
    data = preview(drip, "reminder-1", "zc@x.example")  # the subject carries the name as well
    words = re.findall(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", b"\n".join(raw_header_lines(data)))
    assert words
    assert max(len(w) for w in words) <= 75, [len(w) for w in words]
    msg = parse(data)
    assert msg["To"].addresses[0].display_name == name
    assert msg["Subject"] == f"Anything else we can send you, {name}?"


# --- header injection --------------------------------------------------------------------

INJECTIONS = [
    "\r\nBcc: evil@x.example",
    "\nBcc: evil@x.example",
    "\rBcc: evil@x.example",
    "\u2028Bcc: evil@x.example",
    "\x85Bcc: evil@x.example",
]


@pytest.mark.parametrize("option", ["--first-name", "--last-name", "--company"])
def test_cli_rejects_line_breaks_in_lead_fields(drip, project: Path, option: str) -> None:
    result = drip("leads", "add", "eve@x.example", option, "Eve\r\nBcc: evil@x.example", "--at", T_IMPORT, ok=1)
    assert "line break" in result.stderr
    assert "no lead" in drip("plan", "eve@x.example", ok=1).stderr


def test_cli_rejects_line_breaks_in_attrs(drip, project: Path) -> None:
    result = drip("leads", "add", "eve@x.example", "--attr", "product=v\r\nBcc: evil@x.example", "--at", T_IMPORT, ok=1)
    assert "line break" in result.stderr


@pytest.mark.parametrize("injection", INJECTIONS)
def test_lead_fields_never_reach_a_header_as_new_lines(project: Path, injection: str) -> None:
    from dripper import config as config_mod
    from dripper.campaign.templates import LeadView
    from dripper.channels.email.mime import build_email, list_unsubscribe
    from dripper.settings import Settings
    from dripper.tokens import Tokens

    loaded = config_mod.load(Settings(campaigns_path=project / "campaigns.yaml"))
    config = loaded.campaigns
    campaign = config.campaigns[CAMPAIGN]
    lead = LeadView(
        id=7,
        email="eve@x.example",
        first_name="Eve" + injection,
        last_name="Last" + injection,
        company="Co" + injection,
        stage="supplier_research",
        campaign=CAMPAIGN,
        timezone="America/Chicago",
        attrs={"product": "valves" + injection},
    )
    url = f"{BASE}/u/token"
    for step_id in ("thanks", "reminder-1", "offer-1"):
        step = campaign.step(step_id)[1]
        ctx = loaded.renderer.context(lead, campaign, step, url, AT)
        rendered = loaded.renderer.email(campaign, step, ctx)
        assert "\n" not in rendered.subject and "\r" not in rendered.subject
        data = build_email(
            config.sender,
            lead,
            rendered,
            msgid=Tokens("s").message_id(lead.email, CAMPAIGN, step_id, "acme.example"),
            date=AT,
            unsubscribe=list_unsubscribe(url, "reply@acme.example", "token"),
        )
        assert header_names(data) == EXPECTED_HEADERS
        for line in raw_header_lines(data):
            line.decode("ascii")
            assert not line.lower().startswith(b"bcc")
        msg = parse(data)
        assert msg["Bcc"] is None
        assert list(msg.keys()) == EXPECTED_HEADERS
        assert msg["To"].addresses[0].addr_spec == "eve@x.example"
        assert len(msg["To"].addresses) == 1
        assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])


def test_lead_view_from_a_stored_row_is_single_line() -> None:
    from dripper.campaign.templates import LeadView

    view = LeadView.stored(
        {
            "id": 1,
            "email": "a@x.example",
            "stage": "s",
            "campaign": "c",
            "first_name": "A\r\nBcc: e@x.example",
            "company": "C\nD",
            "attrs": {"k": "v\r\nw"},
        },
    ).for_templates("UTC")
    assert view.first_name == "A Bcc: e@x.example"
    assert view.company == "C D"
    assert view.attrs["k"] == "v w"
    assert view.timezone == "UTC"


# Each name, and how its encoded words fall: "whole" (a run of words that need encoding is
# one encoded word), "between" (too long for one: split between words), "within" (a single
# word too long for one encoded word: split inside it, as nothing else can be done).
NAMES = [
    ("Zoë Müller", "whole"),
    ("José Müller", "whole"),
    ("Łukasz Smith", "whole"),
    ("Anna Müller", "whole"),
    ("Zoë van der Müller", "whole"),
    ("François Lefèvre-Émond", "whole"),
    ("José María Fernández Ibáñez", "whole"),
    ("Γιώργος Παπαδόπουλος", "whole"),
    ("Иван Петров", "whole"),
    ("Wojciech Szczęsny", "whole"),
    ("Zażółć Gęślą Jaźń", "whole"),
    ("王小明", "whole"),
    ("王 小明", "whole"),
    ("田中 太郎", "whole"),
    ("Александр Сергеевич Пушкин", "between"),
    ("Maximilian Friedrich Müller-Lüdenscheidt von Hohenzollern-Sigmaringen Åström Þórsdóttir", "whole"),
    ("Ærøskøbing Ærøskøbing Ærøskøbing Ærøskøbing Ærøskøbing Ærøskøbing", "between"),
    ("Ольга Владимировна Александрова-Преображенская", "within"),
    ("山田 花子 寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末", "within"),
]


@pytest.mark.parametrize(("name", "falls"), NAMES)
def test_a_name_reads_back_exactly_space_included(name: str, falls: str) -> None:
    """RFC 2047, 6.2: a decoder ignores the white space between adjacent encoded words, so
    words that need encoding are encoded together, the spaces inside ("ZoëMüller" else)."""
    from dripper.channels.email.mime import address

    value = address(name, "lead@x.example")
    data = f"To: {value}\r\n\r\n".encode("ascii")
    assert all(len(line) <= 78 for line in value.split("\r\n")[1:]), value
    assert all(len(word) <= 75 for word in re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", value))
    # A decoder that follows the RFC: every name exactly.
    assert rfc2047_to(data) == (name, "lead@x.example")
    # Split only where the 75-character limit forces it.
    assert (re.search(r"\?=\s+=\?", value) is not None) == (falls != "whole")
    # Python's headerregistry (policy.default) keeps the folding space between adjacent
    # encoded words of a display name (CPython 3.11 to 3.13; its own generator's long names
    # do not read back either): exact for every name that fits, and where the split falls
    # between words only the spacing differs.
    display = parse(data)["To"].addresses[0]
    assert display.addr_spec == "lead@x.example"
    if falls == "whole":
        assert display.display_name == name
    elif falls == "between":
        assert " ".join(display.display_name.split()) == name


def test_the_quick_starts_zoe_mueller_reads_back_with_her_space(drip, project: Path) -> None:
    data = ticked(drip, project)["zoe@mueller.example"]
    assert rfc2047_to(data) == ("Zoë Müller", "zoe@mueller.example")
    [to] = [line for line in raw_header_lines(data) if line.startswith(b"To:")]
    assert re.search(rb"\?=\s+=\?", to) is None  # one encoded word: no adjacent ones to lose the space


@pytest.mark.parametrize(("name", "falls"), NAMES)
def test_a_subject_with_the_name_reads_back_exactly(name: str, falls: str) -> None:
    """Subjects are encoded whole, the spaces inside the encoded text; an unstructured header
    is read as RFC 2047 says by both of Python's decoders."""
    from email.header import decode_header, make_header

    from dripper.channels.email.mime import header

    subject = f"Ihr Angebot für {name}: Pumpen, Ventile und Durchflussmesser für {name}"
    line = header("Subject", subject)
    data = f"{line}\r\n\r\n".encode("ascii")
    assert all(len(part) <= 78 for part in line.split("\r\n"))
    assert (
        str(make_header(decode_header(email.message_from_bytes(data, policy=email.policy.compat32)["Subject"])))
        == subject
    )
    assert parse(data)["Subject"] == subject
