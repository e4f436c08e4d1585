"""Letters: a letter touch's rendered HTML becomes a print-ready PDF, and the letters of a
day become one print batch.

dripper owns the first page's frame, so that every letter fits its envelope whatever the
template does: the recipient block where the envelope's window shows it, the sender's
return address, the date in the letter's language, fold marks and, on letters of more
than one page, page numbers. The template supplies the letterhead (the element with
class `letterhead`) and the body, which starts below the window.

Two frames (all measures from the top-left corner of the first page):
- `din5008`: A4, DIN 5008 form B, for DL / C5/6 window envelopes (DIN 680, ISO 269). The
  address field is 85 x 45 mm at (20 mm, 45 mm): a 17.7 mm zone whose last line is the
  return address, then a 27.3 mm zone for the recipient.
- `us10`: US Letter, tri-folded into a #10 double-window envelope. The recipient window
  is 4 x 1.125 in at (0.875 in, 2 in), inside the envelope's 4.5 x 1.125 in window with
  room for the letter to shift; the return address shows through the upper window at
  (0.875 in, 0.5 in).

WeasyPrint renders HTML/CSS with real fonts, embeds and subsets them (accented, Greek,
Cyrillic and, with a CJK font installed, Chinese and Japanese names print correctly),
and supports the @page rules letters need. pypdf merges the batch without re-rendering.
"""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

from lxml import etree
from lxml import html as lxml_html

from dripper import csvsafe
from dripper.channels.letters import libraries as letter_libraries
from dripper.leads.postal import PaperFormat

MM_PER_IN = 25.4
ADDRESS_FONT = '"DejaVu Sans", "Noto Sans", "Droid Sans Fallback", "Noto Sans CJK JP", Arial, sans-serif'


@dataclass(frozen=True)
class Box:
    """A rectangle on the page in millimetres from the top-left corner."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class Frame:
    name: PaperFormat
    page: tuple[float, float]  # width, height in mm
    size: str  # CSS page size
    margins: tuple[float, float, float, float]  # top, right, bottom, left on pages 2+
    letterhead: Box
    return_address: Box
    window: Box  # what the envelope window shows of the recipient block
    date: Box
    body_top: float  # where the body starts on the first page
    folds: tuple[float, ...]  # fold marks on the left edge, mm from the top
    # DIN 5008: one small underlined line just above the recipient; US: a block at the top.
    return_one_line: bool = True


FRAMES: dict[str, Frame] = {
    "din5008": Frame(
        name="din5008",
        page=(210, 297),
        size="A4",
        margins=(20, 20, 22, 25),
        letterhead=Box(25, 10, 165, 30),
        return_address=Box(20, 45 + 17.7 - 5.5, 85, 5.5),
        window=Box(20, 45 + 17.7, 85, 27.3),
        date=Box(125, 45 + 17.7, 65, 6),
        body_top=98.5,
        folds=(105, 148.5, 210),
    ),
    "us10": Frame(
        name="us10",
        page=(215.9, 279.4),
        size="letter",
        margins=(25.4, 25.4, 22, 25.4),
        letterhead=Box(111.1, 12.7, 79.4, 30),
        return_address=Box(22.2, 12.7, 82.6, 22.2),
        window=Box(22.2, 50.8, 101.6, 28.6),
        date=Box(131.0, 50.8, 59.5, 6),
        body_top=95.0,
        folds=(93.1, 186.3),
        return_one_line=False,
    ),
}


@dataclass(frozen=True)
class LetterParts:
    """What dripper prints on the first page besides the template's own content."""

    recipient: Sequence[str]  # address lines, already formatted for the destination
    return_address: str
    date: str


@dataclass(frozen=True)
class RenderedLetter:
    pdf: bytes
    pages: int


EM_PER_CHAR = 0.6  # the average advance of a character in a sans face, in em
RETURN_PT = 7.0  # the return address's size when it fits (DIN 5008: small, one line)
RETURN_MIN_PT = 5.0  # below this a single line becomes two
RETURN_LEADING = 1.15


def _pt(mm: float) -> float:
    return mm / MM_PER_IN * 72


def _fit_pt(chars: int, width_mm: float) -> float:
    """The size at which `chars` characters fill `width_mm`."""
    return _pt(width_mm) / (EM_PER_CHAR * max(chars, 1))


@dataclass(frozen=True)
class ReturnFit:
    size_pt: float
    wrap: bool  # on two lines: too long for one at RETURN_MIN_PT


def fit_return_line(text: str, box: Box) -> ReturnFit:
    """The DIN 5008 return address is one small line above the recipient. A long one is
    shrunk to fit the window's width, as the recipient block is; one that would need less
    than RETURN_MIN_PT wraps onto two lines instead, sized so that both fit the zone.
    Never cut off: the post office returns undeliverable letters to what it can read."""
    one = min(RETURN_PT, _fit_pt(len(text), box.w))
    if one >= RETURN_MIN_PT:
        return ReturnFit(one, wrap=False)
    # Two lines break at spaces, so allow for a line a little longer than half.
    two = min(RETURN_PT, _fit_pt(len(text) // 2 + 6, box.w), _pt(box.h) / (2 * RETURN_LEADING))
    return ReturnFit(two, wrap=True)


def _frame_css(frame: Frame, parts: LetterParts) -> str:
    top, right, bottom, left = frame.margins
    width = frame.window.w
    longest = max((len(line) for line in parts.recipient), default=1)
    # Fit the longest line into the window: about 0.6 em per character in a sans face.
    size_pt = max(6.5, min(10.0, _fit_pt(longest, width)))
    lines = max(len(parts.recipient), 1)
    size_pt = min(size_pt, frame.window.h / MM_PER_IN * 72 / (1.2 * lines))

    def place(box: Box) -> str:  # absolute, relative to the first page's content box
        return (
            f"left:{box.x - left:.2f}mm; top:{box.y - frame.body_top:.2f}mm; width:{box.w:.2f}mm; height:{box.h:.2f}mm;"
        )

    if frame.return_one_line:
        fit = fit_return_line(return_line(parts.return_address), frame.return_address)
        return_css = (
            f".dripper-return {{ {place(frame.return_address)} font: {fit.size_pt:.2f}pt/{RETURN_LEADING} "
            f"{ADDRESS_FONT}; color: #333; display: flex; flex-direction: column; justify-content: flex-end; }}\n"
            ".dripper-return span { border-bottom: 0.4pt solid #333; "
            f"white-space: {'normal' if fit.wrap else 'nowrap'}; overflow: hidden; }}"
        )
    else:
        return_css = (
            f".dripper-return {{ {place(frame.return_address)} font: 8pt/1.25 {ADDRESS_FONT}; color: #333; "
            "white-space: pre-line; }"
        )
    folds = "".join(
        f".dripper-fold-{i} {{ left:{-left + 3:.2f}mm; top:{y - frame.body_top:.2f}mm; }}\n"
        for i, y in enumerate(frame.folds)
    )
    return f"""
@page {{ size: {frame.size}; margin: {top}mm {right}mm {bottom}mm {left}mm; }}
@page :first {{ margin-top: {frame.body_top}mm; }}
html, body {{ position: static !important; margin: 0 !important; padding: 0 !important; }}
.dripper-abs {{ position: absolute; overflow: hidden; box-sizing: border-box; margin: 0; padding: 0; }}
.dripper-letterhead {{ {place(frame.letterhead)} }}
{return_css}
.dripper-window {{ {place(frame.window)} font: {size_pt:.2f}pt/1.2 {ADDRESS_FONT}; color: #000; }}
.dripper-window div {{ white-space: nowrap; overflow: hidden; }}
.dripper-date {{ {place(frame.date)} text-align: right; white-space: nowrap; }}
.dripper-fold {{ position: absolute; width: 4mm; height: 0; border-top: 0.3pt solid #999; }}
{folds}"""


def return_line(address: str) -> str:
    """A multi-line return address as the one line DIN 5008 prints above the recipient."""
    return " · ".join(line.strip() for line in address.splitlines() if line.strip())


_PAGE_NUMBERS = """@page { @bottom-right { content: counter(page) " / " counter(pages);
  font: 8pt "DejaVu Sans", Arial, sans-serif; color: #555; } }"""


def _div(cls: str, children: Iterable[lxml_html.HtmlElement] = (), text: str | None = None) -> lxml_html.HtmlElement:
    element = lxml_html.Element("div", {"class": cls})
    element.text = text
    element.extend(children)
    return element


def frame_letter(template_html: str, frame: Frame, parts: LetterParts) -> str:
    """The template's HTML with dripper's first-page frame laid over it."""
    doc = lxml_html.document_fromstring(template_html)
    head = doc.find("head")
    if head is None:
        head = lxml_html.Element("head")
        doc.insert(0, head)
    style = lxml_html.Element("style")
    style.text = _frame_css(frame, parts)
    head.append(style)  # last: wins over the template's own @page rules
    body = doc.find("body")
    assert body is not None  # document_fromstring always makes one
    overlay: list[lxml_html.HtmlElement] = []
    letterhead = body.find_class("letterhead")
    if letterhead:
        element = letterhead[0]
        element.getparent().remove(element)
        overlay.append(_div("dripper-abs dripper-letterhead", [element]))
    span = lxml_html.Element("span")
    span.text = return_line(parts.return_address) if frame.return_one_line else parts.return_address
    overlay.append(_div("dripper-abs dripper-return", [span]))
    overlay.append(_div("dripper-abs dripper-window", [_div("line", text=line) for line in parts.recipient]))
    overlay.append(_div("dripper-abs dripper-date", text=parts.date))
    overlay += [_div(f"dripper-fold dripper-fold-{i}") for i in range(len(frame.folds))]
    for index, element in enumerate(overlay):
        body.insert(index, element)
    return cast(str, lxml_html.tostring(doc, doctype="<!DOCTYPE html>", encoding="unicode"))


def document_lang(html: str) -> str | None:
    """The `lang` of the letter's <html> element (e.g. `en` from letters/base.html), or None."""
    try:
        doc = lxml_html.document_fromstring(html)
    except (ValueError, etree.ParserError):
        return None
    lang = str(doc.get("lang") or "").strip()
    return lang or None


def date_locale(lang: str | None, country: str | None) -> str | None:
    """The locale a letter's date is written in: the letter's own language, which decides
    what a reader can read (an English letter to a German lead carries an English date),
    with the lead's country's conventions when the language has them (`en` + DE ->
    en_DE, "2 March 2026"). None when the letter names no language Babel knows."""
    from babel import Locale, UnknownLocaleError

    if not lang:
        return None
    wanted = lang.replace("-", "_")
    candidates = [wanted]
    if country and "_" not in wanted:
        candidates.insert(0, f"{wanted}_{country}")
    for candidate in candidates:
        try:
            return str(Locale.parse(candidate))
        except (ValueError, UnknownLocaleError):
            continue
    return None


def _templates_only_fetcher(root: Path | None) -> Any:
    """A WeasyPrint URL fetcher that reads only files under `root` (templates/) and
    `data:` URLs. A letter's `src`/`href` can hold lead data, and WeasyPrint would
    otherwise fetch any URL it is given: a request to a host on our network
    (`http://127.0.0.1:…`), or a local file embedded into the printed letter
    (`file:///etc/passwd`). A refused resource is left out of the letter, with a warning
    in the log."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse  # WeasyPrint 68+

    base = root.resolve() if root is not None else None

    class TemplatesOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.partition(":")[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            path = template_file(url, base) if scheme == "file" else None
            if path is None:
                raise ValueError(f"letters may use only files under templates/ and data: URLs, not {url[:200]}")
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": kind})

    # No redirects and a short timeout: nothing but data: URLs ever reaches urllib.
    return TemplatesOnly(timeout=5, allow_redirects=False)


def template_file(url: str, root: Path | None) -> Path | None:
    """The file a `file:` URL names when it is a regular file under `root` once every
    `..` and symbolic link is resolved (nothing can point out of templates/), else None."""
    if root is None:
        return None
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        return None
    try:
        path = Path(url2pathname(parts.path)).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def render_letter(html: str, base_url: Path | None = None) -> RenderedLetter:
    """One letter as PDF bytes; page numbers are added when it runs to a second page.
    `base_url`: the templates folder, the only place a letter may take files from.
    Raises LettersUnavailable when WeasyPrint cannot load Pango and its libraries."""
    letter_libraries.require()
    from weasyprint import CSS, HTML  # heavy import: only when a letter is due

    source = HTML(
        string=html, base_url=str(base_url) if base_url else None, url_fetcher=_templates_only_fetcher(base_url)
    )
    document = source.render()
    if len(document.pages) > 1:
        document = source.render(stylesheets=[CSS(string=_PAGE_NUMBERS)])
    return RenderedLetter(document.write_pdf(), len(document.pages))


def write_atomic(path: Path, data: bytes) -> Path:
    """Readers (a printer's hot folder) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


# --- print batches -------------------------------------------------------------------
MANIFEST_COLUMNS = (
    "sequence",
    "first_page",
    "pages",
    "email",
    "name",
    "campaign",
    "step",
    "format",
    "address",
    "file",
    "touch",
)


@dataclass(frozen=True)
class BatchLetter:
    touch: int
    email: str
    name: str
    campaign: str
    step: str
    format: str
    address: str  # the recipient block, one line per line
    file: Path
    pages: int


@dataclass(frozen=True)
class BuiltBatch:
    pdf: Path
    manifest: Path
    letters: int
    pages: int  # sheets' sides in the merged PDF, blank padding included


def build_batch(folder: Path, letters: Sequence[BatchLetter], duplex: bool = False) -> BuiltBatch:
    """Merge the batch's letters into one PDF for the printer (each letter starting on a
    new sheet when printing duplex) and write the manifest that lists them."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    rows = []
    for sequence, letter in enumerate(letters, start=1):
        first = len(writer.pages) + 1
        writer.append(str(letter.file))
        if duplex and len(writer.pages) % 2:
            writer.add_blank_page()
        rows.append(
            (
                sequence,
                first,
                letter.pages,
                letter.email,
                letter.name,
                letter.campaign,
                letter.step,
                letter.format,
                letter.address,
                letter.file.name,
                letter.touch,
            )
        )
    merged = io.BytesIO()
    writer.write(merged)
    manifest = io.StringIO(newline="")
    out = csvsafe.Writer(manifest)  # names and addresses are lead data
    out.writerow(MANIFEST_COLUMNS)
    out.writerows(rows)
    pdf = write_atomic(folder / "batch.pdf", merged.getvalue())
    listed = write_atomic(folder / "manifest.csv", manifest.getvalue().encode("utf-8"))
    return BuiltBatch(pdf, listed, len(rows), len(writer.pages))


__all__ = [
    "FRAMES",
    "BatchLetter",
    "Box",
    "BuiltBatch",
    "Frame",
    "LetterParts",
    "RenderedLetter",
    "build_batch",
    "date_locale",
    "document_lang",
    "frame_letter",
    "render_letter",
    "write_atomic",
]
