"""Letters as printed: window placement (checked with the text positions in the PDF),
fonts, page numbers, print batches and their manifests, postal address rules, and the
print-and-post adapter against a real HTTP server on loopback.

PNG renderings of the letters land in tests/review/letters/ (DRIPPER_REVIEW_DIR) for a
person to look at."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port

from dripper.channels.letters.layout import FRAMES, Box
from tests.support.campaigns import ACME_SENDER
from tests.support.net import QuietHandler

REVIEW = Path(os.environ.get("DRIPPER_REVIEW_DIR", Path(__file__).parent / "review")) / "letters"
PT_PER_MM = 72 / 25.4
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 08:00 in Chicago

# People from many scripts; each has a complete address for the country.
INTERNATIONAL = """email,first_name,last_name,company,stage,timezone,address_line1,address_line2,city,region,postal_code,country,phone,owner
ada@lovelace.example,Ada,Lovelace,Analytical Engines Inc.,supplier_research,America/Chicago,1 Engine Way,Suite 200,Springfield,Illinois,62701,USA,+1 217 555 0100,Marcus
zoe@mueller.example,Zoë,Ødegård-Müller,Müller Anlagenbau GmbH,supplier_research,Europe/Berlin,Industriestraße 14,,Stuttgart,,70565,Deutschland,,
lukasz@wrobel.example,Łukasz,Wróbel,Wróbel Sp. z o.o.,supplier_research,Europe/Warsaw,ul. Świętokrzyska 12,,Warszawa,,00-916,PL,,
eleni@papadopoulou.example,Ελένη,Παπαδοπούλου,,supplier_research,Europe/Athens,Ermou 10,,Athens,,105 63,Greece,,
dmitri@ivanov.example,Дмитрий,Иванов,,supplier_research,Europe/Berlin,Friedrichstraße 1,,Berlin,,10117,DE,,
taro@yamada.example,太郎,山田,,supplier_research,Asia/Tokyo,1-1 Marunouchi,,Chiyoda-ku,Tokyo,100-0005,JP,,
bea@dubois.example,Béatrice,Dubois,Dubois & Fils,supplier_research,Europe/Paris,12 rue de la Paix,,Paris,,75002,France,,
"""
PLAIN = "email,first_name,last_name,stage,address_line1,city,region,postal_code,country\n"


def campaign(*, letters: str = "", extra_steps: str = "") -> str:
    """A campaign with a letter on the first day and a call after one day."""
    return f"""
{ACME_SENDER}{letters}
campaigns:
  literature-follow-up:
    stages:
      supplier_research:
        - id: letter-now
          after: 0d
          channel: letter
          template: letters/follow_up.html
        - id: call-1
          after: 1d
          channel: call
          template: letters/call.html
        - id: thanks
          after: 2d
          channel: email
          subject: "Thanks"
          template: mail/thanks.html
{extra_steps}
"""


LONG_LETTER = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<div class="letterhead"><strong>ACME</strong></div>
{% for n in range(45) %}<p>Paragraph {{ n }}: a long letter that runs over the page.</p>{% endfor %}
</body></html>"""
CALL = "<p>Call {{ lead.first_name }} and ask whether they need more information about {{ lead.company }}.</p>"


@pytest.fixture
def letters_project(project: Path) -> Path:
    (project / "templates" / "letters" / "call.html").write_text(CALL)
    (project / "templates" / "letters" / "long.html").write_text(LONG_LETTER)
    (project / "campaigns.yaml").write_text(campaign())
    return project


def iso(t: datetime) -> str:
    return t.isoformat()


# --- reading PDFs --------------------------------------------------------------------
def words(pdf: Path, page: int = 1) -> list[tuple[str, Box]]:
    """Each word on the page with its box in millimetres (poppler's pdftotext -bbox)."""
    xhtml = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = []
    for x0, y0, x1, y1, text in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', xhtml
    ):
        x, y = float(x0) / PT_PER_MM, float(y0) / PT_PER_MM
        found.append((text.replace("&amp;", "&"), Box(x, y, float(x1) / PT_PER_MM - x, float(y1) / PT_PER_MM - y)))
    return found


def page_size_mm(pdf: Path) -> tuple[float, float]:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    w, h = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups()  # type: ignore[union-attr]
    return round(float(w) / PT_PER_MM, 1), round(float(h) / PT_PER_MM, 1)


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]


def inside(box: Box, area: Box, slack: float = 0.3) -> bool:
    return (
        box.x >= area.x - slack
        and box.y >= area.y - slack
        and box.right <= area.right + slack
        and box.bottom <= area.bottom + slack
    )


def preview_pdf(dripper_sqlite, step: str, email: str, pdf: Path, *extra: str) -> None:
    """`preview --format pdf` of one letter step for one lead, written to `pdf`."""
    dripper_sqlite(
        "preview", "literature-follow-up", step, "--lead", email, "--format", "pdf", "--out", str(pdf), *extra
    )


def review_png(pdf: Path, name: str) -> Path:
    REVIEW.mkdir(parents=True, exist_ok=True)
    prefix = REVIEW / name
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(prefix)], check=True
    )
    png = prefix.with_suffix(".png")
    assert png.read_bytes().startswith(b"\x89PNG")
    return png


# --- placement, fonts, formats -----------------------------------------------------------
@pytest.mark.parametrize(
    "email, frame, must_show",
    [
        ("ada@lovelace.example", "us10", ["Ada", "Lovelace", "Analytical", "Suite", "SPRINGFIELD,", "IL", "62701"]),
        (
            "zoe@mueller.example",
            "din5008",
            ["Zoë", "Ødegård-Müller", "Industriestraße", "70565", "STUTTGART", "GERMANY"],
        ),
        ("lukasz@wrobel.example", "din5008", ["Łukasz", "Wróbel", "Świętokrzyska", "00-916", "POLAND"]),
        ("eleni@papadopoulou.example", "din5008", ["Ελένη", "Παπαδοπούλου", "105", "63", "GREECE"]),
        ("dmitri@ivanov.example", "din5008", ["Дмитрий", "Иванов", "10117", "BERLIN"]),
        ("taro@yamada.example", "din5008", ["太郎", "山田", "Chiyoda-ku", "100-0005"]),
        ("bea@dubois.example", "din5008", ["Béatrice", "Dubois", "Fils", "75002", "PARIS", "FRANCE"]),
    ],
)
def test_the_address_lies_inside_the_envelope_window(dripper_sqlite, letters_project, email, frame, must_show):
    (letters_project / "intl.csv").write_text(INTERNATIONAL)
    dripper_sqlite("leads", "import", "intl.csv", "--at", iso(T0))
    pdf = letters_project / f"{email}.pdf"
    preview_pdf(dripper_sqlite, "letter-now", email, pdf, "--at", iso(T0))
    review_png(pdf, f"{frame}-{email.split('@')[0]}")
    spec = FRAMES[frame]
    assert page_size_mm(pdf) == ((215.9, 279.4) if frame == "us10" else (210.0, 297.0))
    found = words(pdf)
    window = [text for text, box in found if inside(box, spec.window)]
    for word in must_show:
        assert word in window, f"{word!r} not in the window: {window}"
    # Nothing else lies in the window, and the whole recipient block is inside it.
    block = [
        (t, b)
        for t, b in found
        if b.y >= spec.window.y - 1 and b.bottom <= spec.window.bottom + 3 and b.x < spec.window.right
    ]
    assert all(inside(b, spec.window) for _, b in block), [(t, b) for t, b in block if not inside(b, spec.window)]
    # The return address shows through its window (DIN: the line above the recipient).
    returned = [t for t, b in found if inside(b, spec.return_address)]
    assert "Springfield," in returned and "Acme" in returned
    # The body starts below the window, and the date is in the lead's language.
    body = [b for t, b in found if t == "Dear"]
    assert body and body[0].y > spec.window.bottom
    date_words = [t for t, b in found if inside(b, spec.date, slack=1)]
    expected_month = {
        "zoe": "März",
        "dmitri": "März",
        "bea": "mars",
        "lukasz": "marca",
        "eleni": "Μαρτίου",
        "ada": "March",
        "taro": "3月2日",
    }[email.split("@")[0]]
    assert any(expected_month in t for t in date_words), date_words


def _font_names(pdf: Path) -> list[str]:
    listing = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    rows = listing.splitlines()[2:]
    assert rows and all(" yes " in row for row in rows), listing  # every font embedded
    return [row.split()[0].split("+")[-1] for row in rows]


def test_every_font_is_embedded_and_covers_the_names(dripper_sqlite, letters_project):
    (letters_project / "intl.csv").write_text(INTERNATIONAL)
    dripper_sqlite("leads", "import", "intl.csv", "--at", iso(T0))
    pdf = letters_project / "taro.pdf"
    preview_pdf(dripper_sqlite, "letter-now", "taro@yamada.example", pdf)
    embedded = {re.sub(r"[^a-z]", "", name.lower()) for name in _font_names(pdf)}
    # A font that has the glyph for 山 must be among the embedded ones (not a missing-glyph box).
    covering = subprocess.run(["fc-list", ":charset=5c71", "family"], capture_output=True, text=True).stdout
    families = {re.sub(r"[^a-z]", "", f.split(",")[0].lower()) for f in covering.splitlines() if f.strip()}
    assert families, "no CJK font installed (scripts/test installs fonts-droid-fallback)"
    assert any(e.startswith(f) or f.startswith(e) for e in embedded for f in families), (embedded, families)


def test_a_long_letter_gets_page_numbers_and_a_short_one_none(dripper_sqlite, letters_project):
    (letters_project / "campaigns.yaml").write_text(
        campaign(
            extra_steps="""
        - id: long-letter
          after: 3d
          channel: letter
          template: letters/long.html
"""
        )
    )
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(T0))
    long_pdf, short_pdf = letters_project / "long.pdf", letters_project / "short.pdf"
    for step, pdf in (("long-letter", long_pdf), ("letter-now", short_pdf)):
        preview_pdf(dripper_sqlite, step, "zoe@mueller.example", pdf)
    total = pages(long_pdf)
    assert total >= 2
    for page in range(1, total + 1):
        assert f"{page} / {total}" in " ".join(t for t, _ in words(long_pdf, page))
    # Page 2 starts at the normal top margin, not below a window.
    assert min(b.y for _, b in words(long_pdf, 2)) < 30
    assert pages(short_pdf) == 1 and "1 / 1" not in " ".join(t for t, _ in words(short_pdf))
    review_png(long_pdf, "din5008-long-page1")


def test_letter_format_can_be_chosen_per_campaign(dripper_sqlite, letters_project):
    text = campaign().replace("  literature-follow-up:\n", "  literature-follow-up:\n    letter_format: us10\n")
    (letters_project / "campaigns.yaml").write_text(text)
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(T0))
    pdf = letters_project / "zoe.pdf"
    preview_pdf(dripper_sqlite, "letter-now", "zoe@mueller.example", pdf)
    assert page_size_mm(pdf) == (215.9, 279.4)
    assert "Ødegård-Müller" not in " ".join(t for t, _ in words(pdf))  # (the fixture lead is plain Müller)
    assert "Müller" in [t for t, b in words(pdf) if inside(b, FRAMES["us10"].window)]


LONG_RETURN = (
    "Acme Process Equipment Manufacturing GmbH & Co. KG, Abteilung Vertrieb Nord, "
    "Industriestraße 142a, Gebäude C, 70565 Stuttgart-Vaihingen, Germany"
)


@pytest.mark.parametrize(
    "email, frame, address",
    [
        (
            "zoe@mueller.example",
            "din5008",
            "Acme Inc., Sales and Service Office, 1 Main Street, Suite 400, Springfield, IL 62701, USA",
        ),
        ("zoe@mueller.example", "din5008", LONG_RETURN),
        ("zoe@mueller.example", "din5008", "Acme Inc.\nSales Office\n1 Main Street\nSpringfield, IL 62701\nUSA"),
        ("ada@lovelace.example", "us10", LONG_RETURN),
    ],
)
def test_a_long_return_address_shrinks_to_fit_never_cut_off(dripper_sqlite, letters_project, email, frame, address):
    # At the old fixed 7 pt on one line, DIN 5008's 85 mm held about 57 characters.
    sender = ACME_SENDER.replace("Acme Inc., 1 Main St, Springfield, IL 62701, USA", address.replace("\n", "\\n"))
    (letters_project / "campaigns.yaml").write_text(campaign().replace(ACME_SENDER, sender))
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(T0))
    pdf = letters_project / "return.pdf"
    preview_pdf(dripper_sqlite, "letter-now", email, pdf)
    review_png(pdf, f"{frame}-long-return-{len(address)}")
    box = FRAMES[frame].return_address
    shown = [t for t, b in words(pdf) if inside(b, box, slack=0.5)]
    expected = address.split()
    assert [t for t in shown if t != "·"] == expected, shown
    # pdftotext reads the whole address back (clipped text would lie outside the box above).
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert all(word in text for word in expected)


LANG_LETTER = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8"></head><body>
<div class="letterhead"><strong>ACME</strong></div><p>Dear {{{{ lead.first_name }}}},</p></body></html>"""


@pytest.mark.parametrize(
    "email, lang, month, not_month",
    [
        ("zoe@mueller.example", "en", "March", "März"),  # a German lead, an English letter
        ("ada@lovelace.example", "de", "März", "March"),  # an American lead, a German letter
        ("zoe@mueller.example", "en-US", "March 2, 2026", "März"),
    ],
)
def test_the_letters_language_decides_the_dates_language(
    dripper_sqlite, letters_project, email, lang, month, not_month
):
    (letters_project / "templates" / "letters" / "follow_up.html").write_text(LANG_LETTER.format(lang=lang))
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(T0))
    pdf = letters_project / "dated.pdf"
    preview_pdf(dripper_sqlite, "letter-now", email, pdf, "--at", iso(T0))
    spec = FRAMES["us10" if email.startswith("ada") else "din5008"]
    date = " ".join(t for t, b in words(pdf) if inside(b, spec.date, slack=1))
    assert month in date and not_month not in date, date


# --- addresses ------------------------------------------------------------------------------
def test_incomplete_addresses_are_reported_on_import_and_skipped(dripper, letters_project):
    (letters_project / "mixed.csv").write_text(
        PLAIN
        + "us-no-state@x.example,Uma,Ng,supplier_research,1 Main St,Springfield,,62701,US\n"
        + "de-ok@x.example,Dora,Kahn,supplier_research,Hauptstr. 1,Berlin,,10115,DE\n"
        + "no-address@x.example,Nia,Ray,supplier_research,,,,,\n"
        + "bad-zip@x.example,Bo,Lee,supplier_research,Hauptstr. 2,Berlin,,1011,DE\n"
        + "no-country@x.example,Cy,Fox,supplier_research,5 Road,Town,,12345,\n"
    )
    result = dripper("leads", "import", "mixed.csv", "--at", iso(T0))
    assert "mixed.csv:2: warning: postal address incomplete: missing region (required in US)" in result.stderr
    assert "mixed.csv:5: warning: postal address: postal_code not valid in DE" in result.stderr
    assert "mixed.csv:6: warning: postal address incomplete: no country" in result.stderr
    assert ":3:" not in result.stderr and ":4:" not in result.stderr  # complete, or no address at all
    assert "5 lead(s) imported" in result.stdout
    plan = dripper("plan", "us-no-state@x.example").stdout
    assert "Letters will be skipped (no_postal_address): missing region (required in US)" in plan
    dripper("tick", "--at", iso(T0 + timedelta(hours=1)))
    for email, state in (
        ("us-no-state@x.example", "skipped"),
        ("no-address@x.example", "skipped"),
        ("no-country@x.example", "skipped"),
        ("de-ok@x.example", "sent"),
        ("bad-zip@x.example", "sent"),
    ):
        touch = {t["step"]: t for t in dripper.json("plan", email, "--json")["touches"]}["letter-now"]
        assert touch["state"] == state, (email, touch)
        if state == "skipped":
            assert touch["reason"] == "no_postal_address"


# --- print batches -----------------------------------------------------------------------------
def manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_days_letters_become_one_batch_with_a_manifest(dripper, letters_project):
    (letters_project / "intl.csv").write_text(INTERNATIONAL)
    dripper("leads", "import", "intl.csv", "--at", iso(T0))
    summary = dripper.json("tick", "--at", iso(T0 + timedelta(hours=2)), "--json")
    assert summary["sent"] == 7
    folder = letters_project / "letters" / "2026-03-02"
    rows = manifest(folder)
    assert len(rows) == 7 and [int(r["sequence"]) for r in rows] == list(range(1, 8))
    # Print order: by country and postal code, for presorted mail.
    assert [r["email"].split("@")[0] for r in rows] == ["dmitri", "zoe", "bea", "eleni", "taro", "lukasz", "ada"]
    assert sum(int(r["pages"]) for r in rows) == pages(folder / "batch.pdf")
    assert [int(r["first_page"]) for r in rows] == list(range(1, 8))
    ada = rows[-1]
    assert ada["address"].splitlines() == [
        "Ada Lovelace",
        "Analytical Engines Inc.",
        "1 Engine Way",
        "Suite 200",
        "SPRINGFIELD, IL 62701",
    ]  # domestic: no country line
    assert ada["format"] == "us10" and rows[0]["format"] == "din5008"
    # Page 7 of the batch is Ada's letter; the single-letter PDFs stay available.
    assert "Lovelace" in [t for t, _ in words(folder / "batch.pdf", 7)]
    for row in rows:
        assert (letters_project / "letters" / row["file"]).read_bytes().startswith(b"%PDF")
    touch = {t["step"]: t for t in dripper.json("plan", "ada@lovelace.example", "--json")["touches"]}["letter-now"]
    assert touch["state"] == "sent" and touch["batch"] == "2026-03-02" and touch["mailed_at"] is None
    listed = dripper.json("letters", "list", "--json")
    assert listed == [
        {
            "batch": "2026-03-02",
            "letters": 7,
            "pages": 7,
            "built": True,
            "mailed_at": None,
            "mailed_by": None,
            "folder": str(Path("letters") / "2026-03-02"),
        }
    ]


def test_a_mailed_batch_is_closed_and_later_letters_open_the_next(dripper, letters_project):
    dripper("leads", "add", "one@x.example", "--first-name", "One", "--attr", "x=1", "--at", iso(T0))
    _set_address(dripper, letters_project, "one@x.example", T0)
    dripper("tick", "--at", iso(T0 + timedelta(hours=1)))
    assert dripper("letters", "mark-mailed", "2026-03-02", "--at", iso(T0 + timedelta(hours=2))).stdout.startswith(
        "2026-03-02: marked mailed"
    )
    assert "already marked mailed" in dripper("letters", "mark-mailed", "2026-03-02").stdout
    dripper("letters", "mark-mailed", "2026-13-99", ok=1)
    _set_address(dripper, letters_project, "two@x.example", T0 + timedelta(hours=3))
    dripper("tick", "--at", iso(T0 + timedelta(hours=4)))
    listed = {b["batch"]: b for b in dripper.json("letters", "list", "--json")}
    assert set(listed) == {"2026-03-02", "2026-03-02-2"}
    assert listed["2026-03-02"]["letters"] == 1 and listed["2026-03-02"]["mailed_by"] == "manual"
    assert [r["email"] for r in manifest(letters_project / "letters" / "2026-03-02-2")] == ["two@x.example"]
    touch = {t["step"]: t for t in dripper.json("plan", "one@x.example", "--json")["touches"]}["letter-now"]
    assert touch["batch"] == "2026-03-02" and touch["mailed_at"]


def _set_address(dripper, project: Path, email: str, at: datetime) -> None:
    (project / "one.csv").write_text(
        PLAIN + f"{email},{email[:3]},Test,supplier_research,1 Main St,Springfield,IL,62701,US\n"
    )
    dripper("leads", "import", "one.csv", "--at", iso(at))


def test_duplex_batches_start_every_letter_on_a_new_sheet(dripper_sqlite, letters_project):
    (letters_project / "campaigns.yaml").write_text(campaign(letters="letters: {duplex: true}"))
    (letters_project / "intl.csv").write_text(INTERNATIONAL)
    dripper_sqlite("leads", "import", "intl.csv", "--at", iso(T0))
    dripper_sqlite("tick", "--at", iso(T0 + timedelta(hours=2)))
    folder = letters_project / "letters" / "2026-03-02"
    rows = manifest(folder)
    assert [int(r["first_page"]) for r in rows] == [1, 3, 5, 7, 9, 11, 13]
    assert pages(folder / "batch.pdf") == 14


def test_a_batch_lost_in_a_crash_is_rebuilt(dripper, letters_project):
    (letters_project / "intl.csv").write_text(INTERNATIONAL)
    dripper("leads", "import", "intl.csv", "--at", iso(T0))
    dripper("tick", "--at", iso(T0 + timedelta(hours=2)))
    folder = letters_project / "letters" / "2026-03-02"
    shutil.rmtree(folder)
    assert "rebuilt 0 batch(es)" in dripper("letters", "build").stdout  # the database says it is built...
    assert "7 letters, 7 pages" in dripper("letters", "build", "2026-03-02").stdout  # ...rebuild it by name
    assert len(manifest(folder)) == 7
    dripper("letters", "build", "1999-01-01", ok=1)


# --- call tasks ---------------------------------------------------------------------------------
def test_call_tasks_are_listed_for_their_day_and_outcomes_act(dripper, letters_project):
    (letters_project / "campaigns.yaml").write_text(campaign(letters="letters: {call_owner: Sales desk}"))
    (letters_project / "intl.csv").write_text(INTERNATIONAL)
    dripper("leads", "import", "intl.csv", "--at", iso(T0))
    dripper("tick", "--at", iso(T0 + timedelta(days=1, hours=1)))  # 08:00 Chicago, Tuesday
    tasks = dripper.json("calls", "--date", "2026-03-03", "--json")
    assert len(tasks) == 7
    ada = next(t for t in tasks if t["email"] == "ada@lovelace.example")
    assert ada["owner"] == "Marcus" and ada["phone"] == "+1 217 555 0100" and ada["outcome"] == ""
    assert "Call Ada and ask whether they need more information about Analytical Engines Inc." in ada["talking_points"]
    assert {t["owner"] for t in tasks if t["email"] != "ada@lovelace.example"} == {"Sales desk"}
    assert [t["email"] for t in dripper.json("calls", "--date", "2026-03-03", "--owner", "Marcus", "--json")] == [
        "ada@lovelace.example"
    ]
    assert dripper.json("calls", "--date", "2026-03-04", "--json") == []
    exported = (letters_project / "calls" / "2026-03-03.csv").read_text(encoding="utf-8")
    assert exported.splitlines()[0].startswith("day,owner,email,name,company,phone")
    assert exported == dripper("calls", "--date", "2026-03-03", "--csv").stdout
    table = dripper("calls", "--date", "2026-03-03").stdout
    assert "Calls on 2026-03-03" in table and "Marcus" in table
    # Outcomes.
    dripper("event", "ada@lovelace.example", "called", ok=1)  # needs --outcome
    reached = dripper("event", "zoe@mueller.example", "called", "--outcome", "reached", "--note", "sends specs")
    assert "call literature-follow-up/call-1 of 2026-03-03 recorded as reached; 0 pending" in reached.stdout
    dripper("event", "ada@lovelace.example", "called", "--outcome", "converted")
    dripper("event", "bea@dubois.example", "called", "--outcome", "not_interested")
    plan = {t["step"]: t for t in dripper.json("plan", "ada@lovelace.example", "--json")["touches"]}
    assert plan["thanks"]["state"] == "suppressed" and plan["thanks"]["reason"] == "converted"
    assert plan["call-1"]["call"] == {"day": "2026-03-03", "owner": "Marcus", "outcome": "converted"}
    bea = {t["step"]: t for t in dripper.json("plan", "bea@dubois.example", "--json")["touches"]}
    assert bea["thanks"]["state"] == "suppressed" and bea["thanks"]["reason"] == "opted_out"
    zoe = dripper.json("plan", "zoe@mueller.example", "--json")
    assert {t["step"]: t for t in zoe["touches"]}["thanks"]["state"] == "planned"
    assert zoe["events"][-1]["kind"] == "called" and zoe["events"][-1]["detail"]["note"] == "sends specs"
    still_open = dripper.json("calls", "--date", "2026-03-03", "--open", "--json")
    assert {t["email"] for t in still_open} == {
        "lukasz@wrobel.example",
        "eleni@papadopoulou.example",
        "dmitri@ivanov.example",
        "taro@yamada.example",
    }


# --- a print-and-post service over HTTP -------------------------------------------------------------
class PrintService:
    """A stand-in print-and-post API on loopback: records every request; the first
    `fail_first` answers are 503."""

    def __init__(self, fail_first: int = 0):
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        service = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                parts = {
                    p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                    for p in BytesParser(policy=HTTP).parsebytes(head + body).iter_parts()
                }
                service.requests.append({"headers": dict(self.headers), "parts": parts})
                if len(service.requests) <= service.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                self.answer(201, "application/json", json.dumps({"id": f"pp-{len(service.requests)}"}).encode())

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/letters"


@pytest.fixture
def print_service() -> Iterator[PrintService]:
    service = PrintService(fail_first=1)
    yield service
    service.server.shutdown()


def test_a_print_service_takes_the_letters_over_http(dripper, letters_project, print_service):
    (letters_project / "campaigns.yaml").write_text(
        campaign(letters=f"letters: {{adapter: http, http: {{url: '{print_service.url}', token_env: PRINT_TOKEN}}}}")
    )
    dripper("leads", "import", "leads.csv", "--at", iso(T0))  # two leads with an address, one without
    dripper("tick", "--at", iso(T0 + timedelta(hours=1)), PRINT_TOKEN="s3cret")
    # The first POST got a 503: that letter is tried again on the next tick, with the same key.
    assert len(print_service.requests) == 2
    dripper("tick", "--at", iso(T0 + timedelta(hours=2)), PRINT_TOKEN="s3cret")
    assert len(print_service.requests) == 3
    first, _, retry = print_service.requests
    assert first["headers"]["Idempotency-Key"] == retry["headers"]["Idempotency-Key"]
    assert all(r["headers"]["Authorization"] == "Bearer s3cret" for r in print_service.requests)
    metadata = [json.loads(r["parts"]["metadata"]) for r in print_service.requests[1:]]
    assert sorted(m["email"] for m in metadata) == ["ada@lovelace.example", "zoe@mueller.example"]
    assert all(r["parts"]["file"].startswith(b"%PDF") for r in print_service.requests)
    zoe = next(m for m in metadata if m["email"] == "zoe@mueller.example")
    assert zoe["address"][-1] == "GERMANY" and zoe["format"] == "din5008" and zoe["pages"] == 1
    # The day's batch stays open for the rest of the day, and is mailed once the day is over.
    assert dripper.json("letters", "list", "--json")[0]["mailed_at"] is None
    dripper("tick", "--at", iso(T0 + timedelta(days=1)), PRINT_TOKEN="s3cret")
    batch = dripper.json("letters", "list", "--json")[0]
    assert batch["mailed_by"] == "http" and batch["mailed_at"]
    assert len(print_service.requests) == 3  # nothing was sent twice


def test_an_unknown_print_adapter_is_a_located_error(dripper_sqlite, letters_project):
    (letters_project / "campaigns.yaml").write_text(campaign(letters="letters: {adapter: htp}"))
    result = dripper_sqlite("check", ok=1)
    assert re.search(
        r"campaigns\.yaml:\d+:\d+: unknown print adapter 'htp' \(did you mean 'http'\?\)", result.stderr + result.stdout
    )
