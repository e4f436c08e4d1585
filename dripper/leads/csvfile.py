"""A lead file as it really arrives: its encoding and delimiter found (or given), its
records read with the physical line each starts on, and what is wrong with a record's
cells (bytes that are not text, NUL, size) said for that record alone.

The encoding is decided for the whole file before anything is imported (`open_lead_file`):
  - `--encoding` wins;
  - a byte order mark decides: UTF-8, or UTF-16 (Excel's "Unicode text");
  - a file that is valid UTF-8 is UTF-8;
  - a file that is UTF-8 but for a few rows (some of its non-ASCII text is valid UTF-8,
    or the broken rows are fewer than ten and at most one in a hundred) stays UTF-8:
    those rows are reported as bad rows and skipped;
  - anything else is a legacy encoding (Excel in Germany, France or Spain saves CSV in
    Windows-1252), which charset-normalizer names from the rows that are not UTF-8.
Whatever the encoding, a byte the encoding cannot read becomes a lone surrogate in its
cell (as with `surrogateescape`), so the CSV parser still sees every physical line
(quoted fields with line breaks included), and the row holding it is the one refused
(`cell_problem`).
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple, TextIO

from dripper.leads.records import LeadError

# What one record may hold. Cells of the lead's own columns are bounded by the store's
# columns (`leads.first_name` is 200 characters: PostgreSQL refuses more, SQLite would keep
# it, so both refuse the row here); an attribute cell by MAX_CELL; a whole record, however
# many physical lines it spans, by MAX_ROW, which also bounds the memory one record takes.
MAX_CELL = 65_536  # characters
MAX_ROW = 1_048_576  # characters
# The csv module's own bound on a cell (its default), above MAX_CELL: a longer cell stops
# the parser inside the record, which is then refused like any other too long.
_CSV_FIELD_LIMIT = 131_072

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}  # the ones sniffed, in order of preference
DELIMITER_NAMES = {"comma": ",", ",": ",", "semicolon": ";", ";": ";", "tab": "\t", "\t": "\t", "\\t": "\t"}

_BOMS = (  # longest first: the UTF-32 LE mark starts like UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (a zip), .xls (OLE2)
_CHUNK = 1 << 20
_SAMPLE = 1 << 16  # bytes of broken lines handed to charset-normalizer (it reads about 1 MB/s)
_FEW_BROKEN = 10  # fewer broken rows than this (and under 1 in 100) are bad rows of a UTF-8 file
_SEP_LINE = re.compile(r"sep=(.)\r?\n?", re.IGNORECASE)  # Excel's first line naming the delimiter
_NOT_TEXT = re.compile("[\x00\udc00-\udcff]")  # NUL, or a byte the encoding could not read
_KEEP_BYTES = "dripper-keep-bytes"


def _keep_bytes(error: UnicodeError) -> tuple[str, int]:
    """Each byte the codec cannot read as a lone surrogate U+DC00 + byte, as
    `surrogateescape` does, but for any codec (that one refuses bytes below 0x80, which a
    broken UTF-16 file has)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + b) for b in bad), error.end


# A named handler is how a codec is told what to do; registering the same pure function
# again (a re-import) changes nothing.
codecs.register_error(_KEEP_BYTES, _keep_bytes)


@dataclass(frozen=True)
class Format:
    """How a lead file is read."""

    encoding: str  # a Python codec name
    delimiter: str
    encoding_source: str  # "" (UTF-8, the default), "BOM", "detected", "--encoding"
    sep_line: bool = False  # the file starts with Excel's `sep=;` line

    @property
    def encoding_name(self) -> str:
        return {"utf-8-sig": "utf-8", "utf_8": "utf-8"}.get(self.encoding, self.encoding)

    @property
    def encoding_label(self) -> str:
        """The name and how it was chosen: `cp1252 (detected)`."""
        return f"{self.encoding_name} ({self.encoding_source})" if self.encoding_source else self.encoding_name

    @property
    def delimiter_label(self) -> str:
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))

    def describe(self) -> str:
        """For the summary: `encoding cp1252 (detected), delimiter semicolon`."""
        return f"encoding {self.encoding_label}, delimiter {self.delimiter_label}"


@dataclass(frozen=True)
class LeadFile:
    path: Path
    format: Format
    lines: int  # physical lines after the first, for a progress bar


def open_lead_file(path: Path, *, delimiter: str | None = None, encoding: str | None = None) -> LeadFile:
    """Decide how to read `path` (one pass over its bytes). Raises OSError when it cannot be
    read, LeadError when it is no lead file (empty, a workbook, an unknown --encoding)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(0)
        if head.startswith(_WORKBOOKS):
            raise LeadError("this is an Excel workbook, not a CSV file: save it from Excel as 'CSV UTF-8'")
        scan = _scan(handle)
    fmt_encoding, source = _encoding(head, scan, encoding)
    with _text(path, fmt_encoding) as text:
        first = text.readline(MAX_ROW)
        sep = _SEP_LINE.fullmatch(first)
        header = text.readline(MAX_ROW) if sep else first
    if not header.strip():
        raise LeadError("the file is empty: expected a header line with at least 'email'")
    chosen = DELIMITER_NAMES[delimiter] if delimiter else (sep.group(1) if sep else _sniff_delimiter(header))
    return LeadFile(path, Format(fmt_encoding, chosen, source, sep_line=bool(sep)), max(0, scan.lines - 1))


# --- the encoding ----------------------------------------------------------------------
@dataclass
class _Scan:
    lines: int = 0  # line feeds
    broken: int = 0  # lines that are not valid UTF-8
    utf8: bool = False  # some non-ASCII text is valid UTF-8
    sample: bytearray | None = None  # the broken lines, up to _SAMPLE bytes


def _scan(handle: BinaryIO) -> _Scan:
    """Count the lines and the ones that are not UTF-8, a chunk at a time: a chunk that is
    ASCII or decodes whole (nearly every one) costs no Python per line."""
    scan = _Scan(sample=bytearray())
    carry = b""
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) < 4 * _CHUNK:
            carry = data
            continue
        body, carry = (data[:cut], data[cut:]) if cut else (data, b"")
        scan.lines += body.count(b"\n")
        _scan_lines(body, scan)
    _scan_lines(carry, scan)
    return scan


def _scan_lines(body: bytes, scan: _Scan) -> None:
    if body.isascii():
        return
    try:
        body.decode("utf-8")
        scan.utf8 = True
        return
    except UnicodeDecodeError:
        pass
    for line in body.split(b"\n"):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            scan.utf8 = True
        except UnicodeDecodeError:
            scan.broken += 1
            if scan.sample is not None and len(scan.sample) < _SAMPLE:
                scan.sample += line + b"\n"


def _encoding(head: bytes, scan: _Scan, given: str | None) -> tuple[str, str]:
    """(codec, how it was chosen) for the file."""
    if given:
        return _known_codec(given, head), "--encoding"
    for bom, codec, _ in _BOMS:
        if head.startswith(bom):
            return codec, "BOM"
    mostly_utf8 = scan.utf8 or (scan.broken < _FEW_BROKEN and scan.broken * 100 <= max(scan.lines, 1))
    if not scan.broken or mostly_utf8:
        return "utf-8", ""
    legacy = legacy_encoding(bytes(scan.sample or b""))
    return (legacy, "detected") if legacy else ("utf-8", "")


def _known_codec(name: str, head: bytes) -> str:
    try:
        b"x".decode(name, "ignore")  # LookupError: an unknown name, or no text codec (base64); b"" would not look
    except LookupError:
        raise LeadError(f"unknown encoding {name!r} (--encoding): use e.g. utf-8, cp1252, latin-1") from None
    codec = codecs.lookup(name).name
    if codec == "utf-8" and head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"  # the mark is no part of the header's first name
    return codec


def legacy_encoding(sample: bytes) -> str | None:
    """The Windows code page `sample` (lines that are not UTF-8) is in, by charset-normalizer.

    Names give it little to go on, and it can rank wrongly: Windows-1250 and -1252 often
    fit equally well, though `Lefèvre` read as Windows-1250 is `Lefčvre`, and Polish names
    in Windows-1250 came out best as Windows-1252 (`£ukasz`). Of the fits it finds nearly
    as good as its best (_NEARLY), the one that reads the most non-ASCII characters as
    what names are made of wins (letters, € and punctuation; not ¯ or ³), then the least chaotic, then the
    one whose text it finds most like a language, then Windows-1252 (Excel's in Western Europe), then its own order."""
    from charset_normalizer import from_bytes

    results = [r for r in from_bytes(sample, cp_isolation=list(_ANSI_CODE_PAGES)) if r.encoding in _ANSI_CODE_PAGES]
    if not results:
        return None
    least = min(r.chaos for r in results)
    near = [r for r in results if r.chaos <= least + _NEARLY]

    def letters(codec: str) -> int:
        text = sample.decode(codec, errors="replace")
        return sum(1 for c in text if not c.isascii() and unicodedata.category(c) in _IN_NAMES)

    scored = [
        (letters(r.encoding), -round(r.chaos, 2), round(r.coherence, 2), "cp1252" in r.could_be_from_charset, -i, r)
        for i, r in enumerate(near)
    ]
    top = max(scored, key=lambda s: s[:5])
    return "cp1252" if top[3] else top[5].encoding


# What Excel writes as "CSV" on Windows: the system's ANSI code page. Asking only about
# these keeps DOS, Mac and ISO code pages, which read a few names as well, out of a close call.
_ANSI_CODE_PAGES = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "cp874", "cp932", "cp936", "cp949", "cp950",
)  # fmt: skip
# Unicode categories of what names, places and notes hold: letters, currency signs (€),
# dashes, quotes and other punctuation, ©®™°, spaces; not ¯ ³ ± nor control characters.
_IN_NAMES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Sc", "Pd", "Pi", "Pf", "Po", "Ps", "Pe", "So", "Zs"})
_NEARLY = 0.2  # charset-normalizer's chaos, 0 (clean) to 1: how much worse than its best still counts


def _text(path: Path, encoding: str) -> TextIO:
    """The file as text: bytes it cannot decode kept as lone surrogates (`cell_problem` finds
    them), line ends left as they are for the csv module."""
    return open(path, encoding=encoding, errors=_KEEP_BYTES, newline="")


# --- the delimiter ---------------------------------------------------------------------
def _sniff_delimiter(header: str) -> str:
    """The header must name `email`: the delimiter that splits it out wins (the most
    columns if several do); else the one that splits the header most. csv.Sniffer guesses
    from letter frequencies and picks a letter or a space in short files; this cannot."""
    best: tuple[bool, int, int, str] | None = None
    for rank, delimiter in enumerate(reversed(DELIMITERS)):
        cells = next(csv.reader([header], delimiter=delimiter), [])
        names = [c.strip().lower().lstrip("\ufeff") for c in cells]
        score = ("email" in names, len(cells), rank, delimiter)
        if best is None or score > best:
            best = score
    assert best is not None
    return best[3]


# --- records ---------------------------------------------------------------------------
class RowTooLong(Exception):
    """A record went over MAX_ROW characters; its physical lines are read no further."""


class Record(NamedTuple):  # a tuple, not a frozen dataclass: one is made per row, and this is made in C
    """One CSV record: the physical line it starts on, the last it spans, its cells (or
    why it could not be parsed)."""

    line: int
    last_line: int
    cells: list[str]
    problem: str = ""


class _Lines:
    """The file's physical lines as csv.reader pulls them, counted, at most MAX_ROW
    characters per record (`start_record` begins the count again). The quotes of the
    record are counted too: after a record broke off, `skip_quoted` finds where it ends."""

    def __init__(self, text: TextIO):
        self._readline = text.readline
        self.line = 0
        self._left = MAX_ROW
        self._quotes = 0
        self._cut_cr = False  # the last read stopped at its size between a CR and its LF

    def start_record(self) -> None:
        self._left = MAX_ROW
        self._quotes = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        text = self._read(self._left + 1)
        if not text:
            raise StopIteration
        self.line += 1
        self._left -= len(text)
        self._quotes += text.count('"')
        if self._left < 0:
            if text[-1] not in "\r\n":
                self._read_line()
            raise RowTooLong
        return text

    def _read_line(self) -> bool:
        """Read on to the end of the physical line, a chunk at a time, counting its quotes;
        False at the end of the file."""
        read = False
        while rest := self._read(_CHUNK):
            read = True
            self._quotes += rest.count('"')
            if rest[-1] in "\r\n":
                break
        return read

    def _read(self, size: int) -> str:
        """At most `size` characters of the line, as `readline` reads them; except that a
        CRLF the size cut in two stays one line end (the LF is not a line of its own)."""
        text = self._readline(size)
        if self._cut_cr:
            self._cut_cr = False
            if text == "\n":
                text = self._readline(size)
        self._cut_cr = len(text) == size and text[-1] == "\r"
        return text

    def skip_quoted(self) -> bool:
        """After the parser gave up inside a record: while a quote of it is still open, read
        on, line by line (the rest of a cell with line breaks). False when the file ends first."""
        while self._quotes % 2:
            if not self._read_line():
                return False
            self.line += 1
        return True


def records(lead_file: LeadFile) -> Iterator[Record]:
    """The header, then every record, each with its physical line (the first line is 1).
    A record that cannot be parsed (too long) comes with its problem and no cells."""
    with _text(lead_file.path, lead_file.format.encoding) as text:
        lines = _Lines(text)
        if lead_file.format.sep_line:
            next(lines, None)
        reader = csv.reader(lines, delimiter=lead_file.format.delimiter)
        while True:
            start = lines.line + 1
            lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (RowTooLong, csv.Error) as exc:
                yield _broken(start, lines, exc)
                continue
            yield Record(start, lines.line, cells)


def _broken(start: int, lines: _Lines, exc: Exception) -> Record:
    """The record the parser gave up on, read to its end: a quoted cell it broke off in
    goes on to the line that closes the quote (its lines are no rows of their own)."""
    if isinstance(exc, RowTooLong):
        problem = f"the row is longer than {MAX_ROW:,} characters"
    elif "field limit" in str(exc):
        problem = f"a cell is longer than {_CSV_FIELD_LIMIT:,} characters (at most {MAX_CELL:,})"
    else:
        problem = f"cannot be read as CSV: {exc}"
    closed = lines.skip_quoted()
    if not closed:
        problem += f"; a quote opened in it is never closed, so lines {start}-{lines.line} are skipped"
    elif lines.line > start:
        problem += f" (lines {start}-{lines.line})"
    return Record(start, lines.line, [], problem)


def cell_problem(
    header: Sequence[str], cells: Sequence[str], fmt: Format, limits: Sequence[int], shortest: int
) -> str | None:
    """What is wrong with a record's cells as text, or None: bytes the encoding cannot
    read, a NUL (PostgreSQL stores no NUL in text; SQLite would), a cell longer than its
    column (`limits`, one per column; `shortest` the least of them) or than MAX_CELL.
    Runs for every row: a good one costs a join and three tests made in C."""
    joined = "".join(cells)
    if (not joined.isascii() or "\x00" in joined) and _NOT_TEXT.search(joined):
        for name, cell in zip(header, cells, strict=False):
            found = _NOT_TEXT.search(cell)
            if found is None:
                continue
            if found.group() == "\x00":
                return f"{name} contains a NUL character (byte 0x00)"
            byte = ord(found.group()) - 0xDC00
            problem = f"{name}: byte 0x{byte:02X} is not valid {fmt.encoding_name}"
            if fmt.encoding_source in ("", "detected"):  # a guess: perhaps a wrong one
                problem += "; if the file was saved in another encoding, give it with --encoding (e.g. cp1252)"
            return problem
    if len(joined) > shortest and max(map(len, cells)) > shortest:
        for name, cell, limit in zip(header, cells, limits, strict=False):
            if len(cell) > limit and len(cell.strip()) > limit:
                return f"{name} is {len(cell.strip()):,} characters long; at most {limit:,} are taken"
    return None


__all__ = [
    "DELIMITERS",
    "DELIMITER_NAMES",
    "MAX_CELL",
    "MAX_ROW",
    "Format",
    "LeadFile",
    "Record",
    "cell_problem",
    "legacy_encoding",
    "open_lead_file",
    "records",
]
