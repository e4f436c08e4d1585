"""The Jinja2 environment every HTML page of dripper is rendered with: the pages of `dripper
serve` (through starlette's `Jinja2Templates`, with the web's own templates searched first),
the HTML report and the preview pages.

Autoescape is on for every template, whatever its name: a lead's name, a reason quoting a
server's reply or a search text is text, never markup. The few fragments that are markup
already (the SVG charts of `dripper.reports.charts`, which escape what they print, and a
rendered e-mail's own HTML in a preview) are marked with `Markup` by the code that made them.
"""

from __future__ import annotations

from typing import Any

import jinja2


def environment(*first: jinja2.BaseLoader) -> jinja2.Environment:
    """The templates shipped in dripper/pages/templates (package data), after those of the
    `first` loaders (a caller's own pages, which may extend the shared `base.html`). A new
    environment each time, no shared one: `create_app` keeps its own in the app's state,
    where each template is compiled once."""
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([*first, jinja2.PackageLoader("dripper.pages", "templates")]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page silently
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, **context: Any) -> str:
    """A page as a string: for files (the report, previews)."""
    return environment().get_template(name).render(**context)


__all__ = ["environment", "render"]
