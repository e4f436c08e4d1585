"""Links of a rendered e-mail, rewritten after the template rendered: UTM parameters added
(`utm:`) and, with `tracking: {clicks: true}`, each link sent through the signed redirect
of `dripper serve` (/c/TOKEN).

The HTML part is parsed with lxml (already what makes the text part) and every `<a>` or
`<area>` whose href is an http(s) URL is rewritten; the text part gets the same URLs
replaced by the same tracked ones, so both parts lead to the same place. Never rewritten:
the unsubscribe and preference links (they must work without us in the middle, RFC 8058),
any other link to `dripper serve` itself, `mailto:`, `tel:` and every other scheme.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from html import escape
from urllib.parse import urlsplit

from lxml import etree
from lxml import html as lxml_html

from dripper.campaign.templates import RenderedEmail
from dripper.campaign.tracking import with_utm

# A URL in plain text ends at a blank, a quote or an angle bracket; punctuation at its very
# end belongs to the sentence ("see https://x.example/a.").
_TEXT_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class LinkRules:
    """How one message's links are rewritten."""

    utm: tuple[tuple[str, str], ...]  # parameters to add (campaign/tracking.py)
    wrap: Callable[[str], str] | None  # target URL -> tracked URL; None: no click tracking
    keep: Collection[str]  # URLs left exactly as they are (unsubscribe, preferences)
    own: str  # the base URL of `dripper serve`: links to it are left alone

    @property
    def active(self) -> bool:
        return bool(self.utm) or self.wrap is not None


def trackable(url: str, rules: LinkRules) -> bool:
    """An absolute http(s) URL with a host, not one of ours."""
    if url in rules.keep or (rules.own and url.startswith(rules.own.rstrip("/") + "/")):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and not re.search(r"[\x00-\x20]", url)


def _rewrite_url(url: str, rules: LinkRules) -> str:
    target = with_utm(url, rules.utm)
    return rules.wrap(target) if rules.wrap is not None else target


def rewrite_html(document: str, rules: LinkRules) -> tuple[str, dict[str, str]]:
    """The HTML with its links rewritten, and what each original URL became."""
    mapping: dict[str, str] = {}
    if not document.strip() or "href" not in document.lower():
        return document, mapping
    root = lxml_html.document_fromstring(document)
    for element in root.iter("a", "area"):
        href = element.get("href")
        if href is None:
            continue
        url = href.strip()
        if not trackable(url, rules):
            continue
        if url not in mapping:
            mapping[url] = _rewrite_url(url, rules)
        element.set("href", mapping[url])
    if not mapping:
        return document, mapping
    doctype = root.getroottree().docinfo.doctype
    out = etree.tostring(root, encoding="unicode", method="html", doctype=doctype or None)
    return out, mapping


def rewrite_text(text: str, mapping: dict[str, str], rules: LinkRules) -> str:
    """The text part with the URLs the HTML part had rewritten the same way; any other
    http(s) URL it holds (a `.txt` twin may have its own) is rewritten by the same rules."""

    def replace_url(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(_TRAILING)
        # A closing bracket that opened inside the URL is part of it (Wikipedia-style links).
        while url != found and found[len(url)] == ")" and url.count("(") > url.count(")"):
            url = found[: len(url) + 1]
        tail = found[len(url) :]
        if url in mapping:
            return mapping[url] + tail
        if not trackable(url, rules):
            return found
        mapping[url] = _rewrite_url(url, rules)
        return mapping[url] + tail

    return _TEXT_URL.sub(replace_url, text)


def with_open_pixel(document: str, url: str) -> str:
    """The HTML with a 1×1 image loading `url` at the end of its body (`tracking: {opens: true}`)."""
    pixel = (
        f'<img src="{escape(url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
    )
    cut = document.lower().rfind("</body>")
    return document + pixel if cut == -1 else document[:cut] + pixel + document[cut:]


def rewrite(rendered: RenderedEmail, rules: LinkRules) -> RenderedEmail:
    """Both parts of the e-mail with their links rewritten alike."""
    if not rules.active:
        return rendered
    html, mapping = rewrite_html(rendered.html, rules)
    return replace(rendered, html=html, text=rewrite_text(rendered.text, mapping, rules))


__all__ = ["LinkRules", "rewrite", "rewrite_html", "rewrite_text", "trackable", "with_open_pixel"]
