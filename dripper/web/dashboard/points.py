"""A call task's talking points as HTML for the Calls page.

They are stored as text: the call template's HTML made readable (`html_to_text`), so
paragraphs are separated by blank lines and list items start with `* ` (nested ones
indented). markdown-it-py (CommonMark, and already installed with rich) parses exactly
that into paragraphs and lists; with only those rules on (its `zero` preset plus lists
and line breaks) and raw HTML off, nothing else in the text, which holds lead data, turns
into markup: `<b>` and `*words*` stay literal and escaped, `[x](url)` makes no link.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markupsafe import Markup


@cache
def _parser() -> MarkdownIt:
    # Made once; rendering keeps no state in it (a new state per call).
    return MarkdownIt("zero", {"html": False, "breaks": True, "linkify": False}).enable(["list", "newline"])


def talking_points(text: str) -> Markup:
    """Paragraphs and lists, every character of the text escaped."""
    return Markup(_parser().render(text)) if text.strip() else Markup("")


__all__ = ["talking_points"]
