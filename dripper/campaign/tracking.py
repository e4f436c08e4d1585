"""`tracking:` and `utm:` in campaigns.yaml: what a campaign measures of its e-mails.

Off by default: no link is rewritten and no pixel added unless a campaign asks.

    campaigns:
      literature-follow-up:
        tracking: {clicks: true}          # links go through `dripper serve` (/c/TOKEN)
        utm: {source: dripper, medium: email}
        stages:
          supplier_research:
            - id: thanks
              utm: {content: thanks-pack}   # merged over the campaign's
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Tracking(BaseModel):
    model_config = _FROZEN

    clicks: bool = False  # links through the /c/TOKEN redirect, each click recorded
    opens: bool = False  # an open-tracking pixel; unreliable (Apple Mail Privacy Protection)


class Utm(BaseModel):
    """UTM parameters added to every link of an e-mail (and to a letter's personal URL).
    `campaign` defaults to the campaign's name and `content` to the step's id."""

    model_config = _FROZEN

    source: str | None = Field(None, min_length=1, max_length=200)
    medium: str | None = Field(None, min_length=1, max_length=200)
    campaign: str | None = Field(None, min_length=1, max_length=200)
    term: str | None = Field(None, min_length=1, max_length=200)
    content: str | None = Field(None, min_length=1, max_length=200)


def utm_parameters(
    campaign_utm: Utm | None, step_utm: Utm | None, campaign: str, step: str
) -> tuple[tuple[str, str], ...]:
    """The `utm_*` parameters for a step's links: the step's values over the campaign's,
    with the defaults; none at all when neither sets `utm:`."""
    if campaign_utm is None and step_utm is None:
        return ()
    merged = {
        "campaign": campaign,
        "content": step,
        **(campaign_utm.model_dump(exclude_none=True) if campaign_utm else {}),
        **(step_utm.model_dump(exclude_none=True) if step_utm else {}),
    }
    order = ("source", "medium", "campaign", "term", "content")
    return tuple((f"utm_{key}", merged[key]) for key in order if key in merged)


def with_utm(url: str, parameters: tuple[tuple[str, str], ...]) -> str:
    """The URL with the parameters it does not already carry appended to its query. The
    query it had is kept byte for byte (re-encoding it could change what the site reads);
    a parameter the link sets itself wins over the campaign's."""
    if not parameters:
        return url
    parts = urlsplit(url)
    present = {pair.split("=", 1)[0] for pair in parts.query.split("&") if pair}
    added = [(k, v) for k, v in parameters if k not in present]
    if not added:
        return url
    query = "&".join(filter(None, (parts.query, urlencode(added))))
    return urlunsplit(parts._replace(query=query))


__all__ = ["Tracking", "Utm", "utm_parameters", "with_utm"]
