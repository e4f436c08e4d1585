"""A real headless browser for tests: Debian's chromium (/usr/bin/chromium, which scripts/test
installs), driven by Playwright for Python. Playwright's own browser download is never
used (`playwright install` is never run): the browser is launched from its path.

`browser_page()` (a context manager; a test module makes its fixture of it in two lines)
yields a `Watched` page that records what went wrong while it was open:
console errors, uncaught page errors, failed requests and 4xx/5xx answers to anything
but the page itself. Requests may only go to loopback, `file:` and `data:`; anything else
is aborted (and so recorded as failed): no test reaches the internet.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path(os.environ.get("DRIPPER_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REVIEW = Path(os.environ.get("DRIPPER_REVIEW_DIR", Path(__file__).parents[1] / "review"))  # tests/review/
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "about", "blob"):
        return True
    return parts.scheme in ("http", "https", "ws") and (parts.hostname or "") in LOOPBACK


@dataclass
class Watched:
    """A page and what went wrong on it."""

    page: Any  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [*(f"console: {m}" for m in self.console_errors), *(f"request: {r}" for r in self.failed_requests)]

    def assert_clean(self) -> None:
        assert not self.problems(), "\n".join(self.problems())

    def clear(self) -> None:
        self.console_errors.clear()
        self.failed_requests.clear()

    def goto(self, url: str) -> Any:
        """Open `url` and wait for it to load; the page's response (its .status)."""
        response = self.page.goto(url, wait_until="load")
        assert response is not None, f"no response for {url}"
        return response

    def open_file(self, path: Path) -> Any:
        """Open a local HTML file, as a person double-clicking it would."""
        return self.goto(path.resolve().as_uri())

    def axe_violations(self) -> list[str]:
        """What axe-core (Deque's accessibility engine, bundled by axe-playwright-python)
        finds wrong on the page against WCAG 2 A and AA and its best practices: one line a
        rule broken, with the first elements that break it."""
        from axe_playwright_python.sync_playwright import Axe

        options = {"resultTypes": ["violations"], "runOnly": ["wcag2a", "wcag2aa", "best-practice"]}
        found = Axe().run(self.page, options=options).response["violations"]
        return [f"{v['id']} ({v['impact']}): {v['help']}: {[n['html'][:160] for n in v['nodes'][:3]]}" for v in found]

    def screenshot(self, path: Path) -> Path:
        """A full-page PNG, for a person to look at (tests/review/ is not committed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run scripts/test (it installs the test extra)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test (it installs chromium) or apt-get install chromium")
    return sync_playwright


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 900) -> Iterator[Watched]:
    """A fresh browser (own profile, no cookies) with one page, watched."""
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC"
            )
            page = context.new_page()
            watched = Watched(page)

            def route(r: Any) -> None:
                if _allowed(r.request.url):
                    r.continue_()
                else:
                    r.abort()

            def response(resp: Any) -> None:
                # The document's own status is the test's to check (a 401 login page is right);
                # anything it loads must answer below 400.
                if resp.status >= 400 and resp.request.resource_type != "document":
                    watched.failed_requests.append(f"{resp.status} {resp.url}")

            context.route("**/*", route)
            page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: watched.console_errors.append(f"uncaught: {exc}"))
            page.on("requestfailed", lambda r: watched.failed_requests.append(f"{r.failure} {r.url}"))
            page.on("response", response)
            yield watched
            context.close()
        finally:
            browser.close()


__all__ = ["ARGS", "CHROMIUM", "REVIEW", "Watched", "browser_page"]
