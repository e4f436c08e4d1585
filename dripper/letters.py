"""Letters: a letter touch's rendered HTML becomes a PDF (WeasyPrint: HTML/CSS with
real fonts and page rules, which is what a marketer's letter template is written in)."""

from __future__ import annotations

import os
from pathlib import Path


def write_pdf(html: str, path: Path, base_url: Path | None = None) -> Path:
    from weasyprint import HTML  # heavy import: only when a letter is due

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pdf.tmp")
    HTML(string=html, base_url=str(base_url) if base_url else None).write_pdf(str(tmp))
    os.replace(tmp, path)
    return path
