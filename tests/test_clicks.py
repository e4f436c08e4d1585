"""Click tracking (issue 18): `tracking: {clicks: true}` rewrites an e-mail's links to the
signed /c/TOKEN redirect of `dripper serve`, which records a `clicked` event for the lead,
touch and link, tells security scanners apart, and never redirects where we did not write."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Dripper
from lxml import html as lxml_html
from starlette.testclient import TestClient

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SENT_AT = T0 + timedelta(days=1, hours=7)  # a Tuesday, 15:00 UTC: inside the send window in Chicago and Berlin
BASE = "http://127.0.0.1:8000"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

THANKS = """{% extends "mail/base.html" %}
{% block content %}
<p>Thank you for asking about {{ lead.attrs.product | default('our products') }}.</p>
<p><a class="cta" href="https://acme.example/literature?lead={{ lead.email | urlencode }}&amp;step={{ step.id }}">Open your information pack</a></p>
<p>See also <a href="https://acme.example/new-products#top">our new products</a>,
<a href="mailto:sales@acme.example">write to us</a> or <a href="tel:+15555550100">call</a>.</p>
{% endblock %}
"""


def track(project: Path, settings: str = "    tracking: {clicks: true}\n") -> None:
    """Turn tracking on in the fixture project's campaign and give its first e-mail two links."""
    path = project / "campaigns.yaml"
    path.write_text(path.read_text().replace("  literature-follow-up:\n", "  literature-follow-up:\n" + settings, 1))
    (project / "templates/mail/thanks.html").write_text(THANKS)


def sent_message(email: str, step: str = "thanks") -> EmailMessage:
    data = next(Path("outbox").glob(f"*_{step}_{email}.eml")).read_bytes()
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def hrefs(html: str) -> list[str]:
    return [str(a.get("href")) for a in lxml_html.document_fromstring(html).iter("a")]


def send_first(dripper: Dripper) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", SENT_AT.isoformat())


# --- configuration and compose --------------------------------------------------------------


def test_utm_parameters_merge_step_over_campaign_and_never_override_the_link() -> None:
    from dripper.campaign.tracking import Utm, utm_parameters, with_utm

    params = utm_parameters(Utm(source="dripper", medium="email"), Utm(content="pack"), "lit", "thanks")
    assert params == (
        ("utm_source", "dripper"),
        ("utm_medium", "email"),
        ("utm_campaign", "lit"),
        ("utm_content", "pack"),
    )
    assert utm_parameters(None, None, "lit", "thanks") == ()
    # The link's own query is kept as written, its own utm_source wins, the fragment stays last.
    assert with_utm("https://x.example/a?b&utm_source=site#top", params) == (
        "https://x.example/a?b&utm_source=site&utm_medium=email&utm_campaign=lit&utm_content=pack#top"
    )
    assert with_utm("https://x.example/", (("utm_campaign", "a b&c"),)) == "https://x.example/?utm_campaign=a+b%26c"


def test_tracking_is_checked_with_located_errors(project: Path, dripper_sqlite: Dripper) -> None:
    track(project, "    tracking: {clicks: true, clics: false}\n    utm: {sorce: x}\n")
    result = dripper_sqlite("check", ok=1)
    assert "campaigns.yaml:11:" in result.output and "unknown key 'clics' (did you mean 'clicks'?)" in result.output
    assert "campaigns.yaml:12:" in result.output and "unknown key 'sorce' (did you mean 'source'?)" in result.output


def test_links_are_left_alone_unless_a_campaign_asks(project: Path, dripper_sqlite: Dripper) -> None:
    (project / "templates/mail/thanks.html").write_text(THANKS)
    send_first(dripper_sqlite)
    text, html = parts(sent_message("ada@lovelace.example"))
    assert "https://acme.example/new-products#top" in hrefs(html)
    assert "/c/" not in html and "/c/" not in text


def test_tracked_links_go_through_the_redirect_in_both_parts_but_not_unsubscribe_or_mailto(
    project: Path, dripper_sqlite: Dripper
) -> None:
    from dripper.tokens import Tokens

    track(project, "    tracking: {clicks: true}\n    utm: {source: dripper, medium: email}\n")
    send_first(dripper_sqlite)
    message = sent_message("ada@lovelace.example")
    text, html = parts(message)
    links = hrefs(html)
    tracked = [h for h in links if h.startswith(f"{BASE}/c/")]
    assert len(tracked) == 2
    tokens = Tokens("test-secret")
    targets = [tokens.read_click(h.removeprefix(f"{BASE}/c/")) for h in tracked]
    assert [t.touch_id for t in targets if t] == [1, 1]
    first, second = (t.url for t in targets if t)
    query = parse_qs(urlsplit(first).query)
    assert query["lead"] == ["ada@lovelace.example"] and query["step"] == ["thanks"]
    assert query["utm_source"] == ["dripper"] and query["utm_campaign"] == ["literature-follow-up"]
    assert query["utm_content"] == ["thanks"]
    assert second.startswith("https://acme.example/new-products?utm_source=dripper") and second.endswith("#top")
    # The same tracked URLs in the text part; the unsubscribe, preference, mailto and tel links as they were.
    assert all(h in text for h in tracked) and "acme.example/literature" not in text
    assert "mailto:sales@acme.example" in links and "tel:+15555550100" in links
    unsubscribe = message["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    assert unsubscribe in links and f"Unsubscribe: {unsubscribe}" in text
    assert any(h.startswith(f"{BASE}/p/") for h in links)
    assert "/o/" not in html  # no open pixel unless a campaign asks for it


def test_a_text_twin_gets_its_own_urls_tracked_and_punctuation_kept(project: Path, dripper_sqlite: Dripper) -> None:
    track(project)
    (project / "templates/mail/thanks.txt").write_text(
        "Hello,\nyour pack: https://acme.example/literature.\n"
        "(see https://en.wikipedia.org/wiki/Valve_(fluid)) or mailto:sales@acme.example\n"
    )
    send_first(dripper_sqlite)
    text, _html = parts(sent_message("ada@lovelace.example"))
    from dripper.tokens import Tokens

    tokens = Tokens("test-secret")
    lines = [line for line in text.splitlines() if "/c/" in line]
    assert lines[0].startswith("your pack: http://127.0.0.1:8000/c/") and lines[0].endswith(".")
    token = lines[0].split("/c/")[1].rstrip(".")
    assert (data := tokens.read_click(token)) is not None and data.url == "https://acme.example/literature"
    wiki = lines[1].split("/c/")[1].split(")")[0]
    assert lines[1].endswith(") or mailto:sales@acme.example")
    assert (data := tokens.read_click(wiki)) is not None and data.url == "https://en.wikipedia.org/wiki/Valve_(fluid)"


def test_a_resend_is_the_same_message(project: Path, loaded_tracked: object) -> None:
    from dripper.campaign.templates import LeadView
    from dripper.channels.compose import Composer

    loaded = loaded_tracked
    composer = Composer(loaded, BASE, "test-secret")  # type: ignore[arg-type]
    campaign = loaded.campaigns.campaign("literature-follow-up")  # type: ignore[attr-defined]
    _stage, step = campaign.step("thanks")
    view = LeadView(
        id=7, email="a@b.example", first_name="A", stage="supplier_research", campaign=campaign.name, timezone="UTC"
    )

    def tracked() -> list[str]:
        message = message_from_bytes(composer.email(42, view, campaign, step, SENT_AT).data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return [h for h in hrefs(parts(message)[1]) if "/c/" in h]

    first = tracked()
    assert len(first) == 2 and tracked() == first  # the same tokens, so a resend links alike


@pytest.fixture
def loaded_tracked(project: Path) -> object:
    from dripper.config import load
    from dripper.settings import Settings

    track(project)
    return load(Settings(campaigns_path=project / "campaigns.yaml"))


# --- the redirect -----------------------------------------------------------------------------


@pytest.fixture
def web(project: Path, dripper: Dripper) -> Iterator[tuple[TestClient, Dripper]]:
    yield from _web(project, dripper)


def _web(project: Path, dripper: Dripper) -> Iterator[tuple[TestClient, Dripper]]:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    track(project)
    send_first(dripper)
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=project / "campaigns.yaml"))
    tokens = Tokens("test-secret", old=["retired-secret"])
    clock = FrozenClock(SENT_AT + timedelta(hours=3))
    app = create_app(WebContext(store, loaded, tokens, clock, "api-123", dashboard_token="dash-token"))
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client, dripper
    store.dispose()


def tracked_paths(email: str) -> list[str]:
    _text, html = parts(sent_message(email))
    return [h.removeprefix(BASE) for h in hrefs(html) if h.startswith(f"{BASE}/c/")]


def clicked_events(dripper: Dripper, email: str) -> list[dict[str, object]]:
    return [e for e in dripper.json("plan", email, "--json")["events"] if e["kind"] == "clicked"]


def test_a_click_redirects_to_the_target_and_records_one_event_for_lead_touch_and_link(web) -> None:
    client, dripper = web
    path = tracked_paths("ada@lovelace.example")[1]
    answer = client.get(path, headers={"User-Agent": BROWSER})
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://acme.example/new-products#top"
    assert answer.headers["referrer-policy"] == "no-referrer" and "no-store" in answer.headers["cache-control"]
    events = clicked_events(dripper, "ada@lovelace.example")
    assert len(events) == 1
    detail = events[0]["detail"]
    assert isinstance(detail, dict)
    assert detail["campaign"] == "literature-follow-up" and detail["step"] == "thanks" and detail["touch"] == 1
    assert detail["url"] == answer.headers["location"]
    assert clicked_events(dripper, "grace@hopper.example") == []
    # The lead's timeline on the dashboard shows it, with the link.
    page = client.get("/dashboard/leads/1", headers={"Authorization": "Bearer dash-token"})
    assert page.status_code == 200 and "clicked" in page.text
    assert "url: https://acme.example/new-products#top" in page.text


def test_scanners_land_too_but_are_counted_apart(web) -> None:
    client, dripper = web
    path = tracked_paths("ada@lovelace.example")[0]
    assert client.head(path, headers={"User-Agent": BROWSER}).status_code == 302
    for agent in ("", "Mozilla/5.0 (compatible; BingPreview/1.0b)", "python-requests/2.31", "Mimecast Web Security"):
        assert client.get(path, headers={"User-Agent": agent}).status_code == 302
    assert clicked_events(dripper, "ada@lovelace.example") == []
    steps = dripper.json("report", "--json")["campaigns"]["literature-follow-up"]["steps"]
    figures = steps["thanks"]["clicks"]
    assert (figures["clicked"], figures["clicks"], figures["scanner_clicks"]) == (0, 0, 5)
    assert steps["thanks"]["clicks"]["rate"] == 0.0


def test_the_report_gives_the_click_rate_per_step_and_per_link(web, tmp_path: Path) -> None:
    client, dripper = web
    ada, grace = tracked_paths("ada@lovelace.example"), tracked_paths("grace@hopper.example")
    for path in (ada[0], ada[0], ada[1], grace[1]):  # ada twice on the pack: one lead, two clicks
        assert client.get(path, headers={"User-Agent": BROWSER}).status_code == 302
    client.get(grace[0], headers={"User-Agent": "Mozilla/5.0 (compatible; BingPreview/1.0b)"})
    data = dripper.json("report", "--json")
    thanks = data["campaigns"]["literature-follow-up"]["steps"]["thanks"]
    assert thanks["sent"] == 3
    assert (thanks["clicks"]["clicked"], thanks["clicks"]["clicks"], thanks["clicks"]["scanner_clicks"]) == (2, 4, 1)
    assert thanks["clicks"]["rate"] == round(2 / 3, 4)
    assert "click" not in thanks["rates"]  # additive: the figures that were there are as they were
    links = thanks["clicks"]["links"]
    products = links["https://acme.example/new-products#top"]
    assert products == {"clicked": 2, "clicks": 2, "scanner_clicks": 0, "rate": round(2 / 3, 4)}
    pack = [v for url, v in links.items() if url.startswith("https://acme.example/literature?lead=ada")]
    assert pack == [{"clicked": 1, "clicks": 2, "scanner_clicks": 0, "rate": round(1 / 3, 4)}]
    assert data["campaigns"]["literature-follow-up"]["steps"]["reminder-1"]["clicks"]["rate"] is None
    totals = data["campaigns"]["literature-follow-up"]["clicks"]
    assert totals["tracked"] is True and totals["clicked"] == 2 and totals["scanner_clicks"] == 1
    assert totals["rate"] == round(2 / 3, 4)  # over every touch the campaign sent (3 so far)
    assert data["campaigns"]["literature-follow-up"]["opens"]["tracked"] is False
    # The same figures for people: the terminal table and the HTML page.
    text = dripper("report").output
    assert "clicks (people, not scanners)" in text and "66.7%" in text and "new-products#top" in text
    dripper("report", "--html", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert "Clicks by step and link" in page and "↳ https://acme.example/new-products#top" in page
    assert "66.7%" in page and "security scanners" in page


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        "",
        ".eJyLVjI0MlLSUcpIzMvPS1UqzsgvSk0sSdVJzy_KTc1LyS9RslIqLU4tUsrLT0ktUjIqzS0oKMrPS1aKBQBZnRGq.AAAA",
    ],
)
def test_an_unknown_or_tampered_token_never_redirects(web, token: str) -> None:
    client, _dripper = web
    answer = client.get(f"/c/{token}")
    assert answer.status_code == 404 and "location" not in answer.headers
    assert "Link not valid" in answer.text or token == ""  # /c/ alone is no route at all


def test_a_token_for_another_target_or_secret_never_redirects(web) -> None:
    from dripper.tokens import Tokens

    client, dripper = web
    path = tracked_paths("ada@lovelace.example")[0]
    token = path.removeprefix("/c/")
    payload, _, signature = token.rpartition(".")
    forged = Tokens("another-secret").make_click(1, "https://evil.example/")
    # Another key's token, a signature moved onto another payload, an unsubscribe token, a
    # scheme that is not http(s) even with a good signature (defence in depth):
    for bad in (
        forged,
        forged.rpartition(".")[0] + "." + signature,
        Tokens("test-secret").make(1, "literature-follow-up"),
        Tokens("test-secret").make_click(1, "javascript:alert(1)"),
        Tokens("test-secret").make_click(1, "//evil.example/"),
    ):
        answer = client.get(f"/c/{bad}")
        assert answer.status_code == 404 and "location" not in answer.headers, bad
    assert payload and clicked_events(dripper, "ada@lovelace.example") == []


def test_an_old_message_still_lands_after_rotation_and_a_test_link_records_nothing(web) -> None:
    from dripper.tokens import Tokens

    client, dripper = web
    old = Tokens("retired-secret").make_click(1, "https://acme.example/old")
    assert client.get(f"/c/{old}", headers={"User-Agent": BROWSER}).headers["location"] == "https://acme.example/old"
    test = Tokens("test-secret").make_test_click(1, "https://acme.example/test")
    assert client.get(f"/c/{test}", headers={"User-Agent": BROWSER}).headers["location"] == "https://acme.example/test"
    gone = Tokens("test-secret").make_click(999, "https://acme.example/gone")  # a forgotten lead's touch
    assert client.get(f"/c/{gone}", headers={"User-Agent": BROWSER}).headers["location"] == "https://acme.example/gone"
    assert len(clicked_events(dripper, "ada@lovelace.example")) == 1


def test_a_click_with_the_database_gone_still_lands(project: Path, dripper_sqlite: Dripper) -> None:
    client, _dripper = next(webs := _web(project, dripper_sqlite))
    path = tracked_paths("ada@lovelace.example")[0]
    for part in Path(dripper_sqlite.db_url.removeprefix("sqlite:///")).parent.glob("dripper.db*"):
        part.write_bytes(b"\x01garbage" * (part.stat().st_size // 8 + 1))
    answer = client.get(path, headers={"User-Agent": BROWSER})
    assert answer.status_code == 302 and answer.headers["location"].startswith("https://acme.example/literature?")
    webs.close()


def test_one_link_records_at_most_its_cap_of_clicks_and_still_lands(
    project: Path, dripper_sqlite: Dripper, store
) -> None:
    from dripper.inbound.clicks import MAX_CLICKS_PER_LINK, record_click
    from dripper.store.queries import clickrows

    send_first(dripper_sqlite)
    later = SENT_AT + timedelta(days=1)
    with store.begin() as conn:
        recorded = [
            record_click(conn, 1, "https://acme.example/a", later, method="GET", user_agent=BROWSER).click_id
            for _ in range(MAX_CLICKS_PER_LINK + 5)
        ]
        assert recorded.count(None) == 5 and clickrows.count_for_link(conn, 1, "https://acme.example/a") == 50
        # Another link of the message has its own count.
        assert record_click(conn, 1, "https://acme.example/b", later, method="GET", user_agent=BROWSER).click_id


# --- scanners by timing ---------------------------------------------------------------------


def test_links_clicked_together_right_after_sending_are_a_scanner_burst(
    project: Path, dripper_sqlite: Dripper, store
) -> None:
    from dripper.inbound.clicks import record_click
    from dripper.store.queries import clickrows, leadrows

    send_first(dripper_sqlite)
    touch = 1  # ada's first e-mail, sent at SENT_AT
    with store.begin() as conn:
        first = record_click(
            conn, touch, "https://acme.example/a", SENT_AT + timedelta(seconds=3), method="GET", user_agent=BROWSER
        )
        assert first.scanner is None  # alone, it looks like a person's
        assert clickrows.has_clicked(conn, 1, "literature-follow-up", "thanks")
        second = record_click(
            conn, touch, "https://acme.example/b", SENT_AT + timedelta(seconds=5), method="GET", user_agent=BROWSER
        )
        assert second.scanner == "burst"
        # The first one is taken back: no event, no click by a person.
        assert not clickrows.has_clicked(conn, 1, "literature-follow-up", "thanks")
        assert [e for e in leadrows.events_for(conn, 1) if e["kind"] == "clicked"] == []
        # Later, the same links clicked by a person count.
        later = record_click(
            conn, touch, "https://acme.example/a", SENT_AT + timedelta(hours=2), method="GET", user_agent=BROWSER
        )
        also = record_click(
            conn,
            touch,
            "https://acme.example/b",
            SENT_AT + timedelta(hours=2, seconds=2),
            method="GET",
            user_agent=BROWSER,
        )
        assert later.scanner is None and also.scanner is None
        assert clickrows.has_clicked(conn, 1, "literature-follow-up", "thanks", url="https://acme.example/b")
        assert not clickrows.has_clicked(conn, 1, "literature-follow-up", "reminder-1")


# --- in a browser -------------------------------------------------------------------------


@pytest.fixture
def landing() -> Iterator[str]:
    """A web site on loopback that the tracked link points to: it says where it was reached."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server calls
            body = f"<!doctype html><title>Landed</title><p id=landed>{self.path}</p>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_click_in_the_rendered_email_lands_on_the_target_and_records_one_event(
    project: Path, dripper_sqlite: Dripper, landing: str, browser, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from conftest import dripper_env, serving

    track(project, "    tracking: {clicks: true}\n    utm: {source: dripper, medium: email}\n")
    (project / "templates/mail/thanks.html").write_text(
        THANKS.replace("https://acme.example/new-products#top", f"{landing}/products?from=mail")
    )
    env = dripper_env(DRIPPER_DATABASE_URL=dripper_sqlite.db_url, DRIPPER_SECRET="test-secret")
    with serving(project, env, tmp_path / "serve.log", "--at", (SENT_AT + timedelta(hours=1)).isoformat()) as server:
        # In processes of their own: the browser's event loop runs in this one.
        for command in (
            ("leads", "import", "leads.csv", "--at", T0.isoformat()),
            ("tick", "--at", SENT_AT.isoformat()),
        ):
            subprocess.run(
                [sys.executable, "-m", "dripper", *command],
                cwd=project,
                env={**env, "DRIPPER_BASE_URL": server.base},
                check=True,
                capture_output=True,
            )
        _text, html = parts(sent_message("ada@lovelace.example"))
        page_file = tmp_path / "message.html"
        page_file.write_text(html, encoding="utf-8")
        # A person's browser: headless Chromium names itself in its user agent, as scanners do.
        browser.page.set_extra_http_headers({"User-Agent": BROWSER})
        browser.open_file(page_file)
        with browser.page.expect_navigation(url=f"{landing}/**"):
            browser.page.click("text=our new products")
        assert browser.page.url == f"{landing}/products?from=mail&utm_source=dripper&utm_medium=email" + (
            "&utm_campaign=literature-follow-up&utm_content=thanks"
        )
        assert browser.page.locator("#landed").inner_text().startswith("/products?from=mail&utm_source=dripper")
    events = clicked_events(dripper_sqlite, "ada@lovelace.example")
    assert len(events) == 1 and events[0]["detail"]["url"] == browser.page.url  # type: ignore[index]
    assert " 500 " not in server.text()


# --- letters -----------------------------------------------------------------------------------

LETTER = """<!doctype html>
<html><head><meta charset="utf-8"></head><body>
<p>Dear {{ lead.first_name }}, see what is new: {{ personal_url('https://acme.example/new?ref=letter') }}</p>
</body></html>
"""


def test_a_letter_personal_url_goes_through_the_same_redirect(project: Path, dripper_sqlite: Dripper) -> None:
    from dripper.campaign.templates import LeadView
    from dripper.channels.compose import Composer
    from dripper.config import load
    from dripper.settings import Settings
    from dripper.tokens import Tokens

    track(project, "    tracking: {clicks: true}\n    utm: {source: dripper, medium: print}\n")
    (project / "templates/letters/follow_up.html").write_text(LETTER)
    assert dripper_sqlite("check").exit_code == 0
    loaded = load(Settings(campaigns_path=project / "campaigns.yaml"))
    campaign = loaded.campaigns.campaign("literature-follow-up")
    _stage, step = campaign.step("letter-1") or ("", None)
    assert step is not None
    view = LeadView(
        id=3, email="a@b.example", first_name="Ann", stage="supplier_research", campaign=campaign.name, timezone="UTC"
    )
    letter = Composer(loaded, BASE, "test-secret").letter(view, campaign, step, SENT_AT, touch_id=77)
    url = next(word for word in letter.html.split() if word.startswith(f"{BASE}/c/")).removesuffix("</p>")
    data = Tokens("test-secret").read_click(url.removeprefix(f"{BASE}/c/"))
    assert data is not None and data.touch_id == 77
    assert data.url == (
        "https://acme.example/new?ref=letter&utm_source=dripper&utm_medium=print"
        "&utm_campaign=literature-follow-up&utm_content=letter-1"
    )
    # Without tracking, the URL itself (with the UTM parameters); a URL that is none is a check error.
    path = project / "campaigns.yaml"
    path.write_text(path.read_text().replace("    tracking: {clicks: true}\n", "", 1))
    loaded = load(Settings(campaigns_path=path))
    campaign = loaded.campaigns.campaign("literature-follow-up")
    plain = Composer(loaded, BASE, "test-secret").letter(view, campaign, step, SENT_AT, touch_id=77)
    assert "https://acme.example/new?ref=letter&amp;utm_source=dripper" in plain.html and "/c/" not in plain.html
    (project / "templates/letters/follow_up.html").write_text(LETTER.replace("https://acme.example/new", "acme"))
    result = dripper_sqlite("check", ok=1)
    assert "follow_up.html" in result.output and "personal_url wants an absolute http(s) URL" in result.output


# --- opens ---------------------------------------------------------------------------------------


def test_no_pixel_unless_asked_and_the_report_says_opens_are_unreliable(project: Path, dripper: Dripper) -> None:
    from dripper.tokens import Tokens

    webs = _web_with(project, dripper, "    tracking: {opens: true}\n")
    client, _ = next(webs)
    _text, html = parts(sent_message("ada@lovelace.example"))
    assert "/c/" not in html  # opens only: links as they were
    pixels = [str(img.get("src")) for img in lxml_html.document_fromstring(html).iter("img")]
    assert len(pixels) == 1 and pixels[0].startswith(f"{BASE}/o/")
    path = pixels[0].removeprefix(BASE)
    assert client.head(path).status_code == 200  # a HEAD is no load
    for _ in range(2):
        answer = client.get(path, headers={"User-Agent": BROWSER})
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
        assert answer.content.startswith(b"GIF89a")
    # A bad token gets the image all the same (no broken image in a mail reader), counts nothing.
    assert client.get("/o/nonsense").headers["content-type"] == "image/gif"
    assert client.get(f"/o/{Tokens('other').make_open(1)}").status_code == 200
    plan = dripper.json("plan", "ada@lovelace.example", "--json")
    assert [e["kind"] for e in plan["events"]].count("opened") == 1
    data = dripper.json("report", "--json")["campaigns"]["literature-follow-up"]
    assert data["steps"]["thanks"]["opens"] == {"opened": 1, "rate": round(1 / 3, 4)}
    assert data["opens"]["tracked"] is True and data["opens"]["opened"] == 1
    assert "Apple Mail Privacy" in data["opens"]["note"] and data["clicks"]["tracked"] is False
    text = " ".join(dripper("report").output.split())
    assert "opened*" in text and "Apple Mail Privacy Protection" in text
    webs.close()


def _web_with(project: Path, dripper: Dripper, settings: str) -> Iterator[tuple[TestClient, Dripper]]:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    track(project, settings)
    send_first(dripper)
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=project / "campaigns.yaml"))
    app = create_app(WebContext(store, loaded, Tokens("test-secret"), FrozenClock(SENT_AT + timedelta(hours=3)), None))
    try:
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
            yield client, dripper
    finally:
        store.dispose()


def test_a_letter_can_carry_its_personal_url_as_a_qr_code(
    project: Path, dripper_sqlite: Dripper, tmp_path: Path
) -> None:
    import subprocess

    import segno
    from PIL import Image

    from dripper.campaign.templates import LeadView
    from dripper.channels.compose import Composer
    from dripper.channels.letters.layout import render_letter
    from dripper.config import load
    from dripper.settings import Settings

    track(project)
    qr_letter = LETTER.replace(
        "</p>", "</p>\n<p>{{ qr_code(personal_url('https://acme.example/new'), size='3cm') }}</p>"
    )
    (project / "templates/letters/follow_up.html").write_text(qr_letter)
    assert dripper_sqlite("check").exit_code == 0
    loaded = load(Settings(campaigns_path=project / "campaigns.yaml"))
    campaign = loaded.campaigns.campaign("literature-follow-up")
    found = campaign.step("letter-1")
    assert found is not None
    view = LeadView(
        id=3, email="a@b.example", first_name="Ann", stage="supplier_research", campaign=campaign.name, timezone="UTC"
    )
    composer = Composer(loaded, BASE, "test-secret")
    html = composer.letter(view, campaign, found[1], SENT_AT, touch_id=77).html
    # The code holds the letter's own tracked URL: the same modules segno makes of it.
    tracked = composer.personal_url_for(campaign, found[1], 77)("https://acme.example/new")
    expected = segno.make(tracked, error="m").svg_inline(scale=1, border=4, omitsize=True, svgclass="dripper-qr")
    modules = re.search(r' d="([^"]+)"', expected)
    assert modules is not None and f'd="{modules.group(1)}"' in html and "width:3cm;height:3cm" in html

    # Printed: the code is drawn in the PDF (many more dark pixels than the same letter without it).
    def dark_pixels(letter_html: str, name: str) -> int:
        pdf = tmp_path / f"{name}.pdf"
        pdf.write_bytes(render_letter(letter_html, project / "templates").pdf)
        subprocess.run(
            ["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / name)], check=True
        )
        image = Image.open(tmp_path / f"{name}-1.png").convert("L")
        return sum(image.histogram()[:128])

    (project / "templates/letters/follow_up.html").write_text(LETTER)
    plain = Composer(load(Settings(campaigns_path=project / "campaigns.yaml")), BASE, "test-secret")
    without = plain.letter(view, campaign, found[1], SENT_AT, touch_id=77).html
    side = 3 / 2.54 * 50  # 3 cm at 50 dpi, in pixels
    assert dark_pixels(html, "with") - dark_pixels(without, "without") > side * side / 4


# --- the store ------------------------------------------------------------------------------


def test_migration_0012_adds_the_clicks_and_opens_tables_as_declared_and_takes_them_back(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from dripper.store import db
    from dripper.store.tables import clicks, opens

    def migrate(conn: object, revision: str, down: bool = False) -> None:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()  # type: ignore[attr-defined]

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.connect() as conn:
        migrate(conn, "0011")
        assert not inspect(conn).has_table("clicks")
        migrate(conn, "0012")
        for table in (clicks, opens):
            columns = {c["name"] for c in inspect(conn).get_columns(table.name)}
            assert columns == {c.name for c in table.columns}
            indexes = {i["name"] for i in inspect(conn).get_indexes(table.name)}
            assert indexes == {i.name for i in table.indexes}
        migrate(conn, "0011", down=True)
        assert not inspect(conn).has_table("clicks") and not inspect(conn).has_table("opens")
    engine.dispose()


def test_a_test_send_links_redirect_but_name_no_touch(project: Path, loaded_tracked: object) -> None:
    from dripper.campaign.templates import LeadView
    from dripper.reports.previews import PreviewComposer, compose_test
    from dripper.tokens import Tokens

    loaded = loaded_tracked
    composer = PreviewComposer(loaded, BASE, "test-secret")  # type: ignore[arg-type]
    campaign = loaded.campaigns.campaign("literature-follow-up")  # type: ignore[attr-defined]
    _stage, step = campaign.step("thanks")
    view = LeadView(
        id=7, email="a@b.example", first_name="A", stage="supplier_research", campaign=campaign.name, timezone="UTC"
    )
    sent = compose_test(composer, view, campaign, step, SENT_AT, "me@acme.example")
    message = message_from_bytes(sent.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    tracked = [h.removeprefix(f"{BASE}/c/") for h in hrefs(parts(message)[1]) if h.startswith(f"{BASE}/c/")]
    tokens = Tokens("test-secret")
    assert len(tracked) == 2 and all(tokens.read_click(t) is None and tokens.read_test_click(t) for t in tracked)


# --- conditions -------------------------------------------------------------------------------------


def test_a_click_feeds_a_condition_and_a_scanner_click_does_not(project: Path, dripper: Dripper) -> None:
    path = project / "campaigns.yaml"
    text = path.read_text()
    reminder = "          template: mail/reminder.html\n"
    call = (
        "        - id: call-clickers\n          after: 2w\n          channel: call\n          kind: follow_up\n"
        "          template: mail/reminder.html\n          when: clicked('thanks')\n"
    )
    path.write_text(text.replace(reminder, reminder + "          when: clicked('thanks')\n" + call, 1))
    webs = _web_with(project, dripper, "    tracking: {clicks: true}\n")
    client, _ = next(webs)
    assert client.get(tracked_paths("ada@lovelace.example")[0], headers={"User-Agent": BROWSER}).status_code == 302
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; BingPreview/1.0b)"}
    assert client.get(tracked_paths("grace@hopper.example")[0], headers=scanner).status_code == 302
    webs.close()
    dripper("tick", "--at", (T0 + timedelta(weeks=2, hours=7)).isoformat())  # 09:00 in Chicago, 16:00 in Berlin

    def reminder_of(email: str) -> dict[str, object]:
        touches = dripper.json("plan", email, "--json")["touches"]
        return next(t for t in touches if t["step"] == "reminder-1")

    assert reminder_of("ada@lovelace.example")["state"] == "sent"
    for email in ("grace@hopper.example", "zoe@mueller.example"):
        assert (reminder_of(email)["state"], reminder_of(email)["reason"]) == ("skipped", "condition")
    # The call step with the same condition: a call task for the lead who clicked, only.
    tasks = [t for day in ("2026-01-19", "2026-01-20") for t in dripper.json("calls", "--date", day, "--json")]
    assert [t["email"] for t in tasks] == ["ada@lovelace.example"]


def test_an_ab_test_shows_each_variant_click_rate(project: Path, dripper_sqlite: Dripper) -> None:
    path = project / "campaigns.yaml"
    thanks = "          template: mail/thanks.html\n"
    variants = '          variants:\n            - name: A\n            - name: B\n              subject: "Your pack"\n'
    path.write_text(path.read_text().replace(thanks, thanks + variants, 1))
    webs = _web_with(project, dripper_sqlite, "    tracking: {clicks: true}\n")
    client, _ = next(webs)
    assert client.get(tracked_paths("ada@lovelace.example")[0], headers={"User-Agent": BROWSER}).status_code == 302
    webs.close()
    row = dripper_sqlite.json("report", "--json")["campaigns"]["literature-follow-up"]["steps"]["thanks"]
    ada = sent_message("ada@lovelace.example")["Subject"]
    own = "B" if ada == "Your pack" else "A"
    variants_sent = {name: v["sent"] for name, v in row["variants"].items()}
    assert row["variants"][own]["clicks"] == {"clicked": 1, "rate": round(1 / variants_sent[own], 4)}
    other = "A" if own == "B" else "B"
    assert row["variants"][other]["clicks"]["clicked"] == 0 and sum(variants_sent.values()) == 3
