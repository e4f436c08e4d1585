"""A request to a tracked link: a person's click, or a security scanner's or previewer's.

Mail security gateways (Microsoft Defender Safe Links, Mimecast, Proofpoint, Barracuda…)
and link previewers follow every link of a message, usually within seconds of delivery
and before the recipient has seen it. Counted as clicks, they would make every message
look clicked. Each request is recorded, and taken for a scanner's when:

- `head`: it is a HEAD request (a browser following a link sends GET);
- `user_agent`: its user agent is empty or names a known scanner, previewer, crawler or
  HTTP library (`SCANNER_AGENTS`);
- `burst`: it came within `BURST_AFTER_SEND` of the message being sent, and another link
  of the same message was requested within `BURST_SPREAD` of it: a person reads before
  clicking, and does not open two links of a message within a few seconds of its sending.
  The earlier clicks of the burst, recorded as a person's when they came, are reclassified
  (and lose their `clicked` event) when the later one shows the burst.

A scanner's request is redirected like any other (the scanner must see the real target)
and counted apart (`scanner_clicks` in the report). A scanner that runs a full browser
within minutes of delivery and opens a single link is not told apart: no heuristic can,
so a click rate is a floor of interest, not a measure of reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from dripper.store.queries import clickrows

BURST_AFTER_SEND = timedelta(minutes=2)
BURST_SPREAD = timedelta(seconds=10)
# More requests than this to one link of one message are redirected and not recorded: a
# token is public once sent, and must not let anyone fill the table.
MAX_CLICKS_PER_LINK = 50

# Case-insensitive pieces of the user agents of mail security scanners, link previewers,
# crawlers and HTTP libraries. A person's browser names none of them.
SCANNER_AGENTS = re.compile(
    r"|".join(
        (
            r"safelinks",
            r"mimecast",
            r"proofpoint",
            r"urldefense",
            r"barracuda",
            r"trend ?micro",
            r"symantec",
            r"messagelabs",
            r"sophos",
            r"fireeye",
            r"forcepoint",
            r"zscaler",
            r"cisco",
            r"ironport",
            r"avanan",
            r"check ?point",
            r"bingpreview",
            r"microsoft office",  # Office apps' link previews and pre-fetches (ms-office)
            r"ms-office",
            r"skypeuripreview",
            r"slackbot",
            r"slack-imgproxy",
            r"facebookexternalhit",
            r"twitterbot",
            r"linkedinbot",
            r"whatsapp",
            r"telegrambot",
            r"discordbot",
            r"googleimageproxy",
            r"yahoomailproxy",
            r"headlesschrome",
            r"phantomjs",
            r"python-requests",
            r"python-urllib",
            r"python-httpx",
            r"aiohttp",
            r"\bcurl/",
            r"\bwget/",
            r"go-http-client",
            r"okhttp",
            r"java/",
            r"apache-httpclient",
            r"libwww-perl",
            r"crawler",
            r"spider",
            r"[a-z]bot\b",
            r"\bbot\b",
        )
    ),
    re.IGNORECASE,
)


def scanner_by_request(method: str, user_agent: str) -> str | None:
    """Why the request alone shows a scanner ("head", "user_agent"), or None."""
    if method.upper() == "HEAD":
        return "head"
    if not user_agent.strip() or SCANNER_AGENTS.search(user_agent):
        return "user_agent"
    return None


@dataclass(frozen=True)
class Recorded:
    """What became of a request to a tracked link."""

    click_id: int | None  # None: not recorded (the touch is gone, or the link's cap reached)
    scanner: str | None


def record_click(conn: Connection, touch_id: int, url: str, at: datetime, *, method: str, user_agent: str) -> Recorded:
    """Record a request to the link `url` of touch `touch_id`, classified."""
    touch = clickrows.touch_for_click(conn, touch_id)
    if touch is None or clickrows.count_for_link(conn, touch_id, url) >= MAX_CLICKS_PER_LINK:
        return Recorded(None, None)
    scanner = scanner_by_request(method, user_agent)
    burst: list[int] = []
    if scanner is None and touch.sent_at is not None and touch.sent_at <= at <= touch.sent_at + BURST_AFTER_SEND:
        near = clickrows.clicks_between(conn, touch_id, at - BURST_SPREAD, at + BURST_SPREAD)
        burst = [c.id for c in near if c.url != url]
        if burst:
            scanner = "burst"
    click_id = clickrows.insert_click(conn, clickrows.NewClick(touch, url, at, method.upper(), user_agent, scanner))
    clickrows.mark_scanner(conn, burst, "burst")
    return Recorded(click_id, scanner)


def record_open(conn: Connection, touch_id: int, at: datetime, *, method: str) -> bool:
    """Count a load of a message's open pixel (a HEAD request is no load); True when first."""
    touch = clickrows.touch_for_click(conn, touch_id)
    if touch is None or method.upper() == "HEAD":
        return False
    return clickrows.record_open(conn, touch, at)


__all__ = [
    "BURST_AFTER_SEND",
    "BURST_SPREAD",
    "MAX_CLICKS_PER_LINK",
    "SCANNER_AGENTS",
    "Recorded",
    "record_click",
    "record_open",
    "scanner_by_request",
]
