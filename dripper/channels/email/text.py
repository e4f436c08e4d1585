"""HTML -> the text/plain part of an e-mail.

lxml parses (C); one walk over the tree lays out blocks, list items and table rows and
writes links as `text (url)` with the URL whole, never wrapped. It does what an e-mail
text part needs and no more, so it is cheap per message (docs/performance.md).
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "nav",
    "blockquote",
    "pre",
    "form",
    "fieldset",
    "address",
    "figure",
    "figcaption",
    "center",
    "dl",
    "dt",
    "dd",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP = {"head", "style", "script", "title", "template", "noscript"}
_BLANKS = re.compile(r"\n{3,}")


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, value: str | None) -> None:
        if value:  # collapse whitespace runs, keeping one space at either end if there was any
            words = " ".join(value.split())
            if value[0].isspace():
                words = " " + words
            if value[-1].isspace() and words != " ":
                words += " "
            self.parts.append(words)

    def newlines(self, n: int) -> None:
        self.parts.append("\n" * n)

    def result(self) -> str:
        lines = (line.strip() for line in "".join(self.parts).split("\n"))
        return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _walk(node: etree._Element, out: _Writer, list_depth: int = 0) -> None:
    tag = node.tag if isinstance(node.tag, str) else ""
    if tag in _SKIP:
        out.text(node.tail)
        return
    if tag == "br":
        out.newlines(1)
    elif tag == "hr":
        out.newlines(1)
        out.text("----")
        out.newlines(1)
    elif tag in _BLOCK or tag in _HEADINGS or tag in ("ul", "ol", "table"):
        out.newlines(2)
    elif tag == "tr":
        out.newlines(1)
    elif tag == "li":
        out.newlines(1)
        out.text("  " * max(0, list_depth - 1) + "* ")
    elif tag in ("td", "th"):
        out.text("  ")
    if tag == "img":
        out.text(node.get("alt"))
    out.text(node.text)
    depth = list_depth + 1 if tag in ("ul", "ol") else list_depth
    for child in node:
        _walk(child, out, depth)
    if tag == "a":
        href = (node.get("href") or "").strip()
        label = "".join(node.itertext()).strip()
        if href and not href.startswith(("#", "javascript:")) and href != label:
            out.parts.append(f" ({href})" if label else href)
    if tag in _BLOCK or tag in _HEADINGS or tag in ("ul", "ol", "table"):
        out.newlines(2)
    out.text(node.tail)


def html_to_text(document: str) -> str:
    """The readable text of an HTML document, URLs kept whole."""
    if not document.strip():
        return ""
    root = lxml_html.document_fromstring(document)
    out = _Writer()
    _walk(root, out)
    return out.result()
