"""Click figures of `dripper report` (`tracking: {clicks: true}`): per step and per link,
the touches a person clicked in and their rate per touch sent, the clicks, and the clicks
taken for security scanners' (counted apart, never in the rate; inbound/clicks.py).

Opens are not measured by default, and the report says why when a campaign asks for them:
Apple Mail Privacy Protection, Gmail's image proxy and security scanners fetch images
without a person reading, so an open rate says little.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rich.table import Table
from sqlalchemy import Connection

from dripper.campaign.model import CampaignFile
from dripper.store.queries import clickrows
from dripper.store.queries.clickrows import StepClicks

OPENS_NOTE = (
    "Opens are unreliable: Apple Mail Privacy Protection, image proxies and security scanners "
    "load images without anyone reading, so an open rate overstates reading; clicks are the measure."
)
SCANNERS_NOTE = (
    "Clicks exclude those taken for security scanners and link previewers "
    "(HEAD requests, known user agents, several links within seconds of sending): scanner_clicks."
)


def _figures(found: StepClicks | None, sent: int) -> dict[str, Any]:
    clicked = found.touches if found else 0
    return {
        "clicked": clicked,
        "clicks": found.clicks if found else 0,
        "scanner_clicks": found.scanner_clicks if found else 0,
        "rate": round(clicked / sent, 4) if sent else None,
    }


def add_clicks(conn: Connection, data: dict[str, Any], config: CampaignFile | None) -> None:
    """Add the click figures to `report.funnel`'s data: per step `clicks` (with its rate and
    its `links`, by target URL) and `opens`; per campaign the same summed, whether each is
    tracked, and what to keep in mind (`note`). Additive: the figures dripper had are as they were."""
    steps = clickrows.by_step(conn)
    links = clickrows.by_link(conn)
    opened = clickrows.opened_by_step(conn)
    by_variant = clickrows.clicked_by_variant(conn)
    for name, campaign in data["campaigns"].items():
        total = StepClicks(0, 0, 0)
        for step, row in campaign["steps"].items():
            found = steps.get((name, step))
            figures = _figures(found, row["sent"])
            figures["links"] = {
                url: _figures(link, row["sent"])
                for (c, s, url), link in sorted(links.items(), key=lambda item: -item[1].touches)
                if c == name and s == step
            }
            row["clicks"] = figures
            row["opens"] = _opens(opened.get((name, step), 0), row["sent"])
            for variant, figures_of in row.get("variants", {}).items():  # an A/B test's versions
                clicked = by_variant.get((name, step, variant), 0)
                sent = figures_of["sent"]
                figures_of["clicks"] = {"clicked": clicked, "rate": round(clicked / sent, 4) if sent else None}
            if found:
                total = StepClicks(
                    total.touches + found.touches,
                    total.clicks + found.clicks,
                    total.scanner_clicks + found.scanner_clicks,
                )
        defined = config.campaigns.get(name) if config else None
        tracking = defined.tracking if defined else None
        sent = campaign["totals"]["sent"]
        campaign["clicks"] = {
            "tracked": bool(tracking and tracking.clicks),
            **_figures(total, sent),
            "note": SCANNERS_NOTE,
        }
        all_opened = sum(row["opens"]["opened"] for row in campaign["steps"].values())
        campaign["opens"] = {
            "tracked": bool(tracking and tracking.opens),
            **_opens(all_opened, sent),
            "note": OPENS_NOTE,
        }


def _opens(opened: int, sent: int) -> dict[str, Any]:
    return {"opened": opened, "rate": round(opened / sent, 4) if sent else None}


def shown_url(url: str) -> str:
    """The URL as a person reads it in a report: without the utm_ parameters added to it."""
    parts = urlsplit(url)
    kept = "&".join(p for p in parts.query.split("&") if p and not p.startswith("utm_"))
    return urlunsplit(parts._replace(query=kept))


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


CLICK_HEAD = ("step / link", "sent", "clicked", "click rate", "clicks", "scanner clicks")
OPEN_HEAD = ("opened*", "open rate*")  # * unreliable: OPENS_NOTE


def _opens_tracked(campaign: Mapping[str, Any]) -> bool:
    return bool(campaign.get("opens", {}).get("tracked"))


def notes(campaign: Mapping[str, Any]) -> tuple[str, ...]:
    """What to keep in mind reading the figures of a campaign that tracks clicks or opens."""
    clicks, opens = campaign.get("clicks", {}), campaign.get("opens", {})
    return tuple(part["note"] for part in (clicks, opens) if part.get("tracked"))


def click_head(campaign: Mapping[str, Any]) -> tuple[str, ...]:
    return CLICK_HEAD + (OPEN_HEAD if _opens_tracked(campaign) else ())


def click_rows(campaign: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of (step or ` ↳ link`, sent, clicked, click rate, clicks, scanner clicks[,
    opened, open rate]) for the steps with any click (or open, when opens are tracked)."""
    rows: list[list[Any]] = []
    opens = _opens_tracked(campaign)
    for step, row in campaign["steps"].items():
        figures = row.get("clicks")
        opened = row.get("opens", {"opened": 0, "rate": None})
        if not figures or not (figures["clicks"] or figures["scanner_clicks"] or (opens and opened["opened"])):
            continue
        rate = _percent(figures["rate"])
        shown = [step, row["sent"], figures["clicked"], rate, figures["clicks"], figures["scanner_clicks"]]
        rows.append(shown + ([opened["opened"], _percent(opened["rate"])] if opens else []))
        for url, link in figures["links"].items():
            shown = ["  ↳ " + shown_url(url), "", link["clicked"], _percent(link["rate"])]
            rows.append([*shown, link["clicks"], link["scanner_clicks"], *(["", ""] if opens else [])])
    return rows


def click_tables(data: Mapping[str, Any]) -> list[Table]:
    """The terminal table of clicks, for the campaigns that track them or have any."""
    out = []
    for name, campaign in data["campaigns"].items():
        clicks = campaign.get("clicks")
        if not clicks or not (notes(campaign) or clicks["clicks"] or clicks["scanner_clicks"]):
            continue
        table = Table(
            title=f"{name} — clicks (people, not scanners)",
            title_justify="left",
            caption=" ".join(notes(campaign) or (SCANNERS_NOTE,)),
        )
        for column in click_head(campaign):
            table.add_column(column, justify="left" if column == "step / link" else "right", overflow="fold")
        for row in click_rows(campaign):
            table.add_row(*(str(v) for v in row))
        out.append(table)
    return out


__all__ = [
    "CLICK_HEAD",
    "OPENS_NOTE",
    "SCANNERS_NOTE",
    "add_clicks",
    "click_head",
    "click_rows",
    "click_tables",
    "notes",
    "shown_url",
]
