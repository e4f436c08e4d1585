"""The HTML pages dripper writes, and the Jinja2 environment they are rendered with.

A neutral home that `dripper.web` (the pages of `dripper serve`) and `dripper.reports` (the
HTML report, the preview pages) both read, so neither depends on the other: templates/ holds
the shared layout (`base.html`) and the report's and previews' pages; the web's own pages
live in dripper/web/templates and extend `base.html` from here.
"""

from __future__ import annotations

from dripper.pages.templating import environment, render

__all__ = ["environment", "render"]
