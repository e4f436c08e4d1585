"""The read-only dashboard of `dripper serve`: its pages in a real headless browser
(Debian's chromium via Playwright, see tests/support/browser.py) against a real `dripper serve`
process, and its auth rules and bad input through Starlette's TestClient. On SQLite and
PostgreSQL, on data seeded through the CLI with `--at` (the server's clock is frozen too).

The seeded story (America/Chicago, send window Mon-Fri 09:00-17:00 on each lead's clock):
- Linus (no postal address, owner Marcus) enters on Mon 29 Dec 2025: thanks, reminder-1 on
  12 Jan, letter-1 on 26 Jan is skipped (no_postal_address), call-1 (4w1d) on Tue 27 Jan
  becomes a call task.
- Ada, Zoë (Europe/Berlin) and Grace enter on Mon 5 Jan 2026: thanks. Ada replies on 7 Jan,
  Grace unsubscribes on 8 Jan; Zoë gets reminder-1 on 19 Jan.
- The dashboard is looked at on Wed 28 Jan 2026, 12:00 UTC: Zoë's letter-1 (Mon 2 Feb, her
  next touch, a row) and call-1 (Tue 3 Feb, a later step of her track) are due within 7 days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import Dripper, dripper_env, serving
from lxml import html as lxml_html
from starlette.testclient import TestClient

from tests.support.browser import REVIEW, Watched

TOKEN = "dash-token-0123456789"
SERVE_AT = datetime(2026, 1, 28, 12, 0, tzinfo=UTC)  # a Wednesday
CALL_STEP = """        - id: call-1
          after: 4w1d
          channel: call
          kind: follow_up
          template: letters/call.html
"""
SHOTS = REVIEW / "dashboard"


def seed(dripper: Dripper) -> dict[str, int]:
    """The story above, through the CLI; lead ids by e-mail."""
    campaigns = dripper.root / "campaigns.yaml"
    text = campaigns.read_text()
    anchor = "          template: letters/follow_up.html\n"
    assert text.count(anchor) == 1
    campaigns.write_text(text.replace(anchor, anchor + CALL_STEP))
    (dripper.root / "templates" / "letters" / "call.html").write_text(
        "<p>Call {{ lead.first_name }} about {{ lead.company or 'their plans' }}.</p>"
    )
    dripper("check")
    dripper(
        "leads",
        "add",
        "linus@torvalds.example",
        "--first-name",
        "Linus",
        "--last-name",
        "Torvalds",
        "--company",
        "Torvalds & Sons",
        "--timezone",
        "America/Chicago",
        "--attr",
        "owner=Marcus",
        "--attr",
        "phone=+1 555 0100",
        "--at",
        "2025-12-29T14:00:00Z",
    )
    dripper("tick", "--at", "2025-12-29T16:00:00Z")
    dripper("leads", "import", "leads.csv", "--at", "2026-01-05T08:00:00Z")
    # Ticks at 15:00 UTC: inside the send window both in Chicago (09:00) and in Berlin (16:00).
    dripper("tick", "--at", "2026-01-06T15:00:00Z")
    dripper("event", "ada@lovelace.example", "replied", "--at", "2026-01-07T10:00:00Z")
    dripper("event", "grace@hopper.example", "unsubscribed", "--at", "2026-01-08T10:00:00Z")
    for at in ("2026-01-12T15:00:00Z", "2026-01-19T15:00:00Z", "2026-01-26T15:00:00Z", "2026-01-27T15:00:00Z"):
        dripper("tick", "--at", at)
    # A forged removal request: it changes nothing, and waits on the overview for a person.
    (dripper.root / "forged.eml").write_text(
        "From: Zoe <zoe@mueller.example>\nTo: sales@acme.example\n"
        "Subject: <b>unsubscribe</b> me\nMessage-ID: <f-1@x.example>\n\nStop.\n"
    )
    dripper("ingest", "forged.eml", "--at", "2026-01-27T17:00:00Z")
    # What the pages will be checked against, as the CLI tells it.
    steps = dripper.json("report", "--json")["campaigns"]["literature-follow-up"]["steps"]
    assert (steps["thanks"]["sent"], steps["reminder-1"]["sent"], steps["letter-1"]["skipped"]) == (4, 2, 1)
    calls = dripper.json("calls", "--date", "2026-01-27", "--json")
    assert [(c["email"], c["owner"], c["outcome"]) for c in calls] == [("linus@torvalds.example", "Marcus", "")]
    zoe = {t["step"]: t for t in dripper.json("plan", "zoe@mueller.example", "--json")["touches"]}
    assert (zoe["letter-1"]["state"], zoe["letter-1"]["due"]) == ("planned", "2026-02-02T08:00:00+00:00")
    assert (zoe["call-1"]["state"], zoe["call-1"]["due"]) == ("planned", "2026-02-03T08:00:00+00:00")
    from dripper.store import open_store
    from dripper.store.queries import leadrows

    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            return {
                email: leadrows.by_email(conn, email).id
                for email in (
                    "linus@torvalds.example",
                    "ada@lovelace.example",
                    "zoe@mueller.example",
                    "grace@hopper.example",
                )
            }
    finally:
        store.dispose()


@pytest.fixture
def seeded(dripper: Dripper) -> tuple[Dripper, dict[str, int]]:
    return dripper, seed(dripper)


def db_name(dripper: Dripper) -> str:
    return "postgresql" if dripper.db_url.startswith("postgresql") else "sqlite"


# --- a real `dripper serve` -----------------------------------------------------------------------


@pytest.fixture
def served(seeded: tuple[Dripper, dict[str, int]], tmp_path: Path) -> Iterator[str]:
    dripper, _ = seeded
    env = dripper_env(DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret", DRIPPER_DASHBOARD_TOKEN=TOKEN)
    with serving(dripper.root, env, tmp_path / "serve.log", "--at", SERVE_AT.isoformat()) as server:
        yield server.base
    assert " 500 " not in server.text()


def cell(page: Any, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def submit(watched: Watched, token: str) -> Any:
    """Log in through the form, as a person would; the response the form's POST got."""
    page = watched.page
    page.fill("input[name=token]", token)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    return navigation.value


def test_dashboard_in_a_browser(served: str, seeded: tuple[Dripper, dict[str, int]], browser: Watched) -> None:
    dripper, ids = seeded
    page, prefix = browser.page, SHOTS / db_name(dripper)

    # Not logged in: the login form, and a wrong token gets 401 with the form again.
    assert browser.goto(f"{served}/dashboard").status == 200
    assert page.locator("input[name=token][type=password]").count() == 1
    browser.screenshot(Path(f"{prefix}-login.png"))
    browser.assert_clean()
    wrong = submit(browser, "not-the-token")
    assert wrong.status == 401 and "That token is not valid." in page.inner_text("main")
    assert page.context.cookies() == []
    browser.screenshot(Path(f"{prefix}-login-wrong.png"))
    # Chromium reports the 401 document itself on the console; nothing else may go wrong.
    assert all("401" in m for m in browser.console_errors), browser.console_errors
    assert not browser.failed_requests, browser.failed_requests
    browser.clear()

    # The right token: a signed, HttpOnly, SameSite=Strict session cookie for /dashboard.
    assert submit(browser, TOKEN).status == 200
    assert page.url == f"{served}/dashboard"
    [cookie] = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        "dripper_dashboard",
        True,
        "Strict",
        "/dashboard",
    )
    assert cookie["expires"] > SERVE_AT.timestamp()  # it expires (a session cookie would be -1)

    # Overview: the steps' counts, what is due in the next 7 days, the events.
    step = "table.funnel tr[data-campaign='literature-follow-up'][data-step='{}'] td.{}"
    assert cell(page, step.format("thanks", "sent")) == "4"
    assert cell(page, step.format("reminder-1", "sent")) == "2"
    assert cell(page, step.format("letter-1", "skipped")) == "1"
    assert cell(page, step.format("letter-1", "planned")) == "1"  # Zoë's, still to come
    assert cell(page, "table.due-days tr[data-day='2026-02-02'] td.letter") == "1"  # her next touch
    assert cell(page, "table.due-days tr[data-day='2026-02-03'] td.call") == "1"  # a later step of her track
    assert cell(page, "table.due-days tr[data-day='2026-01-29'] td.total") == "0"
    assert "2 touches due: 1 leads' next touches and 1 later steps" in page.inner_text("main")
    events = page.locator("table.events tbody tr")
    assert events.count() == 2
    assert "unsubscribed" in events.nth(0).inner_text() and "grace@hopper.example" in events.nth(0).inner_text()
    assert "replied" in events.nth(1).inner_text()
    assert page.locator(f"table.events a[href='/dashboard/leads/{ids['ada@lovelace.example']}']").count() == 1
    assert page.locator("svg.chart").count() >= 3
    browser.screenshot(Path(f"{prefix}-overview.png"))
    browser.assert_clean()

    # Leads: search by name, then open Zoë from the latest leads.
    page.click("nav >> text=Leads")
    assert page.locator("table.leads tbody tr").count() == 4
    page.fill("input[name=q]", "torvalds")
    with page.expect_navigation() as navigation:
        page.press("input[name=q]", "Enter")
    assert navigation.value.status == 200
    assert page.locator("table.leads tbody tr").count() == 1 and "Torvalds & Sons" in page.inner_text("table.leads")
    browser.screenshot(Path(f"{prefix}-leads.png"))
    page.fill("input[name=q]", "ZO")  # an e-mail prefix, in any case
    with page.expect_navigation():
        page.press("input[name=q]", "Enter")
    with page.expect_navigation() as navigation:
        page.click("table.leads a:has-text('zoe@mueller.example')")
    assert navigation.value.status == 200 and page.url == f"{served}/dashboard/leads/{ids['zoe@mueller.example']}"

    # Zoë: her next touch and its date (on the page's clock, and on hers), the rest of her track.
    nxt = page.inner_text("#next-touch")
    assert "literature-follow-up / letter-1" in nxt and "Mon 2026-02-02 02:00" in nxt, nxt
    assert "Mon 2026-02-02 09:00 in Europe/Berlin" in nxt, nxt
    assert page.locator("table.touches tr[data-step='reminder-1'][data-state='sent']").count() == 1
    assert page.locator("table.touches tr[data-step='call-1'][data-state='planned']").count() == 1
    browser.screenshot(Path(f"{prefix}-lead-zoe.png"))
    browser.assert_clean()

    # Ada replied: her track is suppressed, and the page says why.
    assert browser.goto(f"{served}/dashboard/leads/{ids['ada@lovelace.example']}").status == 200
    assert "Nothing is planned for this lead (status: replied)." in page.inner_text("#next-touch")
    letter = page.inner_text("table.touches tr[data-step='letter-1']")
    assert "suppressed" in letter and "the lead replied: this sequence stopped" in letter
    assert "replied" in page.inner_text("table.events")
    browser.screenshot(Path(f"{prefix}-lead-ada.png"))

    # Linus: the skipped letter and why; his call task.
    assert browser.goto(f"{served}/dashboard/leads/{ids['linus@torvalds.example']}").status == 200
    assert "no_postal_address" in page.inner_text("table.touches tr[data-step='letter-1']")
    assert "call on 2026-01-27 (Marcus): open" in page.inner_text("table.touches tr[data-step='call-1']")
    browser.screenshot(Path(f"{prefix}-lead-linus.png"))
    browser.assert_clean()

    # Calls: by day and owner, and the task itself.
    page.click("nav >> text=Calls")
    assert page.url == f"{served}/dashboard/calls"
    summary = page.locator("table.call-summary tbody tr")
    assert summary.count() == 1 and re.fullmatch(r"2026-01-27\s+Marcus\s+1\s+0", summary.inner_text().strip())
    task = page.inner_text("table.calls tbody")
    assert "linus@torvalds.example" in task and "+1 555 0100" in task and "Call Linus about Torvalds & Sons." in task
    browser.screenshot(Path(f"{prefix}-calls.png"))
    browser.assert_clean()

    # Logging out ends the session: the next page is the login form again.
    with page.expect_navigation():
        page.click("button:has-text('Log out')")
    assert page.context.cookies() == [] and page.locator("input[name=token]").count() == 1
    browser.goto(f"{served}/dashboard/calls")
    assert page.locator("input[name=token]").count() == 1 and page.locator("table.calls").count() == 0
    browser.assert_clean()

    # Scripts: a Bearer token instead of the cookie.
    assert httpx.get(f"{served}/dashboard/calls", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(f"{served}/dashboard", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_report_html_loads_in_a_browser(
    seeded: tuple[Dripper, dict[str, int]], browser: Watched, tmp_path: Path
) -> None:
    dripper, _ = seeded
    out = tmp_path / "report.html"
    dripper("report", "--html", str(out))
    assert browser.open_file(out).ok
    assert "report" in browser.page.title().lower()
    assert "literature-follow-up" in browser.page.inner_text("body")
    assert browser.page.locator("table").count() >= 1
    browser.screenshot(REVIEW / "report.png")
    browser.assert_clean()


# --- the shipped campaign at a desktop's and a phone's width -------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_AT = datetime(2026, 2, 24, 12, 0, tzinfo=UTC)
WIDTHS = (1280, 390)  # a laptop, a phone


@pytest.fixture
def shipped_served(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Dripper]]:
    """`dripper serve` on the shipped campaigns.yaml (104 steps), templates and example leads,
    seven weeks in: every kind of touch sent, letters in batches, call tasks with their
    talking points."""
    import shutil

    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copy(ROOT / "campaigns.yaml", root)
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copy(ROOT / "examples" / "leads.csv", root)
    monkeypatch.chdir(root)
    shipped = Dripper(root, sqlite_url)
    shipped("leads", "import", "leads.csv", "--at", "2026-01-05T15:00:00Z")
    for week in range(8):  # each Monday while the send windows are open: in the West, then in Tokyo
        for at in (datetime(2026, 1, 5, 15, 30, tzinfo=UTC), datetime(2026, 1, 6, 3, tzinfo=UTC)):
            shipped("tick", "--at", (at + timedelta(weeks=week)).isoformat())
    env = dripper_env(DRIPPER_DATABASE_URL=sqlite_url, DRIPPER_SECRET="test-secret", DRIPPER_DASHBOARD_TOKEN=TOKEN)
    with serving(root, env, tmp_path / "serve.log", "--at", SHIPPED_AT.isoformat()) as server:
        yield server.base, shipped
    assert " 500 " not in server.text()


def fits(watched: Watched, width: int, name: str) -> None:
    """The page at `width`: a screenshot, no horizontal scrolling of the page; on the
    laptop, no table cut off in its scroll box either (on a phone a wide table scrolls
    inside its box, which is what the box is for); and nothing axe-core finds."""
    page = watched.page
    watched.screenshot(SHOTS / f"shipped-{name}-{width}.png")
    size = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert size[0] <= size[1], f"{name} at {width} px is {size[0]} px wide"
    if width >= 1280:
        cut = page.evaluate(
            "Array.from(document.querySelectorAll('.scroll')).filter(e => e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.firstElementChild.className + ': ' + e.scrollWidth + ' > ' + e.clientWidth)"
        )
        assert not cut, f"{name} at {width} px cuts off {cut}"
    violations = watched.axe_violations()
    assert not violations, f"{name} at {width} px:\n" + "\n".join(violations)
    watched.assert_clean()


def test_every_page_fits_a_laptop_and_a_phone(shipped_served: tuple[str, Dripper], browser: Watched) -> None:
    served, shipped = shipped_served
    page = browser.page
    steps = sum(
        len(track)
        for track in yaml.safe_load((shipped.root / "campaigns.yaml").read_text())["campaigns"]["literature-follow-up"][
            "stages"
        ].values()
    )
    assert steps == 104
    ada = shipped.json("plan", "ada@lovelace-engineering.example", "--json")
    assert any(t["channel"] == "letter" and t["state"] == "sent" for t in ada["touches"])
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.context.clear_cookies()
        assert browser.goto(f"{served}/dashboard").status == 200
        fits(browser, width, "login")
        assert submit(browser, TOKEN).status == 200

        # The overview: the 104 steps in charts of 25, each as tall as its rows need.
        fits(browser, width, "overview")
        charts = page.locator("svg.chart.stacked")
        assert charts.count() == 5
        for i in range(5):
            box = charts.nth(i).bounding_box()
            assert box is not None and box["width"] <= width
            if width >= 1280 and i < 4:  # the last chart holds the last 4 steps
                assert box["height"] > 150, box  # the single 87-column chart was 27 px tall
        assert "(steps 101–104 of 104)" in (charts.nth(4).get_attribute("aria-label") or "")

        browser.goto(f"{served}/dashboard/leads")
        fits(browser, width, "leads")
        with page.expect_navigation():
            page.click("table.leads a:has-text('ada@lovelace-engineering.example')")
        fits(browser, width, "lead")
        assert page.locator("table.touches tr[data-state='sent']").count() >= 3

        # Calls: talking points as paragraphs and a list, not one run of text with `*`s.
        browser.goto(f"{served}/dashboard/calls")
        fits(browser, width, "calls")
        points = page.locator("table.calls td.points").first
        assert points.locator("ul > li").count() >= 2 and points.locator("p").count() >= 2
        assert not any(line.lstrip().startswith("*") for line in points.inner_text().splitlines())


# --- TestClient: auth rules and bad input -----------------------------------------------------------


def make_client(dripper: Dripper, token: str | None, clock: Any) -> tuple[TestClient, Any]:
    from dripper import config as config_mod
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    app = create_app(
        WebContext(
            store, loaded, Tokens("test-secret"), clock, None, Settings(secret="test-secret"), dashboard_token=token
        )
    )
    return TestClient(app, raise_server_exceptions=False), store


@pytest.fixture
def clock() -> Any:
    from dripper.clock import FrozenClock

    return FrozenClock(SERVE_AT)


@pytest.fixture
def client(seeded: tuple[Dripper, dict[str, int]], clock: Any) -> Iterator[TestClient]:
    dripper, _ = seeded
    test_client, store = make_client(dripper, TOKEN, clock)
    with test_client:
        yield test_client
    store.dispose()


def logged_in(client: TestClient) -> TestClient:
    response = client.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    return client


PAGES = ("/dashboard", "/dashboard/leads", "/dashboard/leads?q=ada", "/dashboard/leads/1", "/dashboard/calls")


def test_without_a_token_the_dashboard_is_off(dripper: Dripper, clock: Any) -> None:
    dripper("leads", "import", "leads.csv", "--at", "2026-01-05T08:00:00Z")
    test_client, store = make_client(dripper, None, clock)
    with test_client:
        for path in PAGES:
            for headers in ({}, {"Authorization": "Bearer anything"}):
                response = test_client.get(path, headers=headers)
                assert response.status_code == 403, path
                assert "DRIPPER_DASHBOARD_TOKEN" in response.text and "ada@" not in response.text
        assert test_client.post("/dashboard/login", data={"token": ""}).status_code == 403
        assert test_client.get("/healthz").status_code == 200  # the rest of `serve` is unchanged
    store.dispose()


def test_login_sets_an_expiring_strict_session_cookie(
    client: TestClient, clock: Any, seeded: tuple[Dripper, dict[str, int]]
) -> None:
    first = client.get("/dashboard")
    assert first.status_code == 200 and "name='token'" in first.text and "set-cookie" not in first.headers
    assert "literature-follow-up" not in first.text
    wrong = client.post("/dashboard/login", data={"token": TOKEN[:-1]}, follow_redirects=False)
    assert wrong.status_code == 401 and "That token is not valid." in wrong.text and "name='token'" in wrong.text
    assert "set-cookie" not in wrong.headers
    assert client.post("/dashboard/login", data={}, follow_redirects=False).status_code == 401
    assert client.post("/dashboard/login", content=b"\xff\xfe", follow_redirects=False).status_code in (400, 401)

    right = client.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/dashboard"
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in right.headers["set-cookie"].split(";")}
    assert {"httponly", "path", "samesite", "max-age", "expires"} <= attributes.keys()
    assert attributes["path"] == "Path=/dashboard" and attributes["samesite"].lower() == "samesite=strict"
    assert attributes["max-age"] == "Max-Age=43200"
    page = client.get("/dashboard")
    assert page.status_code == 200 and "literature-follow-up" in page.text
    for name, value in {"Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store"}.items():
        assert value in page.headers[name]

    # The cookie names a session kept on the server: altered, or a session of another token
    # (DRIPPER_DASHBOARD_TOKEN changed since), it is no session.
    good = client.cookies["dripper_dashboard"]
    from dripper.store import open_store
    from dripper.web.dashboard import Sessions

    store = open_store(seeded[0].db_url)
    other_token = Sessions(store, "other-token", clock).issue()
    store.dispose()
    for forged in (good[::-1], good[:-1] + ("A" if good[-1] != "A" else "B"), other_token, "garbage", "x" * 5000):
        client.cookies.clear()
        client.cookies.set("dripper_dashboard", forged)
        response = client.get("/dashboard/calls")
        assert response.status_code == 200 and "name='token'" in response.text and "Marcus" not in response.text
    client.cookies.clear()
    client.cookies.set("dripper_dashboard", good)
    assert "Marcus" in client.get("/dashboard/calls").text

    # It expires: 12 hours on the server's clock.
    clock.advance(timedelta(hours=12, seconds=-1))
    assert "Marcus" in client.get("/dashboard/calls").text
    clock.advance(timedelta(seconds=1))
    ended = client.get("/dashboard/calls")
    assert "Your session has ended" in ended.text and "Marcus" not in ended.text


def test_bearer_tokens_next_and_logout(client: TestClient) -> None:
    assert client.get("/dashboard/calls", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/dashboard/calls", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    for bad in ("Bearer nope", f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}"):
        response = client.get("/dashboard/calls", headers={"Authorization": bad})
        assert "Marcus" not in response.text, bad
        if bad.startswith("Bearer"):
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")

    # After logging in, back where the login form was shown; never to another site.
    for target, lands in (
        ("/dashboard/calls?open=1", "/dashboard/calls?open=1"),
        ("https://evil.example/", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("/dashboard/../u/x", "/dashboard"),
        ("/dashboardx", "/dashboard"),
        ("/dashboard\\evil", "/dashboard"),
    ):
        response = client.post("/dashboard/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
        assert response.headers["location"] == lands, target
    assert "Marcus" in client.get("/dashboard/calls").text
    out = client.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 303 and "dripper_dashboard=" in out.headers["set-cookie"]
    assert "Max-Age=0" in out.headers["set-cookie"] or "expires=" in out.headers["set-cookie"].lower()
    assert "Marcus" not in client.get("/dashboard/calls").text
    # Read-only: the pages take GET (and HEAD) only.
    logged_in(client)
    assert client.post("/dashboard").status_code == 405
    assert client.delete("/dashboard/leads/1").status_code == 405
    assert client.head("/dashboard").status_code == 200


def sessions_in_db(store: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from dripper.store.tables import dashboard_sessions

    with store.begin() as conn:
        return [dict(r) for r in conn.execute(select(dashboard_sessions)).mappings()]


def test_logout_ends_the_session_on_the_server(seeded: tuple[Dripper, dict[str, int]], clock: Any) -> None:
    """A copy of the cookie taken before logging out opens nothing after it, on any server
    of the same database; a restart keeps sessions; expired ones are deleted."""
    dripper, _ = seeded
    first, first_store = make_client(dripper, TOKEN, clock)
    second, second_store = make_client(dripper, TOKEN, clock)  # another `serve` process, or the same restarted
    with first, second:
        logged_in(first)
        copied = first.cookies["dripper_dashboard"]
        second.cookies.set("dripper_dashboard", copied)
        assert "Marcus" in second.get("/dashboard/calls").text  # the session is the database's

        assert first.post("/dashboard/logout", follow_redirects=False).status_code == 303
        for replay in (first, second):
            replay.cookies.clear()
            replay.cookies.set("dripper_dashboard", copied)
            page = replay.get("/dashboard/calls")
            assert page.status_code == 200 and "Your session has ended" in page.text and "Marcus" not in page.text

        [row] = sessions_in_db(first_store)
        assert copied not in str(row)  # the table holds a hash of the session id, not the cookie
        assert (row["issued_at"], row["expires_at"], row["ended_at"]) == (
            SERVE_AT,
            SERVE_AT + timedelta(hours=12),
            SERVE_AT,
        )

        # Expired sessions are deleted when the next one is issued.
        first.cookies.clear()
        logged_in(first)
        assert len(sessions_in_db(first_store)) == 2
        clock.advance(timedelta(hours=12))
        logged_in(first)
        assert [r["issued_at"] for r in sessions_in_db(first_store)] == [SERVE_AT + timedelta(hours=12)]
    first_store.dispose()
    second_store.dispose()


def test_wrong_tokens_lock_the_client_out_for_a_while(seeded: tuple[Dripper, dict[str, int]], clock: Any) -> None:
    """5 wrong tokens in 15 minutes lock that client address out for 15 minutes: 429 with
    Retry-After for the right token and a wrong one alike; other clients are not locked."""
    from dripper import config as config_mod
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    dripper, _ = seeded
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    app = create_app(WebContext(store, loaded, Tokens("test-secret"), clock, None, dashboard_token=TOKEN))
    other_app = create_app(WebContext(store, loaded, Tokens("test-secret"), clock, None, dashboard_token=TOKEN))

    def from_(address: str, server: Any = app) -> TestClient:
        return TestClient(server, raise_server_exceptions=False, client=(address, 40000), follow_redirects=False)

    def login(client: TestClient, token: str) -> Any:
        return client.post("/dashboard/login", data={"token": token})

    guesser, colleague = from_("198.51.100.7"), from_("203.0.113.9")
    with guesser, colleague:
        clock.advance(timedelta(minutes=20))  # the window starts at the first wrong token, whenever that is
        for i in range(4):
            assert login(guesser, f"guess-{i}").status_code == 401
            clock.advance(timedelta(minutes=3))
        locking = login(guesser, "guess-4")  # the 5th within 15 minutes (12 so far)
        assert locking.status_code == 429 and locking.headers["retry-after"] == "900"
        clock.advance(timedelta(minutes=5))
        right, wrong = login(guesser, TOKEN), login(guesser, "guess-5")
        assert right.status_code == wrong.status_code == 429
        assert (
            right.text == wrong.text and "try again in 10 minutes" in right.text and "set-cookie" not in right.headers
        )
        assert right.headers["retry-after"] == wrong.headers["retry-after"] == "600"
        for bearer in (TOKEN, "guess-6"):  # the same for scripts, on any server of the same database
            response = from_("198.51.100.7", other_app).get(
                "/dashboard/calls", headers={"Authorization": f"Bearer {bearer}"}
            )
            assert response.status_code == 429 and "Marcus" not in response.text
        # Another client is not locked out.
        assert login(colleague, TOKEN).status_code == 303
        assert colleague.get("/dashboard/calls", follow_redirects=True).status_code == 200

        clock.advance(timedelta(minutes=10, seconds=-1))
        assert login(guesser, TOKEN).headers["retry-after"] == "1"
        clock.advance(timedelta(seconds=1))
        assert login(guesser, TOKEN).status_code == 303  # the lock is over, and the count starts afresh
        for i in range(4):
            assert login(guesser, f"again-{i}").status_code == 401
        assert login(guesser, TOKEN).status_code == 303  # the right token forgets the wrong ones
        for i in range(4):
            assert login(guesser, f"more-{i}").status_code == 401

        # Wrong Bearer tokens count too; an IPv6 client counts by its /64.
        for i in range(5):
            response = from_("2001:db8:1:2::10").get("/dashboard", headers={"Authorization": f"Bearer guess-{i}"})
        assert response.status_code == 429
        assert login(from_("2001:db8:1:2::99"), TOKEN).status_code == 429
        assert login(from_("2001:db8:1:3::10"), TOKEN).status_code == 303
    store.dispose()


def test_bad_input_gets_4xx_never_5xx(client: TestClient) -> None:
    logged_in(client)
    cases = {
        "/dashboard/leads/abc": 400,
        "/dashboard/leads/-1": 400,
        "/dashboard/leads/1.5": 400,
        "/dashboard/leads/%00": 400,
        "/dashboard/leads/999999": 404,
        "/dashboard/leads/" + "9" * 40: 404,
        "/dashboard/leads/9223372036854775807": 404,  # 19 digits: no id of ours is that long
        "/dashboard/leads?q=" + "a" * 10_000: 400,
        "/dashboard/leads?q=a%00b": 400,
        "/dashboard/calls?day=2026-13-45": 400,
        "/dashboard/calls?day=yesterday": 400,
        "/dashboard/calls?owner=" + "x" * 1000: 400,
        "/dashboard/calls?day=all": 200,
        "/dashboard/leads?q=%25": 200,
        "/dashboard/leads?q=_": 200,
        "/dashboard/leads?q=%27%22%3B--": 200,
        "/dashboard/leads?q=%F0%9F%92%A5": 200,
        "/dashboard/leads?q=%E4%B8%AD%EF%BF%BF%F4%8F%BF%BF": 200,
        "/dashboard/nope": 404,
    }
    for path, status in cases.items():
        response = client.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:300])
    assert "No lead matches." in client.get("/dashboard/leads?q=%25").text  # % is a character, not a wildcard
    assert "No lead matches." in client.get("/dashboard/leads?q=_").text


def test_search_by_email_prefix_name_and_company(client: TestClient, seeded: tuple[Dripper, dict[str, int]]) -> None:
    _, ids = seeded
    logged_in(client)

    def found(q: str) -> list[str]:
        tree = lxml_html.fromstring(client.get("/dashboard/leads", params={"q": q}).text)
        return [a.text_content() for a in tree.xpath("//table[@class='leads']/tbody/tr/td[1]/a")]

    assert found("zo") == ["zoe@mueller.example"]
    assert found("  ZOE@Mueller.example ") == ["zoe@mueller.example"]
    assert found("grace@hopper.example") == ["grace@hopper.example"]
    assert found("lovelace") == ["ada@lovelace.example"]  # the name (and, here, the domain)
    assert found("ada lovelace") == ["ada@lovelace.example"]
    assert found("müller anlagen") == ["zoe@mueller.example"]  # the company
    assert found("sons") == ["linus@torvalds.example"]
    assert found("example") == []  # inside e-mails only their start is searched
    assert found("nobody") == []
    assert sorted(found("")) == sorted(ids)  # no text: the leads added last


def test_pages_escape_what_they_print(client: TestClient, seeded: tuple[Dripper, dict[str, int]]) -> None:
    dripper, _ = seeded
    dripper(
        "leads",
        "add",
        "mallory@evil.example",
        "--first-name",
        "<script>alert(1)</script>",
        "--company",
        '"><img src=x onerror=alert(2)>',
        "--attr",
        "note=<b>bold</b>",
        "--at",
        "2026-01-27T10:00:00Z",
    )
    dripper("event", "mallory@evil.example", "stage", "--stage", "lost_to_competitor", "--at", "2026-01-27T11:00:00Z")
    logged_in(client)
    lead_id = re.search(r"/dashboard/leads/(\d+)'>mallory@", client.get("/dashboard/leads?q=mallory").text).group(1)
    for path in (
        "/dashboard",
        "/dashboard/leads?q=mallory",
        f"/dashboard/leads/{lead_id}",
        "/dashboard/leads?q=%3Cscript%3Ealert(3)%3C/script%3E",
    ):
        text = client.get(path).text
        assert "<script" not in text and "<img" not in text and "<b>bold" not in text, path
    page = client.get(f"/dashboard/leads/{lead_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "lost_to_competitor" in client.get("/dashboard").text  # the stage change is a recent event
    overview = client.get("/dashboard").text
    review = overview[overview.index("Inbound mail to review") :]
    assert "zoe@mueller.example" in review and "&lt;b&gt;unsubscribe&lt;/b&gt; me" in review
    assert "its From address is unauthenticated" in review  # and why it changed nothing


def number(tr: Any, css_class: str) -> int:
    """The figure in the row's cell of that class (`<td class='n sent'>`)."""
    [td] = tr.xpath(f"td[contains(concat(' ', @class, ' '), ' {css_class} ')]")
    return int(td.text_content())


def test_overview_counts_are_the_reports(client: TestClient, seeded: tuple[Dripper, dict[str, int]]) -> None:
    dripper, _ = seeded
    logged_in(client)
    tree = lxml_html.fromstring(client.get("/dashboard").text)
    report = dripper.json("report", "--json")["campaigns"]
    from dripper.store import STATES

    for name, campaign in report.items():
        for step, row in campaign["steps"].items():
            [tr] = tree.xpath(f"//table[@class='funnel']//tr[@data-campaign='{name}'][@data-step='{step}']")
            for state in (*STATES, "total"):
                assert number(tr, state) == row[state], (step, state)
    days = {tr.get("data-day"): number(tr, "total") for tr in tree.xpath("//table[@class='due-days']/tbody/tr")}
    assert list(days) == [f"2026-01-{d}" for d in (28, 29, 30, 31)] + ["2026-02-01", "2026-02-02", "2026-02-03"]
    assert days == {**dict.fromkeys(days, 0), "2026-02-02": 1, "2026-02-03": 1}
    steps = {tr.get("data-step"): number(tr, "total") for tr in tree.xpath("//table[@class='due-steps']/tbody/tr")}
    assert steps == {"letter-1": 1, "call-1": 1}


CUSTOMER_STEPS = """        - id: customer-tips
          after: 3d
          channel: email
          kind: new_info
          subject: "Tips"
          template: mail/news.html
        - id: customer-call
          after: 1w
          channel: call
          kind: follow_up
          template: letters/call.html
        - id: customer-month
          after: 1mo
          channel: email
          kind: reminder
          subject: "A month on"
          template: mail/reminder.html
"""


def test_due_soon_walks_only_tracks_that_can_reach_the_window_and_misses_nothing(dripper: Dripper) -> None:
    """The later steps in the window, found by walking only the leads `later_cutoffs` lets
    through, are exactly those found by walking every lead with a touch in the window."""
    from sqlalchemy import select

    from dripper import config as config_mod
    from dripper.campaign import timing
    from dripper.reports import funnel as report
    from dripper.settings import Settings
    from dripper.store import open_store, touches
    from dripper.store.queries import leadrows, touchrows
    from dripper.web.dashboard import Layout, due_soon

    campaigns = dripper.root / "campaigns.yaml"
    campaigns.write_text(campaigns.read_text() + CUSTOMER_STEPS)
    (dripper.root / "templates" / "letters" / "call.html").write_text("<p>Call {{ lead.first_name }}.</p>")
    start = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    for day in range(14):  # a customer and a researcher entering each day, at shifting hours
        at = start + timedelta(days=day, hours=3 * (day % 5))
        for stage in ("customer", "supplier_research"):
            dripper(
                "leads",
                "add",
                f"{stage[:4]}{day}@example.org",
                "--stage",
                stage,
                "--at",
                at.isoformat(),
                "--timezone",
                ("America/Chicago", "Europe/Berlin", "Asia/Tokyo")[day % 3],
            )
        dripper("tick", "--at", (at + timedelta(hours=12)).isoformat())
    now = start + timedelta(days=14, hours=5)
    loaded = config_mod.load(Settings(campaigns_path=campaigns))
    layout = Layout(timing.zone("America/Chicago"), "America/Chicago")
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            soon = due_soon(conn, loaded.planner, layout, now)
            end = timing.localize(datetime.combine(soon.days[-1] + timedelta(days=1), datetime.min.time()), layout.zone)
            expected: dict[tuple[str, str, str], dict[Any, int]] = {}
            later = 0
            in_window = (touches.c.state == "planned", touches.c.due_at > now, touches.c.due_at < end)
            lead_ids = list(conn.scalars(select(touches.c.lead_id).where(*in_window).distinct()))
            for lead_id in lead_ids:
                lead = leadrows.by_id(conn, lead_id)
                rows = touchrows.for_lead(conn, lead_id)
                items = [(r, False) for r in rows if r["state"] == "planned" and now < r["due_at"] < end]
                items += [
                    (r, True)
                    for r in report.upcoming_rows(loaded.planner, lead, rows)
                    if r["state"] == "planned" and now < r["due_at"] < end
                ]
                for row, is_later in items:
                    cell = expected.setdefault((row["campaign"], row["step_id"], row["channel"]), {})
                    day = layout.day(row["due_at"])
                    cell[day] = cell.get(day, 0) + 1
                    later += is_later
    finally:
        store.dispose()
    assert later > 0 and soon.later == later
    assert soon.by_step == expected
    assert 0 < soon.looked_at < len(lead_ids)  # some tracks were walked, not all


@pytest.mark.parametrize("campaigns_file", ["campaigns.yaml", "tests/fixtures/project/campaigns.yaml"])
def test_later_cutoffs_bound_every_later_step(campaigns_file: str) -> None:
    """No step that comes after a lead's next touch is due sooner after the lead's entry
    than the cutoff allows, whatever the entry instant, zone, country or send window (the
    shipped campaigns.yaml has windows and holidays); and the bound is tight to a day."""
    from dripper.campaign.model import load
    from dripper.planning.planner import Planner
    from dripper.web.dashboard import later_cutoffs

    config = load(Path(__file__).parent.parent / campaigns_file)
    planner = Planner(config)
    end = datetime(2027, 1, 1, tzinfo=UTC)
    least = {key: end - cutoff for key, cutoff in later_cutoffs(config, end).items()}
    slack: dict[tuple[str, str], timedelta] = {}
    entries = [datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=7 * i) for i in range(130)]
    for name, campaign in config.campaigns.items():
        for stage in campaign.stages:
            for entered in entries:
                for tz, country in (("America/Chicago", "US"), ("Europe/Berlin", "DE"), ("Asia/Tokyo", "")):
                    track = planner.dues(name, stage, entered, tz, country)
                    for k, (step, _) in enumerate(track[:-1]):
                        soonest = min(due for _, due in track[k + 1 :]) - entered
                        assert soonest >= least[(name, step.id)], (name, stage, step.id, entered, tz)
                        key = (name, step.id)
                        slack[key] = min(slack.get(key, timedelta.max), soonest - least[key])
    assert min(slack.values()) <= timedelta(days=1), min(slack.values())


def test_a_stopped_leads_page_says_stopped_not_opted_out_of_a_star(
    seeded: tuple[Dripper, dict[str, int]], client: TestClient
) -> None:
    dripper, ids = seeded
    dripper("leads", "stop", "ada@lovelace.example", "--at", SERVE_AT.isoformat())
    page = logged_in(client).get(f"/dashboard/leads/{ids['ada@lovelace.example']}")
    assert page.status_code == 200
    assert "<dt>Stopped</dt>" in page.text and "Opted out of" not in page.text
