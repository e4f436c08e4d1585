"""`dripper leads import` on files as they really arrive: Excel's semicolons and
Windows-1252, tabs, byte order marks, a stray byte, a NUL, a huge cell. A bad row is
reported as FILE:LINE (the physical line) and skipped, whatever is wrong with it; every
other row imports; the summary says which encoding and delimiter were used."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import Dripper, dripper_env

from dripper.leads import csvfile
from tests.support.cli import run_dripper

T0 = "2026-01-05T08:00:00Z"
HEADER = ("email", "first_name", "last_name", "company", "stage", "timezone", "campaign", "product")
STAGE = "supplier_research"


def row(email: str, first: str = "A", last: str = "B", company: str = "Co", product: str = "valves") -> list[str]:
    return [email, first, last, company, STAGE, "", "", product]


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8", newline: str = "\n") -> bytes:
    """Rows written as Excel writes them: a cell with the delimiter, a quote or a line break quoted."""

    def cell(text: str) -> str:
        if any(c in text for c in (delimiter, '"', "\n", "\r")):
            return '"' + text.replace('"', '""') + '"'
        return text

    text = "".join(delimiter.join(cell(c) for c in r) + newline for r in rows)
    return text.encode(encoding)


def reported(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def real_import(project: Path, db_url: str, name: str, *options: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, as its own process."""
    return run_dripper(project, _env(db_url), "leads", "import", name, "--at", T0, *options)


def real_lead(project: Path, db_url: str, email: str) -> dict | None:
    done = run_dripper(project, _env(db_url), "plan", email, "--json")
    return json.loads(done.stdout)["lead"] if done.returncode == 0 else None


def _env(db_url: str) -> dict[str, str]:
    return dripper_env(DRIPPER_DATABASE_URL=db_url, DRIPPER_SECRET="test-secret")


def lead(dripper: Dripper, email: str) -> dict | None:
    result = dripper("plan", email, "--json", ok=False)
    return json.loads(result.stdout)["lead"] if result.exit_code == 0 else None


# --- one broken row among many (the real CLI) ---------------------------------------------


def test_a_byte_that_is_not_utf8_in_row_700_skips_that_row_alone(project: Path, sqlite_url: str) -> None:
    rows = [list(HEADER)] + [row(f"lead{i}@x.example", first=f"L{i}") for i in range(1, 1001)]
    rows[3][3] = "Smith's\nWorks"  # a quoted line break (a bad row): the lines after it are one further on
    data = csv_bytes(rows).replace(b"L700,", b"M\xf6ller,")  # row 700: Latin-1 slipped into a UTF-8 file
    (project / "big.csv").write_bytes(data)

    done = real_import(project, sqlite_url, "big.csv")

    assert done.returncode == 2, done.stderr
    assert reported(done.stderr) == [
        "big.csv:4: company contains a line break",
        "big.csv:702: first_name: byte 0xF6 is not valid utf-8; "
        "if the file was saved in another encoding, give it with --encoding (e.g. cp1252)",
    ]
    assert "998 lead(s) imported (998 new" in done.stdout
    assert "2 row(s) skipped; encoding utf-8, delimiter comma" in done.stdout
    assert real_lead(project, sqlite_url, "lead700@x.example") is None
    assert real_lead(project, sqlite_url, "lead699@x.example")["first_name"] == "L699"
    assert real_lead(project, sqlite_url, "lead701@x.example")["first_name"] == "L701"


def test_a_one_mib_cell_skips_its_row_and_the_rest_import(project: Path, sqlite_url: str) -> None:
    rows = [list(HEADER), row("a@x.example"), row("huge@x.example", product="x" * (1 << 20)), row("c@x.example")]
    (project / "huge.csv").write_bytes(csv_bytes(rows))

    done = real_import(project, sqlite_url, "huge.csv")

    assert done.returncode == 2, done.stderr
    assert reported(done.stderr) == [f"huge.csv:3: the row is longer than {csvfile.MAX_ROW:,} characters"]
    assert "2 lead(s) imported" in done.stdout
    assert real_lead(project, sqlite_url, "c@x.example") is not None
    assert real_lead(project, sqlite_url, "huge@x.example") is None


def test_excel_semicolons_in_windows_1252_import_with_names_intact(project: Path, sqlite_url: str) -> None:
    people = [
        ("j.mueller@x.de", "Jürgen", "Müller", "Bäckerei Größe GmbH"),
        ("f.lefevre@x.fr", "François", "Lefèvre", "Société Générale, Lyon"),
        ("j.munoz@x.es", "José", "Muñoz", "Señor Pérez SA"),
        ("plain@x.example", "Plain", "Ascii", "Co"),
    ]
    rows = [list(HEADER)] + [row(e, first=f, last=la, company=c) for e, f, la, c in people]
    (project / "excel.csv").write_bytes(csv_bytes(rows, delimiter=";", encoding="cp1252", newline="\r\n"))

    done = real_import(project, sqlite_url, "excel.csv")

    assert done.returncode == 0, done.stderr
    assert "4 lead(s) imported" in done.stdout
    assert "encoding cp1252 (detected), delimiter semicolon" in done.stdout
    for email, first, last, company in people:
        stored = real_lead(project, sqlite_url, email)
        assert (stored["first_name"], stored["last_name"], stored["company"]) == (first, last, company)


# --- NUL, sizes: the same on both databases -------------------------------------------------


def test_a_nul_byte_in_a_name_skips_that_row_on_every_database(dripper: Dripper, project: Path) -> None:
    rows = [list(HEADER), row("a@x.example"), row("nul@x.example", first="Ad\x00a"), row("c@x.example")]
    (project / "nul.csv").write_bytes(csv_bytes(rows))

    result = dripper("leads", "import", "nul.csv", "--at", T0, ok=2)

    assert reported(result.stderr) == ["nul.csv:3: first_name contains a NUL character (byte 0x00)"]
    assert "2 lead(s) imported" in result.stdout
    assert lead(dripper, "a@x.example") is not None and lead(dripper, "c@x.example") is not None
    assert lead(dripper, "nul@x.example") is None


def test_a_cell_longer_than_its_column_skips_the_row_on_every_database(dripper: Dripper, project: Path) -> None:
    """PostgreSQL refuses 201 characters in `first_name` (SQLite would keep them): the
    row is refused on both, with the limit, and the batch goes on."""
    rows = [
        list(HEADER),
        row("a@x.example", first="F" * 200),  # just fits
        row("long@x.example", first="F" * 201),
        row("zip@x.example"),
        row("c@x.example"),
    ]
    rows[0].append("postal_code")
    for r in rows[1:]:
        r.append("")
    rows[3][-1] = "9" * 33
    (project / "long.csv").write_bytes(csv_bytes(rows))

    result = dripper("leads", "import", "long.csv", "--at", T0, ok=2)

    assert reported(result.stderr) == [
        "long.csv:3: first_name is 201 characters long; at most 200 are taken",
        "long.csv:4: postal_code is 33 characters long; at most 32 are taken",
    ]
    assert lead(dripper, "a@x.example")["first_name"] == "F" * 200
    assert lead(dripper, "c@x.example") is not None


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (csvfile.MAX_CELL + 1, f"product is {csvfile.MAX_CELL + 1:,} characters long; at most {csvfile.MAX_CELL:,}"),
        (200_000, f"a cell is longer than 131,072 characters (at most {csvfile.MAX_CELL:,})"),
        (csvfile.MAX_ROW, f"the row is longer than {csvfile.MAX_ROW:,} characters"),
    ],
    ids=["over-max-cell", "over-csv-field-limit", "over-max-row"],
)
def test_an_oversized_cell_skips_its_row(dripper_sqlite: Dripper, project: Path, size: int, message: str) -> None:
    rows = [list(HEADER), row("a@x.example"), row("big@x.example", product="y" * size), row("c@x.example")]
    (project / "big.csv").write_bytes(csv_bytes(rows))
    result = dripper_sqlite("leads", "import", "big.csv", "--at", T0, ok=2)
    assert len(reported(result.stderr)) == 1
    assert reported(result.stderr)[0].startswith(f"big.csv:3: {message}")
    assert "2 lead(s) imported" in result.stdout


def test_a_crlf_cut_by_the_row_limit_is_still_one_line_end(dripper_sqlite: Dripper, project: Path) -> None:
    """A row of exactly MAX_ROW characters before its CRLF: the limit falls between CR and
    LF, and the LF must not count as a line of its own."""
    cells = row("big@x.example", product="")
    cells[-1] = "y" * (csvfile.MAX_ROW - len(",".join(cells)))
    rows = [list(HEADER), cells, row("bad", first="X"), row("c@x.example")]
    (project / "crlf.csv").write_bytes(csv_bytes(rows, newline="\r\n"))
    result = dripper_sqlite("leads", "import", "crlf.csv", "--at", T0, ok=2)
    assert [line.split(": ", 1)[0] for line in reported(result.stderr)] == ["crlf.csv:2", "crlf.csv:3"]
    assert lead(dripper_sqlite, "c@x.example") is not None


def test_a_huge_cell_with_line_breaks_is_one_bad_row(dripper_sqlite: Dripper, project: Path) -> None:
    """The parser gives up inside the quoted cell: its lines are no rows of their own, and
    the lines after it keep their numbers."""
    notes = "\n".join(["z" * 1000] * 1100)  # 1,100 lines inside one quoted cell
    rows = [list(HEADER), row("big@x.example", product=notes), row("after@x.example"), row("bad", first="X")]
    (project / "ml.csv").write_bytes(csv_bytes(rows))
    result = dripper_sqlite("leads", "import", "ml.csv", "--at", T0, ok=2)
    assert reported(result.stderr) == [
        "ml.csv:2: a cell is longer than 131,072 characters (at most 65,536) (lines 2-1101)",
        "ml.csv:1103: invalid e-mail address 'bad': expected local-part@domain",
    ]
    assert lead(dripper_sqlite, "after@x.example") is not None


def test_a_quote_never_closed_is_reported_with_the_lines_it_takes(dripper_sqlite: Dripper, project: Path) -> None:
    rows = [list(HEADER), row("a@x.example")] + [row(f"r{i}@x.example", product="p" * 100) for i in range(12_000)]
    data = csv_bytes(rows).replace(b"r5@x.example,A", b'r5@x.example,"A')
    (project / "open.csv").write_bytes(data)
    result = dripper_sqlite("leads", "import", "open.csv", "--at", T0, ok=2)
    assert reported(result.stderr) == [
        "open.csv:8: a cell is longer than 131,072 characters (at most 65,536); a quote opened in it is never "
        "closed, so lines 8-12002 are skipped"
    ]
    assert "6 lead(s) imported" in result.stdout


# --- delimiters, encodings, overrides -----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (csv_bytes([list(HEADER), row("a@x.example", first="Zoë")], delimiter="\t"), "encoding utf-8, delimiter tab"),
        (
            b"\xef\xbb\xbf" + csv_bytes([list(HEADER), row("a@x.example", first="Zoë")], delimiter=";"),
            "encoding utf-8 (BOM), delimiter semicolon",
        ),
        (  # Excel's "Unicode text": UTF-16 with a byte order mark, tab-separated
            csv_bytes(
                [list(HEADER), row("a@x.example", first="Zoë")], delimiter="\t", encoding="utf-16", newline="\r\n"
            ),
            "encoding utf-16 (BOM), delimiter tab",
        ),
        (  # Excel's `sep=` line names the delimiter; the header is the line after it
            b"sep=;\r\n" + csv_bytes([list(HEADER), row("a@x.example", first="Zoë")], delimiter=";", encoding="cp1252"),
            "encoding cp1252 (detected), delimiter semicolon",
        ),
    ],
    ids=["tab", "utf8-bom-semicolon", "utf16-tab", "sep-line"],
)
def test_delimiter_and_encoding_are_found_and_said(
    dripper_sqlite: Dripper, project: Path, data: bytes, described: str
) -> None:
    (project / "in.csv").write_bytes(data)
    result = dripper_sqlite("leads", "import", "in.csv", "--at", T0)
    assert reported(result.stderr) == []
    assert "1 lead(s) imported" in result.stdout and described in result.stdout
    stored = lead(dripper_sqlite, "a@x.example")
    assert (stored["first_name"], stored["stage"], stored["attrs"]) == ("Zoë", STAGE, {"product": "valves"})


def test_a_bad_line_number_after_a_sep_line_is_the_physical_one(dripper_sqlite: Dripper, project: Path) -> None:
    data = b"sep=;\n" + csv_bytes([list(HEADER), row("a@x.example"), row("nope")], delimiter=";")
    (project / "in.csv").write_bytes(data)
    result = dripper_sqlite("leads", "import", "in.csv", "--at", T0, ok=2)
    assert reported(result.stderr)[0].startswith("in.csv:4: invalid e-mail address 'nope'")


def test_delimiter_option_overrides_sniffing(dripper_sqlite: Dripper, project: Path) -> None:
    (project / "in.csv").write_bytes(b"email;first_name\na@x.example;Ada\n")
    refused = dripper_sqlite("leads", "import", "in.csv", "--delimiter", ",", ok=1)
    assert "in.csv:1: no 'email' column in the header (found: email;first_name)" in refused.stderr
    result = dripper_sqlite("leads", "import", "in.csv", "--delimiter", ";", "--at", T0)
    assert "delimiter semicolon" in result.stdout
    assert lead(dripper_sqlite, "a@x.example")["first_name"] == "Ada"
    (project / "tab.csv").write_bytes(b"email\tfirst_name\nb@x.example\tBo, Jr\n")
    dripper_sqlite("leads", "import", "tab.csv", "--delimiter", "tab", "--at", T0)
    assert lead(dripper_sqlite, "b@x.example")["first_name"] == "Bo, Jr"


def test_encoding_option_overrides_detection(dripper_sqlite: Dripper, project: Path) -> None:
    """One Latin-1 name among two hundred ASCII rows reads as a broken row of a UTF-8 file;
    --encoding says what the file is."""
    rows = [list(HEADER)] + [row(f"l{i}@x.example") for i in range(200)] + [row("m@x.example", first="Jörg")]
    (project / "in.csv").write_bytes(csv_bytes(rows, encoding="cp1252"))
    guessed = dripper_sqlite("leads", "import", "in.csv", "--at", T0, ok=2)
    assert reported(guessed.stderr) == [
        "in.csv:202: first_name: byte 0xF6 is not valid utf-8; "
        "if the file was saved in another encoding, give it with --encoding (e.g. cp1252)"
    ]
    result = dripper_sqlite("leads", "import", "in.csv", "--encoding", "cp1252", "--at", T0)
    assert "encoding cp1252 (--encoding), delimiter comma" in result.stdout
    assert lead(dripper_sqlite, "m@x.example")["first_name"] == "Jörg"


def test_a_byte_the_given_encoding_cannot_read_is_a_bad_row(dripper_sqlite: Dripper, project: Path) -> None:
    data = "\n".join([",".join(HEADER), ",".join(row("a@x.example", first="Zoë"))]).encode("cp1252")
    data += b"\nb@x.example,B\x81,B,Co,supplier_research,,,valves\n"  # 0x81: no character in Windows-1252
    (project / "in.csv").write_bytes(data)
    result = dripper_sqlite("leads", "import", "in.csv", "--encoding", "cp1252", "--at", T0, ok=2)
    assert reported(result.stderr) == ["in.csv:3: first_name: byte 0x81 is not valid cp1252"]
    assert lead(dripper_sqlite, "a@x.example")["first_name"] == "Zoë"


@pytest.mark.parametrize(
    ("options", "words"),
    [(("--encoding", "klingon"), "unknown encoding 'klingon'"), (("--encoding", "base64"), "unknown encoding")],
)
def test_an_unknown_encoding_reads_nothing(
    dripper_sqlite: Dripper, project: Path, options: tuple[str, ...], words: str
) -> None:
    (project / "in.csv").write_bytes(csv_bytes([list(HEADER), row("a@x.example")]))
    result = dripper_sqlite("leads", "import", "in.csv", *options, ok=1)
    assert f"in.csv:1: {words}" in result.stderr


def test_a_header_with_a_byte_that_is_not_text_reads_nothing(dripper_sqlite: Dripper, project: Path) -> None:
    data = b"email,stra\xdfe\n" + b"".join(f"l{i}@x.example,Main St\n".encode() for i in range(200))
    (project / "in.csv").write_bytes(data)
    result = dripper_sqlite("leads", "import", "in.csv", ok=1)
    assert "in.csv:1: the header: column 2: byte 0xDF is not valid utf-8" in result.stderr


# --- bad rows: columns, duplicates ----------------------------------------------------------


def test_wrong_column_counts_are_bad_rows(dripper_sqlite: Dripper, project: Path) -> None:
    text = (
        ",".join(HEADER) + "\n"  # 1
        "a@x.example,A,B,Co,supplier_research,,,valves\n"  # 2
        "short@x.example,A,B\n"  # 3
        "long@x.example,A,B,Co,supplier_research,,,valves,extra\n"  # 4
        'open@x.example,"A,B,Co,supplier_research,,,valves\n'  # 5: a quote left open ...
        'c@x.example,C,"B",Co,supplier_research,,,valves\n'  # 6: ... to here
        "d@x.example,D,B,Co,supplier_research,,,valves\n"  # 7
    )
    (project / "cols.csv").write_text(text)
    result = dripper_sqlite("leads", "import", "cols.csv", "--at", T0, ok=2)
    assert reported(result.stderr) == [
        "cols.csv:3: expected 8 fields, found 3",
        "cols.csv:4: expected 8 fields, found 9",
        "cols.csv:5: expected 8 fields, found 7 (the row runs to line 6: a quote left open?)",
    ]
    assert lead(dripper_sqlite, "d@x.example") is not None


def test_a_skipped_duplicate_gets_no_other_warning(dripper: Dripper, project: Path) -> None:
    """The second row of an e-mail is reported as a duplicate, once: not also for its
    incomplete postal address, which nobody will import."""
    header = ["email", "first_name", "stage", "address_line1", "city", "postal_code", "country"]
    rows = [
        header,
        ["a@x.example", "A", STAGE, "", "", "", ""],  # 2
        ["A@x.example", "Again", STAGE, "1 Main St", "", "", "US"],  # 3: duplicate, incomplete address
        ["b@x.example", "B", STAGE, "1 Main St", "", "", "US"],  # 4: incomplete address, imported
    ]
    (project / "dup.csv").write_bytes(csv_bytes(rows))
    result = dripper("leads", "import", "dup.csv", "--at", T0, "--batch-size", "1", ok=2)
    lines = reported(result.stderr)
    assert [line.split(": ", 1)[0] for line in lines] == ["dup.csv:3", "dup.csv:4"]
    assert lines[0] == "dup.csv:3: duplicate of line 2 (a@x.example)"
    assert lines[1].startswith("dup.csv:4: warning: postal address incomplete")
    assert "1 row(s) skipped, 1 warning(s)" in result.stdout


# --- the pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "codec", "expected"),
    [
        ("f@x.fr;François;Lefèvre;Société Générale;Besançon\n", "cp1252", "cp1252"),
        ("s@x.es;José;Muñoz;Señor Pérez SA;Málaga\n", "cp1252", "cp1252"),
        ("j@x.de;Jürgen;Müller;Bäckerei Größe GmbH;Köln\n", "cp1252", "cp1252"),
        ("p@x.pl;Łukasz;Żółć;;Kraków\n", "cp1250", "cp1250"),
        ("r@x.ru;Иван;Петров;;Москва\n", "cp1251", "cp1251"),
        ("e@x.de;Preis 5 €;Jürgen\n" * 20, "cp1252", "cp1252"),
        ("p@x.pl;Łukasz;Żółć;;Kraków\np@x.pl;Paweł;Wiśniewski;Łódź\n" * 20, "cp1250", "cp1250"),
        ("f@x.fr;Hélène;Lefèvre;Besançon\nn@x.fr;Noël;Dubœuf;Orléans\n" * 20, "cp1252", "cp1252"),
    ],
    ids=["french", "spanish", "german", "polish", "russian", "euro", "polish-more", "french-more"],
)
def test_legacy_encodings_are_told_apart_even_from_a_few_names(text: str, codec: str, expected: str) -> None:
    assert csvfile.legacy_encoding(text.encode(codec)) == expected


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("email,first_name", ","),
        ("email;first_name;company", ";"),
        ("email\tfirst_name", "\t"),
        ('"Müller, Co";email;name', ";"),  # a comma inside a quoted name is no delimiter
        ("email", ","),
        ("mail;name;x", ";"),  # no email column: the delimiter that splits most, for the error message
    ],
)
def test_the_delimiter_is_the_one_that_splits_email_out_of_the_header(header: str, delimiter: str) -> None:
    assert csvfile._sniff_delimiter(header + "\r\n") == delimiter
