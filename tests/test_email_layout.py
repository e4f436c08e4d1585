"""How a shipped e-mail looks in a real browser (Debian's chromium via Playwright): dripper's
footer sits under the template's centred card, at the card's width, on a wide screen and
on a phone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Dripper

from tests.support.browser import REVIEW, Watched

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shipped_email(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped first e-mail, as sent (CSS inlined, footer appended), in a file."""
    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copy(ROOT / "campaigns.yaml", root)
    shutil.copytree(ROOT / "templates", root / "templates")
    monkeypatch.chdir(root)
    out = root / "need-welcome.html"
    Dripper(root, sqlite_url)("preview", "literature-follow-up", "need-welcome", "--format", "html", "--out", str(out))
    return out


@pytest.mark.parametrize("width", [1280, 390])
def test_the_footer_sits_under_the_card_at_its_width(shipped_email: Path, browser: Watched, width: int) -> None:
    page = browser.page
    page.set_viewport_size({"width": width, "height": 900})
    assert browser.open_file(shipped_email).ok
    card = page.locator("div.container").bounding_box()
    footer = page.locator("div.dripper-footer").bounding_box()
    assert card is not None and footer is not None
    assert abs(footer["x"] - card["x"]) < 1 and abs(footer["width"] - card["width"]) < 1, (card, footer)
    assert footer["y"] >= card["y"] + card["height"] - 1  # below the card, not beside or inside it
    if width > 700:
        assert card["x"] > 100  # the card is centred, and so is the footer: not at the page's edge
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert "Unsubscribe" in page.locator("div.dripper-footer").inner_text()
    browser.screenshot(REVIEW / "email" / f"need-welcome-{width}.png")
    browser.assert_clean()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_pages_a_recipient_sees_fit_and_pass_axe(browser: Watched, tmp_path: Path, width: int) -> None:
    from dripper.web.templating import environment

    pages = {
        "preferences": (
            "public/preferences.html",
            {"email": "ad•••@lovelace.example", "about": "Literature follow up", "sender": "Acme Sales"},
        ),
        "unsubscribe": ("public/unsubscribe.html", {"email": "ad•••@lovelace.example", "sender": "Acme Sales"}),
        "unsubscribed": ("public/unsubscribed.html", {"email": "ad•••@lovelace.example", "sender": "Acme Sales"}),
    }
    browser.page.set_viewport_size({"width": width, "height": 900})
    for name, (template, values) in pages.items():
        html = (
            environment()
            .get_template(template)
            .render(title=name.title(), message="", token="t", months=(1, 2, 3, 6), **values)
        )
        (tmp_path / f"{name}.html").write_text(html, encoding="utf-8")
        assert browser.open_file(tmp_path / f"{name}.html").ok
        assert browser.page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert not browser.axe_violations(), (name, browser.axe_violations())
        browser.screenshot(REVIEW / "public" / f"{name}-{width}.png")
        browser.assert_clean()
