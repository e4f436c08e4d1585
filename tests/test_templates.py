"""Every page template renders hostile text as text: a lead's name, a company, a reason or a
search that is `<script>…` or breaks out of an attribute never becomes markup. Each template
is rendered with the hostile text in every value it prints; a new template must be added
here (the last test lists them)."""

from __future__ import annotations

import html as html_mod
import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from markupsafe import Markup

EVIL = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def render(name: str, /, **context: Any) -> str:
    from dripper.web.templating import environment

    return environment().get_template(name).render(**context)


def assert_escaped(html: str) -> None:
    assert "<script" not in html and "<img" not in html and ESCAPED in html
    assert "\"'>" not in html  # no quote got out of an attribute


def layout() -> Any:
    from dripper.web.dashboard import Layout

    return Layout(ZoneInfo("UTC"), "UTC")


def dashboard(name: str, /, **context: Any) -> str:
    from dripper.web.dashboard import meaning

    base = {"title": EVIL, "here": "", "nav": True, "now": NOW, "layout": layout(), "meaning_of": meaning}
    return render(name, **{**base, **context})


PUBLIC = {
    "public/page.html": {"message": EVIL},
    "public/unsubscribe.html": {"email": EVIL, "sender": EVIL, "token": EVIL},
    "public/unsubscribed.html": {"email": EVIL, "sender": EVIL},
    "public/preferences.html": {"email": EVIL, "about": EVIL, "sender": EVIL, "months": (1, 2)},
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_pages_escape(name: str) -> None:
    html = render(name, **{"title": EVIL, "message": "", **PUBLIC[name]})
    assert_escaped(html)
    assert html.count(ESCAPED) >= len(PUBLIC[name]) - ("months" in PUBLIC[name]) + 1  # each value, and the title


def lead_row() -> dict[str, Any]:
    return {
        "id": 7,
        "email": EVIL,
        "first_name": EVIL,
        "last_name": "",
        "company": EVIL,
        "stage": EVIL,
        "campaign": EVIL,
        "stage_entered_at": NOW,
        "opted_out": [EVIL],
        "paused_until": None,
        "address_line1": EVIL,
        "address_line2": "",
        "postal_code": "",
        "city": "",
        "region": "",
        "country": "",
    }


def test_dashboard_layout_login_and_disabled_escape() -> None:
    assert_escaped(dashboard("dashboard/layout.html", message=EVIL))
    html = dashboard("dashboard/login.html", nav=False, error=EVIL, next=EVIL)
    assert_escaped(html) and html.count(ESCAPED) == 3  # title, error, next
    assert_escaped(dashboard("dashboard/disabled.html", nav=False))


def test_dashboard_overview_escapes() -> None:
    from dripper.store import STATES
    from dripper.web.dashboard.due import DueSoon
    from dripper.web.dashboard.pages import CampaignSection, DueSection, StepRow

    day = date(2026, 1, 5)
    soon = DueSoon([day], {day: {"email": 1}}, {(EVIL, EVIL, EVIL): {day: 1}})
    counts = dict.fromkeys((*STATES, "total"), 1)
    section = CampaignSection(
        EVIL, EVIL, [Markup("<svg></svg>")], [StepRow(EVIL, EVIL, EVIL, counts, EVIL, EVIL)], counts
    )
    event = {"at": NOW, "kind": EVIL, "lead_id": 7, "email": EVIL, "source": EVIL}
    html = dashboard(
        "dashboard/overview.html",
        leads=1,
        stage_chart=None,
        campaigns=[section],
        due=DueSection(soon, 3, [EVIL], Markup("<svg></svg>"), sorted(soon.by_step.items())),
        overdue_cap=10,
        channels=("email",),
        recent=50,
        events=[(event, EVIL, EVIL)],
        review=[({"at": NOW}, {"classified_as": EVIL, "suspected_lead": EVIL, "from": EVIL, "subject": EVIL})],
    )
    assert_escaped(html)
    assert "data-campaign='&lt;script" in html and "class='badge &lt;script" in html


def test_dashboard_leads_lead_and_calls_escape() -> None:
    lead = lead_row()
    html = dashboard("dashboard/leads.html", q=EVIL, max_query=320, limit=50, found=[(lead, EVIL, EVIL)])
    assert_escaped(html) and "value='&lt;script" in html
    info = {
        **lead,
        "status": EVIL,
        "timezone": EVIL,
        "postal_address": {"complete": False, "problem": EVIL},
        **{f"{kind}_at": NOW for kind in ("converted", "replied", "unsubscribed", "bounced", "complained")},
    }
    touch = {
        "due": NOW.isoformat(),
        "campaign": EVIL,
        "step": EVIL,
        "channel": EVIL,
        "kind": EVIL,
        "state": EVIL,
        "reason": "smtp_error: " + EVIL,
        "sent_at": None,
        "message_id": EVIL,
    }
    html = dashboard(
        "dashboard/lead.html",
        lead=lead,
        info=info,
        lead_name=EVIL,
        next_touch=touch,
        next_overdue=True,
        next_own_clock=EVIL,
        postal=[EVIL],
        paused=NOW,
        attrs=[(EVIL, EVIL)],
        chart=None,
        touches=[(touch, [EVIL])],
        events=[({"at": NOW, "kind": EVIL, "source": EVIL}, EVIL)],
    )
    assert_escaped(html) and "the SMTP server refused it for good" in html  # the reason, explained
    task = {
        "day": EVIL,
        "owner": EVIL,
        "lead_id": 7,
        "email": EVIL,
        "campaign": EVIL,
        "step_id": EVIL,
        "outcome": EVIL,
        "note": EVIL,
    }
    html = dashboard(
        "dashboard/calls.html",
        day=EVIL,
        owner=EVIL,
        open_only=True,
        max_owner=200,
        shown=500,
        summary=[{"day": EVIL, "owner": EVIL, "open": 1, "done": 0}],
        tasks=[(task, EVIL, EVIL, EVIL)],
    )
    assert_escaped(html) and "value='&lt;script" in html
    from dripper.store.queries.webhookrows import Delivery, Subscription

    dead = Delivery(1, 1, EVIL, EVIL, EVIL, "dead", 3, NOW, NOW, EVIL)
    sub = Subscription(1, EVIL, (EVIL,), None, EVIL, "cli", NOW, None)
    html = dashboard("dashboard/webhooks.html", counts={"dead": 1}, dead=[(dead, EVIL)], shown=200, subscriptions=[sub])
    assert_escaped(html)  # a receiver's error text and a subscription's URL (issue 20)


def test_report_and_previews_escape() -> None:
    from dripper.reports.formats import Cell
    from dripper.reports.previews import Track, timeline_page

    html = render("previews/email_header.html", subject=EVIL, rows=[("From", EVIL)], note=EVIL)
    assert_escaped(html)
    assert_escaped(render("previews/email_head.html", whole=True, charset=True, title=True, subject=EVIL))
    html = render("previews/email_page.html", subject=EVIL, header=Markup(""), message=Markup("<p>ours</p>"))
    assert_escaped(html) and "<p>ours</p>" in html  # the message's own HTML is kept
    assert_escaped(render("previews/call.html", title=EVIL, details=[(EVIL, EVIL)], points=EVIL, note=EVIL))
    row = {"day": 0, "date": NOW.isoformat(), "step": EVIL, "channel": EVIL, "kind": EVIL, "subject": EVIL}
    html = timeline_page([Track(EVIL, EVIL, [row])], start=NOW, days=30, zone=EVIL, local=lambda _: EVIL, country=EVIL)
    assert_escaped(html) and "class='ch-&lt;script" in html
    cell = Cell(EVIL, False)
    html = render(
        "report/report.html",
        stamp=EVIL,
        window=EVIL,
        touch_head=[EVIL],
        outcome_head=[EVIL],
        variant_head=[EVIL],
        campaigns=[
            {
                "name": EVIL,
                "enrolled": 1,
                "sent": 1,
                "replies": 0,
                "conversions": 0,
                "figures": [(Markup("<svg></svg>"), EVIL)],
                "touches": [(EVIL, [cell], EVIL)],
                "touch_totals": [cell],
                "outcomes": [(EVIL, [cell])],
                "outcome_totals": [cell],
                "unattributed": [cell],
                "movements": [[cell]],
                "conversion_time": [cell],
                "stages": [[cell]],
                "clicks": [[cell]],  # a link's URL, shown as written (issue 18)
                "click_notes": (EVIL,),
                "click_head": (EVIL,),
                "ab_tests": [(EVIL, EVIL, [[cell]])],
            }
        ],
    )
    assert_escaped(html)


def test_the_charts_escape_what_they_print() -> None:
    from dripper.reports import charts

    for svg in (
        charts.bars([(EVIL, 1)], EVIL, unit=EVIL),
        charts.columns([EVIL], [charts.Series(EVIL, [1])], EVIL, labels=[EVIL]),
        charts.funnel([(EVIL, 1)], EVIL),
        charts.stacked_bars([EVIL, EVIL * 9], [charts.Series(EVIL, [1, 2])], EVIL),
        charts.timeline([(1, EVIL, EVIL)], 30, EVIL, colours={EVIL: EVIL}),
    ):
        assert_escaped(svg)


# Every page template, each covered by a test above (partials: the layouts and macros).
PAGES = {
    "base.html",
    "dashboard/macros.html",
    *PUBLIC,
    "dashboard/layout.html",
    "dashboard/login.html",
    "dashboard/disabled.html",
    "dashboard/overview.html",
    "dashboard/leads.html",
    "dashboard/lead.html",
    "dashboard/calls.html",
    "dashboard/webhooks.html",
    "previews/email_header.html",
    "previews/email_head.html",
    "previews/email_page.html",
    "previews/call.html",
    "previews/timeline.html",
    "report/report.html",
}


def test_every_template_is_covered_here() -> None:
    """A new page template is added to the tests above, and to PAGES."""
    from dripper.web.templating import environment

    assert set(environment().list_templates()) == PAGES


SHARED = {"base.html", *(name for name in PAGES if name.startswith(("previews/", "report/")))}


def test_the_reports_pages_are_in_the_neutral_package() -> None:
    """The report and the previews render with `dripper.pages` alone: the layout and their
    pages are there, the web's own pages are not."""
    from dripper.pages import environment

    assert set(environment().list_templates()) == SHARED


def test_reports_do_not_import_the_web() -> None:
    """One-way flow: the reports read the store and the shared pages, never `dripper.web`."""
    import subprocess
    import sys

    modules = ", ".join(f"dripper.reports.{name}" for name in ("charts", "formats", "funnel", "previews", "simulation"))
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[:2] == ['dripper', 'web']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_autoescape_is_on_for_every_template() -> None:
    from dripper.web.templating import environment

    env = environment()
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x=EVIL).startswith(ESCAPED)


def test_talking_points_become_paragraphs_and_lists_and_nothing_else() -> None:
    from dripper.channels.email.text import html_to_text
    from dripper.web.dashboard.points import talking_points

    # As stored: a call template's HTML made text (lead data inside it).
    evil = html_mod.escape(EVIL)  # what autoescaping made of it in the call template
    text = html_to_text(
        f"<p>Call {evil} at *Acme* on [x](javascript:alert(1)).</p><p>Goal: a trial.</p>"
        f"<ul><li>one {evil}</li><li>two</li><li>three</li></ul><p>Best,<br>Dana</p>"
    )
    html = str(talking_points(text))
    assert_escaped(html)
    assert html.count("<ul>") == 1 and html.count("<li>") == 3 and html.count("<p>") == 3
    assert "<br" in html  # a line break in a paragraph is kept
    assert "*Acme*" in html and "<em>" not in html and "<a" not in html  # no markup but lists
    assert talking_points("") == "" and talking_points("  \n") == ""


def test_a_long_list_of_steps_splits_into_charts_on_one_scale() -> None:
    from dripper.reports import charts

    ids = [f"step-{i}" for i in range(87)]
    assert charts.split(ids) == [(0, 25), (25, 50), (50, 75), (75, 87)]
    assert charts.split([]) == [(0, 0)]
    series = [charts.Series("sent", [1] * 25)]
    small = charts.stacked_bars(ids[:25], series, "a", max_value=4, label_w=200)
    big = charts.stacked_bars(ids[:25], series, "a", label_w=200)
    # On the shared scale of 4, one touch is a quarter of the bar it would be alone.
    width = re.compile(r"<rect x='200.0' y='\d+' width='([\d.]+)' height='16'")
    assert 3.9 < float(width.findall(big)[0]) / float(width.findall(small)[0]) < 4.1
    assert "viewBox='0 0 720 " in big  # as wide for 25 steps as for 2: it grows downwards
