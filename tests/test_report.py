"""`dripper report`: what came of the touches, on a scenario whose every outcome is known.

Seven leads go through the supplier_research track of tests/fixtures/project (ticks on
days 1, 2, 15 and 29), with replies, conversions, an unsubscribe and a bounce recorded
through the CLI and an inbound reply through `dripper ingest`; two leads change stage by
event, one by re-import; an eighth lead is in a stage without a track. The figures below
are worked out by hand from that story (see `scenario`).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import Dripper

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
CAMPAIGN = "literature-follow-up"
MORE = (
    "email,first_name,last_name,company,stage,timezone,campaign\n"
    "dan@lead.example,Dan,D,,supplier_research,America/Chicago,\n"
    "eve@lead.example,Eve,E,,supplier_research,America/Chicago,\n"
    "fay@lead.example,Fay,F,,{fay_stage},America/Chicago,\n"
    "ivy@lead.example,Ivy,I,,supplier_research,America/Chicago,\n"
)


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def reply_to_first_mail(email: str, folder: Path) -> Path:
    """A person's reply to the first e-mail dripper sent `email` (In-Reply-To its Message-ID)."""
    sent = next(Path("outbox").glob(f"*_{email}.eml")).read_bytes()
    message_id = message_from_bytes(sent, policy=policy.default)["Message-ID"]
    path = folder / "reply.eml"
    path.write_text(
        f"From: Ada Lovelace <{email}>\nTo: sales@acme.example\nSubject: Re: Your valves information pack\n"
        f"Message-ID: <reply-1@lovelace.example>\nIn-Reply-To: {message_id}\nReferences: {message_id}\n\n"
        "Thanks, could you send a quote for 40 units?\n"
    )
    return path


def scenario(dripper: Dripper, folder: Path) -> None:
    more = folder / "more.csv"
    more.write_text(MORE.format(fay_stage="supplier_research"))
    dripper("leads", "import", "leads.csv", "--at", at(0))
    dripper("leads", "import", str(more), "--at", at(0))
    dripper("tick", "--at", at(1))  # thanks to all seven
    # Zoe converts (no touch named: counted for thanks, sent a day before) and becomes a customer.
    dripper("event", "zoe@mueller.example", "converted", "--stage", "customer", "--at", at(2))
    dripper("event", "ivy@lead.example", "bounced", "--at", at(2))  # for thanks too
    dripper("tick", "--at", at(2.02))  # Zoe's welcome-customer (16:29 in Berlin: inside the send window)
    # Ada answers her thanks e-mail: matched by In-Reply-To, counted for thanks.
    ingested = dripper("ingest", str(reply_to_first_mail("ada@lovelace.example", folder)), "--json", "--at", at(3))
    assert json.loads(ingested.stdout)["matched_by"] == "in_reply_to"
    dripper("event", "grace@hopper.example", "stage", "--stage", "lost_to_competitor", "--at", at(4))
    dripper("tick", "--at", at(15))  # reminder-1 to Dan, Eve and Fay
    more.write_text(MORE.format(fay_stage="lost_to_competitor"))
    dripper("leads", "import", str(more), "--at", at(16))  # Fay moves by re-import
    dripper("event", "eve@lead.example", "unsubscribed", "--at", at(20))  # 5 days after her reminder-1
    dripper("tick", "--at", at(29))  # letter-1: Dan has no postal address, skipped; news-1 planned
    # Dan converts 35 days after his last touch (reminder-1): outside the 30-day window.
    dripper("event", "dan@lead.example", "converted", "--at", at(50))
    dripper("leads", "add", "gil@lead.example", "--stage", "negotiation", "--at", at(45))  # no track, no touch
    dripper("event", "gil@lead.example", "replied", "--at", at(50))


ZERO_OUTCOMES = {"replies": 0, "conversions": 0, "unsubscribes": 0, "bounces": 0, "complaints": 0}


def rates(sent: int, **counts: int) -> dict[str, float | None]:
    names = {
        "replies": "reply",
        "conversions": "conversion",
        "unsubscribes": "unsubscribe",
        "bounces": "bounce",
        "complaints": "complaint",
    }
    return {rate: (round(counts.get(figure, 0) / sent, 4) if sent else None) for figure, rate in names.items()}


# What came of the `thanks` step in scenario(): the same in every format of the report.
THANKS_COUNTS = {"sent": "7", "replies": "1", "conversions": "1", "bounces": "1"}


def has_figures(row: dict[str, str], expected: dict[str, str]) -> None:
    """The row shows these figures (it may show more)."""
    assert {k: row[k] for k in expected} == expected


def test_report_counts_what_came_of_each_step(dripper: Dripper, tmp_path: Path) -> None:
    scenario(dripper, tmp_path)
    data = dripper.json("report", "--json")
    assert data["attribution_window"] == "30d"
    report = data["campaigns"][CAMPAIGN]
    steps = report["steps"]
    figures = (
        "enrolled",
        "sent",
        "suppressed",
        "skipped",
        "replies",
        "conversions",
        "unsubscribes",
        "bounces",
        "complaints",
    )

    def pick(step: str) -> dict[str, Any]:
        return {key: steps[step][key] for key in figures}

    # thanks went to all seven; Zoe's conversion, Ivy's bounce and Ada's reply count for it
    assert pick("thanks") == {
        "enrolled": 7,
        "sent": 7,
        "suppressed": 0,
        "skipped": 0,
        **ZERO_OUTCOMES,
        "replies": 1,
        "conversions": 1,
        "bounces": 1,
    }
    assert steps["thanks"]["rates"] == rates(7, replies=1, conversions=1, bounces=1)
    # reminder-1: sent to Dan, Eve, Fay; Ada's (replied), Ivy's (bounced) and Zoe's (converted,
    # before she moved) suppressed: their tracks reached it; Grace had left (stage_changed)
    assert pick("reminder-1") == {
        "enrolled": 6,
        "sent": 3,
        "suppressed": 3,
        "skipped": 1,
        **ZERO_OUTCOMES,
        "unsubscribes": 1,
    }
    assert steps["reminder-1"]["reasons"] == {"replied": 1, "bounced": 1, "converted": 1, "stage_changed": 1}
    assert (
        steps["reminder-1"]["rates"]
        == rates(3, unsubscribes=1)
        == {"reply": 0.0, "conversion": 0.0, "unsubscribe": 0.3333, "bounce": 0.0, "complaint": 0.0}
    )
    # letter-1: Dan's skipped (no postal address), Eve's suppressed (she unsubscribed), Fay's
    # skipped when she moved; Ada's and Ivy's counted as suppressed to come, not enrolled
    assert pick("letter-1") == {"enrolled": 2, "sent": 0, "suppressed": 3, "skipped": 2, **ZERO_OUTCOMES}
    assert steps["letter-1"]["reasons"] == {
        "no_postal_address": 1,
        "stage_changed": 1,
        "unsubscribed": 1,
        "replied": 1,
        "bounced": 1,
    }
    assert steps["letter-1"]["rates"] == rates(0)
    assert pick("news-1")["enrolled"] == 1 and steps["news-1"]["reasons"]["converted"] == 1  # Dan's, planned then
    assert pick("welcome-customer") == {"enrolled": 1, "sent": 1, "suppressed": 0, "skipped": 0, **ZERO_OUTCOMES}
    assert pick("lost-1")["enrolled"] == 2 and steps["lost-1"]["planned"] == 2  # Grace and Fay
    assert {
        step: row["enrolled"]
        for step, row in steps.items()
        if step not in ("thanks", "reminder-1", "letter-1", "news-1", "welcome-customer", "lost-1")
    } == {"offer-1": 0, "monthly-4": 0, "monthly-6": 0}

    assert report["enrolled"] == 7  # Gil never entered a track
    assert report["unattributed"] == {**ZERO_OUTCOMES, "replies": 1, "conversions": 1}  # Gil's reply, Dan's conversion
    totals = report["totals"]
    assert totals["sent"] == 11
    assert {f: totals[f] for f in ZERO_OUTCOMES} == {
        **ZERO_OUTCOMES,
        "replies": 1,
        "conversions": 1,
        "unsubscribes": 1,
        "bounces": 1,
    }
    assert totals["rates"] == rates(11, replies=1, conversions=1, unsubscribes=1, bounces=1)
    assert report["movements"] == [
        {"from": "supplier_research", "to": "lost_to_competitor", "count": 2},  # Grace by event, Fay by import
        {"from": "supplier_research", "to": "customer", "count": 1},
    ]
    # Zoe: 1 day from thanks to her conversion; Dan: 49 days (his counts in his own campaign)
    assert report["time_to_conversion"] == {"count": 2, "median_days": 25.0, "p90_days": 44.2}
    assert report["funnel"] == {"supplier_research": 4, "negotiation": 1, "customer": 1, "lost_to_competitor": 2}

    # The stage changes are recorded with where from and where to, by the CLI and by the import.
    grace = dripper.json("plan", "grace@hopper.example", "--json")["events"]
    fay = dripper.json("plan", "fay@lead.example", "--json")["events"]
    zoe = dripper.json("plan", "zoe@mueller.example", "--json")["events"]
    assert [(e["source"], e["detail"]) for e in grace if e["kind"] == "stage"] == [
        (
            "cli",
            {
                "stage": "lost_to_competitor",
                "from": "supplier_research",
                "to": "lost_to_competitor",
                "campaign": CAMPAIGN,
            },
        )
    ]
    assert [(e["source"], e["detail"]) for e in fay if e["kind"] == "stage"] == [
        (
            "import",
            {
                "stage": "lost_to_competitor",
                "from": "supplier_research",
                "to": "lost_to_competitor",
                "campaign": CAMPAIGN,
            },
        )
    ]
    assert [(e["kind"], e["detail"].get("from"), e["detail"].get("to")) for e in zoe] == [
        ("converted", None, None),
        ("stage", "supplier_research", "customer"),
    ]

    # The same figures as CSV, one row per step.
    rows = list(csv.DictReader(io.StringIO(dripper("report", "--csv").stdout)))
    assert [r["step"] for r in rows] == list(steps)
    by_step = {r["step"]: r for r in rows}
    has_figures(
        by_step["thanks"],
        {
            "campaign": CAMPAIGN,
            "enrolled": "7",
            **THANKS_COUNTS,
            "reply_rate": "0.1429",
            "conversion_rate": "0.1429",
            "unsubscribe_rate": "0.0",
        },
    )
    assert (by_step["reminder-1"]["unsubscribes"], by_step["reminder-1"]["unsubscribe_rate"]) == ("1", "0.3333")
    assert by_step["reminder-1"]["reasons"] == "bounced=1; converted=1; replied=1; stage_changed=1"
    assert by_step["letter-1"]["conversion_rate"] == "" and by_step["letter-1"]["enrolled"] == "2"
    for row in rows:  # every figure of the JSON, in every row
        step = steps[row["step"]]
        for key in (
            "enrolled",
            "planned",
            "sending",
            "sent",
            "failed",
            "suppressed",
            "skipped",
            "total",
            *ZERO_OUTCOMES,
        ):
            assert int(row[key]) == step[key], (row["step"], key)

    # And as tables on a terminal 200 columns wide: nothing cut off.
    shown = dripper("report", COLUMNS="200").stdout
    assert "literature-follow-up — 7 lead(s) enrolled" in shown and "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= 200
    thanks = next(line for line in shown.splitlines() if "│ thanks " in line)
    assert "1 (14.3%)" in thanks
    assert "supplier_research │ lost_to_competitor │     2" in shown
    assert "│               2 │            25 │                   44.2 │" in shown


def test_the_attribution_window_is_set_in_campaigns_yaml(dripper: Dripper, project: Path, tmp_path: Path) -> None:
    scenario(dripper, tmp_path)
    yaml = project / "campaigns.yaml"
    yaml.write_text(yaml.read_text() + "reporting:\n  attribution_window: 5w\n")
    report = dripper.json("report", "--json")["campaigns"][CAMPAIGN]
    # Dan's conversion, 35 days after his reminder-1, now counts for it; Gil's reply still has no touch.
    assert report["steps"]["reminder-1"]["conversions"] == 1
    assert report["unattributed"] == {**ZERO_OUTCOMES, "replies": 1}
    yaml.write_text(yaml.read_text().replace("attribution_window: 5w", "attribution_window: 4d"))
    report = dripper.json("report", "--json")["campaigns"][CAMPAIGN]
    # Eve unsubscribed 5 days after her reminder-1: unattributed now; the inbound reply names its touch.
    assert report["steps"]["reminder-1"]["unsubscribes"] == 0
    assert report["unattributed"] == {**ZERO_OUTCOMES, "replies": 1, "conversions": 1, "unsubscribes": 1}
    assert report["steps"]["thanks"]["replies"] == 1


def test_check_validates_the_reporting_section(dripper: Dripper, project: Path) -> None:
    yaml = project / "campaigns.yaml"
    text = yaml.read_text()
    lines = len(text.splitlines())
    yaml.write_text(text + "reporting:\n  atribution_window: 30d\n")
    result = dripper("check", ok=1)
    assert (
        f"campaigns.yaml:{lines + 2}:3: unknown key 'atribution_window' (did you mean 'attribution_window'?)"
        in result.stderr
    )
    yaml.write_text(text + "reporting:\n  attribution_window: 30 days\n")
    result = dripper("check", ok=1)
    assert f"campaigns.yaml:{lines + 2}:23: attribution_window: bad duration '30 days'" in result.stderr


def test_time_to_conversion_percentiles(dripper: Dripper) -> None:
    """Median and 90th percentile as percentile_cont computes them (linear between ranks)."""
    spans = [1, 2, 3, 5, 8, 13, 21]
    for i, _ in enumerate(spans):
        dripper("leads", "add", f"lead{i}@lead.example", "--stage", "supplier_research", "--at", at(0))
    dripper("tick", "--at", at(1))  # thanks to each
    for i, span in enumerate(spans):
        dripper("event", f"lead{i}@lead.example", "converted", "--at", at(1 + span))
    dripper("leads", "add", "late@lead.example", "--stage", "supplier_research", "--at", at(40))
    dripper("event", "late@lead.example", "converted", "--at", at(41))  # converted before any touch was sent
    found = dripper.json("report", "--json")["campaigns"][CAMPAIGN]["time_to_conversion"]
    deciles = statistics.quantiles(spans, n=10, method="inclusive")
    assert found == {"count": 7, "median_days": statistics.median(spans), "p90_days": round(deciles[8], 2)}
    assert found["p90_days"] == 16.2


def test_csv_goes_to_a_file_and_stdout_takes_one_format(dripper: Dripper, tmp_path: Path) -> None:
    dripper("leads", "import", "leads.csv", "--at", at(0))
    dripper("tick", "--at", at(1))
    target = tmp_path / "report.csv"
    result = dripper("report", "--csv", str(target), "--json")
    assert json.loads(result.stdout)["campaigns"][CAMPAIGN]["steps"]["thanks"]["sent"] == 3
    rows = list(csv.reader(target.open(encoding="utf-8", newline="")))
    assert rows[0][:3] == ["campaign", "step", "enrolled"] and rows[1][:3] == [CAMPAIGN, "thanks", "3"]
    assert len(rows) == 1 + 9  # a header and the nine steps
    refused = dripper("report", "--csv", "--json", ok=1)
    assert "--json and --csv both write to stdout" in refused.stderr


class _Page(HTMLParser):
    """Collects what the checks below look at: tags, titles, table rows (by the table's
    class), references to anything outside the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.open: list[str] = []
        self.title = ""
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] = []  # the rows of the table being read
        self.rows: list[list[str]] = []  # of every table
        self.text: list[str] = []
        self.references: list[str] = []
        self.decl = ""

    def handle_decl(self, decl: str) -> None:
        self.decl = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.references += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "table":
            self.current = self.tables.setdefault(dict(attrs).get("class") or f"table{len(self.tables)}", [])
        if tag == "tr":
            self.rows.append([])
            self.current.append(self.rows[-1])
        if tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.references += [value or "" for name, value in attrs if name in ("src", "href")]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.open[-1:] == ["title"] and "svg" not in self.open:
            self.title += data
        if self.open and self.open[-1] in ("td", "th") and self.rows:
            self.rows[-1][-1] += data

    def table(self, css_class: str) -> dict[str, dict[str, str]]:
        """A table's rows by their first cell, each as {column: cell}."""
        head, *rows = self.tables[css_class]
        return {row[0]: dict(zip(head, row, strict=False)) for row in rows}


def test_html_report_is_stamped_with_the_injected_clock(dripper_sqlite: Dripper, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dripper.cli import main
    from dripper.clock import FrozenClock

    generated = datetime(2026, 7, 1, 12, 34, 56, tzinfo=UTC)  # not today: the page must not ask the system
    page_file = tmp_path / "report.html"
    env = {"DRIPPER_DATABASE_URL": dripper_sqlite.db_url, "DRIPPER_SECRET": "test-secret"}
    result = CliRunner().invoke(
        main, ["report", "--html", str(page_file)], env=env, obj=FrozenClock(generated), catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    stamp = generated.astimezone().isoformat(timespec="seconds")  # shown in the local zone, as before
    page = page_file.read_text(encoding="utf-8")
    assert f"Generated {stamp}." in page and f"dripper report — {stamp}" in page


def test_html_report_is_a_self_contained_page_with_charts(dripper: Dripper, tmp_path: Path) -> None:
    scenario(dripper, tmp_path)
    page_file = tmp_path / "report.html"
    dripper("report", "--html", str(page_file))
    text = page_file.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.decl.lower() == "doctype html" and page.title.startswith("dripper report")
    assert page.tags.count("svg") == 3  # sends per week, conversion by step, the funnel: one campaign
    assert "script" not in page.tags and "link" not in page.tags and page.references == []
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert page.open == []  # every element closed
    from tinyhtml5.parser import HTMLParser as Html5  # WeasyPrint's HTML5 parser (letters need it)

    strict = Html5()
    strict.parse(text)
    assert strict.errors == []  # no HTML5 parse error anywhere
    touches, outcomes = page.table("touches"), page.table("outcomes")
    has_figures(touches["thanks"], {"enrolled": "7", "sent": "7", "suppressed": "0", "total": "7"})
    assert (touches["reminder-1"]["enrolled"], touches["reminder-1"]["skipped"]) == ("6", "1")
    assert touches["reminder-1"]["reasons"] == "bounced 1, converted 1, replied 1, stage_changed 1"
    assert (touches["total"]["enrolled"], touches["total"]["sent"]) == ("7", "11")  # leads, not a sum of steps
    has_figures(
        outcomes["thanks"],
        {
            **THANKS_COUNTS,
            "reply rate": "14.3%",
            "conversion rate": "14.3%",
            "unsubscribe rate": "0.0%",
        },
    )
    assert (outcomes["reminder-1"]["unsubscribes"], outcomes["reminder-1"]["unsubscribe rate"]) == ("1", "33.3%")
    assert outcomes["letter-1"]["conversion rate"] == "–"
    assert (outcomes["total"]["conversions"], outcomes["total"]["conversion rate"]) == ("1", "9.1%")
    assert (outcomes["unattributed"]["replies"], outcomes["unattributed"]["conversions"]) == ("1", "1")
    assert ["supplier_research", "lost_to_competitor", "2"] in page.rows  # the movements
    assert ["supplier_research", "customer", "1"] in page.rows
    assert ["negotiation", "1"] in page.rows  # leads by stage now
    assert ["2", "25", "44.2"] in page.rows  # time to conversion
    words = " ".join(page.text)
    # the charts carry their figures: the weeks' sends by channel, the rates, the stages
    assert "week of 05 Jan 2026 · email: 8" in words and "week of 19 Jan 2026 · email: 3" in words
    assert "thanks: 14.3%" in words and "negotiation: 1" in words and "lost_to_competitor: 2" in words
    assert "@media print" in text


def test_html_escapes_what_it_shows() -> None:
    from dripper.reports.formats import html_page

    row = {
        "planned": 0,
        "sending": 0,
        "sent": 1,
        "failed": 0,
        "suppressed": 0,
        "skipped": 0,
        "total": 1,
        "reasons": {"smtp_error: 550 <bad>": 1},
        "enrolled": 1,
        **ZERO_OUTCOMES,
        "rates": rates(1),
    }
    data = {
        "attribution_window": "30d",
        "campaigns": {
            "<script>alert(1)</script>": {
                "steps": {"a&b": row},
                "totals": {**row, "rates": rates(1)},
                "enrolled": 1,
                "unattributed": ZERO_OUTCOMES,
                "movements": [{"from": None, "to": "x<y", "count": 1}],
                "time_to_conversion": {"count": 0, "median_days": None, "p90_days": None},
                "funnel": {"s'\"": 1},
            }
        },
    }
    text = html_page(data, datetime(2026, 1, 5, tzinfo=UTC))
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a&amp;b" in text and "smtp_error: 550 &lt;bad&gt; 1" in text and "x&lt;y" in text
    page = _Page()
    page.feed(text)
    assert "script" not in page.tags and page.tags.count("svg") == 3


@pytest.mark.parametrize("kind", ["converted", "replied"])
def test_an_event_without_any_touch_is_unattributed(dripper: Dripper, kind: str) -> None:
    dripper("leads", "add", "new@lead.example", "--stage", "supplier_research", "--at", at(0))
    dripper("event", "new@lead.example", kind, "--at", at(0.01))  # before its first touch went out
    report = dripper.json("report", "--json")["campaigns"][CAMPAIGN]
    figure = {"converted": "conversions", "replied": "replies"}[kind]
    assert report["unattributed"][figure] == 1 and report["totals"][figure] == 0
    assert report["enrolled"] == 1 and report["steps"]["thanks"]["enrolled"] == 1
    assert report["time_to_conversion"]["count"] == 0


def test_a_long_campaign_prints_its_conversion_chart_in_page_sized_parts() -> None:
    import re

    from dripper.reports.formats import BARS_A_CHART, html_page

    def row(step: int) -> dict[str, Any]:
        return {
            "planned": 0,
            "sending": 0,
            "sent": 10,
            "failed": 0,
            "suppressed": 0,
            "skipped": 0,
            "total": 10,
            "reasons": {},
            "enrolled": 10,
            **ZERO_OUTCOMES,
            "conversions": step % 3,
            "rates": rates(10, conversions=step % 3),
        }

    steps = {f"step-{i}": row(i) for i in range(60)}
    data = {
        "attribution_window": "30d",
        "campaigns": {
            "long": {
                "steps": steps,
                "totals": {**row(0), "rates": rates(600)},
                "enrolled": 10,
                "unattributed": ZERO_OUTCOMES,
                "movements": [],
                "time_to_conversion": {"count": 0, "median_days": None, "p90_days": None},
                "funnel": {"supplier_research": 10},
            }
        },
    }
    text = html_page(data, datetime(2026, 1, 5, tzinfo=UTC))
    bars = re.findall(r"<svg class='chart bars'.*?</svg>", text)
    assert len(bars) == 3 and BARS_A_CHART == 25  # 25 + 25 + 10 steps
    assert [len(re.findall(r"<rect ", svg)) for svg in bars] == [25, 25, 10]
    assert "(steps 26–50 of 60)" in text
    # one scale across the parts: bars of the same rate are as long in each
    widths = re.findall(r"width='([\d.]+)' height='18' fill='[^']+'><title>step-\d+: ([\d.]+)%</title>", text)
    assert len(widths) == 60
    assert {rate: {w for w, r in widths if r == rate} for _, rate in widths} == {
        "0": {"0.0"},
        "10": {"160.0"},
        "20": {"320.0"},
    }
