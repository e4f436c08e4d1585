"""The Jinja2 environment of `dripper serve`'s pages: the web's own templates
(dripper/web/templates: the public pages and the dashboard), then the shared ones of
`dripper.pages` (the layout they extend). Autoescape is on for all of them (see
`dripper.pages.templating`)."""

from __future__ import annotations

import jinja2

from dripper import translations
from dripper.pages import templating


def environment() -> jinja2.Environment:
    """A new environment each time, no shared one: `create_app` keeps its own in the app's
    state, where each template is compiled once."""
    # The public pages speak the lead's language (`language` in their context).
    return translations.install(templating.environment(jinja2.PackageLoader("dripper.web", "templates")))


__all__ = ["environment"]
