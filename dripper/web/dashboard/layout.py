"""What every dashboard page shares: times in the campaigns' time zone, the headers, and
rendering a page of templates/dashboard/ with the layout's context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

# Everything the pages need is in the page; nothing may be loaded, framed or posted elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # the pages show people's names and addresses
}


@dataclass(frozen=True)
class Layout:
    zone: ZoneInfo
    zone_name: str

    def local(self, when: datetime | str | None, *, seconds: bool = False) -> str:
        if when is None or when == "":
            return ""
        instant = datetime.fromisoformat(when) if isinstance(when, str) else when
        return instant.astimezone(self.zone).strftime("%a %Y-%m-%d %H:%M" + (":%S" if seconds else ""))

    def day(self, when: datetime) -> date:
        return when.astimezone(self.zone).date()


def render(
    request: Request,
    template: str,
    title: str,
    *,
    here: str = "",
    status: int = 200,
    nav: bool = True,
    now: datetime | None = None,
    **context: Any,
) -> Response:
    """A page of the dashboard: `template` extends dashboard/layout.html (the menu when
    `nav`, `here` marked in it; "page made" in the footer when `now` is given)."""
    templates: Jinja2Templates = request.app.state.templates
    layout: Layout = request.app.state.dashboard.layout
    return templates.TemplateResponse(
        request,
        template,
        {"title": title, "here": here, "nav": nav, "now": now, "layout": layout, **context},
        status_code=status,
        headers=HEADERS,
    )


__all__ = ["HEADERS", "Layout", "render"]
