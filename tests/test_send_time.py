"""Issue 17, at send time: send windows checked again when a touch goes out, what the
catch-up rule does to calls, call tasks of leads that stopped, and what the tick counts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

IMPORTED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday: 13:00 in Madrid, inside 09:00-17:00
HEADER = "email,first_name,last_name,company,stage,timezone,campaign,country"


def iso(t: datetime) -> str:
    return t.isoformat()


def plan(dripper, email: str) -> dict[str, dict]:
    return {t["step"]: t for t in dripper.json("plan", email, "--json")["touches"]}


def test_a_late_tick_defers_to_the_next_opening_of_the_leads_window(dripper, project: Path) -> None:
    """Imported at noon, but the first tick runs at 23:00 UTC, midnight in Madrid: the
    e-mail waits for 09:00 Madrid time, and goes out then."""
    (project / "madrid.csv").write_text(
        f"{HEADER}\nlola@madrid.example,Lola,Flores,Co,supplier_research,Europe/Madrid,,ES\n", encoding="utf-8"
    )
    dripper("leads", "import", "madrid.csv", "--at", iso(IMPORTED))
    late = dripper.json("tick", "--at", "2026-03-02T23:00:00Z", "--json")
    assert (late["sent"], late["deferred"]) == (0, 1)
    assert not list(Path("outbox").glob("*.eml"))
    thanks = plan(dripper, "lola@madrid.example")["thanks"]
    assert thanks["state"] == "planned"
    assert thanks["reason"] == "outside_window: opens 2026-03-03 09:00 Europe/Madrid"
    assert thanks["due"] == "2026-03-03T08:00:00+00:00"  # 09:00 in Madrid (CET)
    assert thanks["attempts"] == 0  # a deferral is no attempt
    assert dripper.json("tick", "--at", "2026-03-03T07:59:00Z", "--json")["sent"] == 0
    assert dripper.json("tick", "--at", "2026-03-03T08:00:00Z", "--json")["sent"] == 1
    [sent] = Path("outbox").glob("*.eml")
    message = message_from_bytes(sent.read_bytes(), policy=policy.default)
    assert message["Date"].datetime == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert plan(dripper, "lola@madrid.example")["thanks"]["reason"] is None


def test_the_deferral_skips_weekends_and_the_leads_holidays(dripper_sqlite, project: Path) -> None:
    """With `holidays: true` the next opening is the lead's next working day: Friday
    1 January 2027 is New Year's Day in Spain, then comes the weekend."""
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(
        campaigns.read_text().replace(
            'send_window: {days: mon-fri, hours: "09:00-17:00"}',
            'send_window: {days: mon-fri, hours: "09:00-17:00", holidays: true}',
        )
    )
    (project / "madrid.csv").write_text(
        f"{HEADER}\nlola@madrid.example,Lola,Flores,Co,supplier_research,Europe/Madrid,,ES\n", encoding="utf-8"
    )
    dripper_sqlite("leads", "import", "madrid.csv", "--at", "2026-12-31T12:00:00Z")  # Thursday, 13:00 in Madrid
    late = dripper_sqlite.json("tick", "--at", "2026-12-31T22:30:00Z", "--json")
    assert late["deferred"] == 1
    thanks = plan(dripper_sqlite, "lola@madrid.example")["thanks"]
    assert thanks["reason"] == "outside_window: opens 2027-01-04 09:00 Europe/Madrid"
    assert dripper_sqlite.json("tick", "--at", "2027-01-01T10:00:00Z", "--json")["sent"] == 0
    assert dripper_sqlite.json("tick", "--at", "2027-01-04T08:00:00Z", "--json")["sent"] == 1


# --- calls ----------------------------------------------------------------------------------

MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 09:00 in Chicago
CALL_TRACK = """campaigns:
  literature-follow-up:
    stages:
      supplier_research:
        - {id: thanks, after: 0d, channel: email, subject: "Thanks", template: mail/thanks.html}
        - {id: call-1, after: 1w, channel: call, template: calls/call.txt}
        - {id: reminder-1, after: 2w, channel: email, subject: "Reminder", template: mail/reminder.html}
        - {id: news-1, after: 3w, channel: email, subject: "News", template: mail/news.html}
"""


def call_project(project: Path) -> None:
    from tests.support.campaigns import ACME_SENDER

    window = '  send_window: {days: mon-fri, hours: "09:00-17:00"}\n'
    (project / "campaigns.yaml").write_text(ACME_SENDER + window + CALL_TRACK, encoding="utf-8")
    (project / "templates" / "calls").mkdir()
    (project / "templates" / "calls" / "call.txt").write_text("Ask {{ lead.first_name }} about the pack.\n")
    (project / "one.csv").write_text(
        f"{HEADER}\nada@lovelace.example,Ada,Lovelace,Engines,supplier_research,America/Chicago,,US\n",
        encoding="utf-8",
    )


def test_catching_up_never_passes_over_a_call(dripper, project: Path) -> None:
    """Nobody ticked for three weeks: the later e-mails catch up as before (only the latest
    due goes out), but the call still becomes a task, listed as overdue."""
    call_project(project)
    dripper("leads", "import", "one.csv", "--at", iso(MONDAY))
    assert dripper.json("tick", "--at", iso(MONDAY), "--json")["sent"] == 1
    back = MONDAY + timedelta(weeks=3, days=1)  # Tuesday 24 March
    counts = dripper.json("tick", "--at", iso(back), "--json")
    assert (counts["sent"], counts["skipped"]) == (2, 1)
    ada = plan(dripper, "ada@lovelace.example")
    assert (ada["call-1"]["state"], ada["call-1"]["reason"]) == ("sent", "call_task")
    assert (ada["reminder-1"]["state"], ada["reminder-1"]["reason"]) == ("skipped", "missed")
    assert ada["news-1"]["state"] == "sent"
    [task] = dripper.json("calls", "--date", "2026-03-24", "--json")
    assert (task["day"], task["due"], task["overdue"], task["outcome"]) == ("2026-03-24", "2026-03-09", "yes", "")
    assert "overdue since 2026-03-09" in dripper("calls", "--date", "2026-03-24").stdout
    assert "overdue" in (project / "calls" / "2026-03-24.csv").read_text(encoding="utf-8").splitlines()[0]


def test_a_held_call_becomes_a_task_when_the_lead_is_back(dripper_sqlite, project: Path) -> None:
    """An out-of-office held the call past the next e-mail's due time: the call is made
    (not skipped as `missed`), on the lead's return."""
    from dripper.campaign.model import load
    from dripper.planning.planner import Planner, hold_until
    from dripper.store import open_store
    from dripper.store.queries import leadrows

    call_project(project)
    dripper_sqlite("leads", "import", "one.csv", "--at", iso(MONDAY))
    dripper_sqlite("tick", "--at", iso(MONDAY))
    store = open_store(dripper_sqlite.db_url)
    with store.begin() as conn:
        ada = leadrows.by_email(conn, "ada@lovelace.example")
        assert ada is not None
        assert hold_until(conn, Planner(load(Path("campaigns.yaml"))), ada, datetime(2026, 3, 18).date(), MONDAY) == 1
    store.dispose()
    back = datetime(2026, 3, 19, 15, 0, tzinfo=UTC)  # Thursday, the day after her return
    counts = dripper_sqlite.json("tick", "--at", iso(back), "--json")
    ada_plan = plan(dripper_sqlite, "ada@lovelace.example")
    assert (ada_plan["call-1"]["state"], ada_plan["call-1"]["reason"]) == ("sent", "call_task")
    assert ada_plan["reminder-1"]["state"] == "sent"  # due on the 16th: not superseded yet (news-1 is not due)
    assert counts["sent"] == 2 and counts["skipped"] == 0
    [task] = dripper_sqlite.json("calls", "--date", "2026-03-19", "--json")
    assert (task["due"], task["overdue"]) == ("2026-03-19", "")  # held to her return: not late


def test_a_stop_cancels_the_leads_open_call_tasks(dripper, project: Path) -> None:
    call_project(project)
    dripper("leads", "import", "one.csv", "--at", iso(MONDAY))
    dripper("tick", "--at", iso(MONDAY))
    dripper("tick", "--at", iso(MONDAY + timedelta(weeks=1)))
    assert [t["outcome"] for t in dripper.json("calls", "--date", "2026-03-09", "--open", "--json")] == [""]
    dripper("event", "ada@lovelace.example", "converted", "--at", iso(MONDAY + timedelta(weeks=1, hours=2)))
    assert dripper.json("calls", "--date", "2026-03-09", "--open", "--json") == []
    [task] = dripper.json("calls", "--date", "all", "--json")
    assert (task["outcome"], task["note"], task["overdue"]) == ("cancelled", "converted", "")
    table = dripper("calls", "--date", "all").stdout
    assert "cancelled" in table and "converted" in table
    call = plan(dripper, "ada@lovelace.example")["call-1"]["call"]
    assert call["outcome"] == "cancelled"


def test_stopping_one_campaign_cancels_its_call_tasks_only(dripper_sqlite, project: Path) -> None:
    """`not_interested` on another call (or "stop this campaign") closes that campaign's
    open tasks; a recorded outcome is never overwritten."""
    from dripper.leads.events import opt_out
    from dripper.store import open_store
    from dripper.store.queries import callrows, leadrows

    call_project(project)
    dripper_sqlite("leads", "import", "one.csv", "--at", iso(MONDAY))
    dripper_sqlite("tick", "--at", iso(MONDAY))
    dripper_sqlite("tick", "--at", iso(MONDAY + timedelta(weeks=1)))
    store = open_store(dripper_sqlite.db_url)
    with store.begin() as conn:
        ada = leadrows.by_email(conn, "ada@lovelace.example")
        assert ada is not None
        assert callrows.cancel_open(conn, ada.id, "converted", MONDAY, ["another-campaign"]) == 0
        opt_out(conn, ada, "literature-follow-up", MONDAY + timedelta(weeks=1, hours=1))
        assert callrows.cancel_open(conn, ada.id, "converted", MONDAY, None) == 0  # none open any more
        [task] = callrows.listing(conn, lead_id=ada.id)
    store.dispose()
    assert (task["outcome"], task["note"]) == ("cancelled", "opted_out")


# --- what the terminal shows ----------------------------------------------------------------


def test_plan_in_the_terminal_lists_the_leads_events(dripper_sqlite) -> None:
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(MONDAY))
    dripper_sqlite("event", "ada@lovelace.example", "stage", "--stage", "lost_to_competitor", "--at", iso(MONDAY))
    dripper_sqlite("event", "ada@lovelace.example", "replied", "--at", iso(MONDAY + timedelta(days=1)))
    shown = dripper_sqlite("plan", "ada@lovelace.example").stdout
    assert "events" in shown
    lines = [line for line in shown.splitlines() if "2026-03-0" in line and ("stage" in line or "replied" in line)]
    assert any("2026-03-02 15:00" in line and "stage" in line for line in lines), shown
    assert any("2026-03-03 15:00" in line and "replied" in line for line in lines), shown
    assert "to: lost_to_competitor" in shown and "from: supplier_research" in shown
    quiet = dripper_sqlite("plan", "zoe@mueller.example").stdout  # no events: no empty table
    assert "events" not in quiet


def test_plan_shows_event_details_as_text_not_markup(dripper_sqlite) -> None:
    """An event's detail comes from outside (a caller's note, an inbound message): `[red]`
    in it is shown as written."""
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(MONDAY))
    dripper_sqlite("event", "ada@lovelace.example", "called", "--outcome", "reached", "--note", "[red]call back[/red]")
    assert "[red]call back[/red]" in dripper_sqlite("plan", "ada@lovelace.example").stdout


def test_calls_for_every_day_have_a_day_column(dripper_sqlite, project: Path) -> None:
    call_project(project)
    (project / "two.csv").write_text(
        f"{HEADER}\nbea@dubois.example,Bea,Dubois,Co,supplier_research,America/Chicago,,US\n", encoding="utf-8"
    )
    dripper_sqlite("leads", "import", "one.csv", "--at", iso(MONDAY))
    dripper_sqlite("leads", "import", "two.csv", "--at", iso(MONDAY + timedelta(days=1)))
    for n in (0, 1, 7, 8):
        dripper_sqlite("tick", "--at", iso(MONDAY + timedelta(days=n)))
    everything = dripper_sqlite("calls", "--date", "all").stdout
    header = next(line for line in everything.splitlines() if "owner" in line)
    assert header.split("┃")[1].strip() == "day"
    assert "2026-03-09" in everything and "2026-03-10" in everything
    one_day = dripper_sqlite("calls", "--date", "2026-03-09").stdout
    assert "Calls on 2026-03-09" in one_day and "2026-03-10" not in one_day
    assert next(line for line in one_day.splitlines() if "owner" in line).split("┃")[1].strip() == "owner"


def test_report_html_says_where_it_wrote_and_prints_no_table(dripper_sqlite, tmp_path: Path) -> None:
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(MONDAY))
    dripper_sqlite("tick", "--at", iso(MONDAY))
    page = tmp_path / "report.html"
    result = dripper_sqlite("report", "--html", str(page))
    assert page.read_text(encoding="utf-8").lower().startswith("<!doctype html>")
    assert result.stdout.strip() == f"report written to {page}"
    both = dripper_sqlite("report", "--html", str(page), "--json")  # stdout stays the JSON's
    assert both.stdout.lstrip().startswith("{") and f"report written to {page}" in both.stderr
    assert "thanks" in dripper_sqlite("report").stdout  # no file: the tables


# --- library noise --------------------------------------------------------------------------

LETTER_TRACK = """campaigns:
  literature-follow-up:
    stages:
      supplier_research:
        - {id: letter-1, after: 0d, channel: letter, kind: follow_up, template: letters/follow_up.html}
"""


@pytest.fixture
def quiet_afterwards() -> Iterator[None]:
    """The CLI configures the library loggers of this process: put them back as they were."""
    from dripper import logs

    yield
    logs.quiet_libraries(debug=True)


def test_letters_print_without_font_subsetting_noise(
    dripper_sqlite, project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, quiet_afterwards
) -> None:
    """Without HarfBuzz-Subset, WeasyPrint says so for every font of every letter: not
    shown by default, shown with -vv."""
    import weasyprint.pdf.fonts

    from tests.support.campaigns import ACME_SENDER

    monkeypatch.setattr(weasyprint.pdf.fonts, "harfbuzz_subset", None)  # as on a machine without it
    (project / "campaigns.yaml").write_text(ACME_SENDER + LETTER_TRACK, encoding="utf-8")
    dripper_sqlite("leads", "import", "leads.csv", "--at", iso(MONDAY))
    caplog.set_level(logging.DEBUG)
    assert dripper_sqlite.json("tick", "--at", iso(MONDAY), "--json")["sent"] == 2  # Grace has no address
    assert len(list(Path("letters").glob("*.pdf"))) == 2
    shown = [r for r in caplog.records if r.name.startswith(("weasyprint", "fontTools"))]
    assert shown == [], [r.getMessage() for r in shown[:3]]
    caplog.clear()
    (project / "bea.csv").write_text(
        "email,first_name,last_name,company,stage,timezone,campaign,address_line1,city,postal_code,country\n"
        "bea@dubois.example,Bea,Dubois,Co,supplier_research,,,1 Rue de la Paix,Paris,75002,FR\n",
        encoding="utf-8",
    )
    dripper_sqlite("leads", "import", "bea.csv", "--at", iso(MONDAY))
    assert dripper_sqlite.json("-vv", "tick", "--at", iso(MONDAY), "--json")["sent"] == 1
    assert any("HarfBuzz-Subset" in r.getMessage() for r in caplog.records if r.name == "weasyprint")


# --- what the tick counts -------------------------------------------------------------------


def test_the_tick_counts_what_a_campaign_edit_skipped(dripper, project: Path) -> None:
    """An edit removes the step three leads wait for (`step_removed`) and inserts one they
    are long past (`missed`): the tick that applies it counts the six, in --json and in
    its summary table."""
    dripper("leads", "import", "leads.csv", "--at", iso(MONDAY))
    dripper("tick", "--at", iso(MONDAY))
    campaigns = project / "campaigns.yaml"
    text = campaigns.read_text()
    reminder = text[text.index("        - id: reminder-1\n") : text.index("        - id: letter-1\n")]
    early = reminder.replace("id: reminder-1", "id: early").replace("after: 2w", "after: 1d")
    campaigns.write_text(text.replace(reminder, early))
    counts = dripper.json("tick", "--at", iso(MONDAY + timedelta(days=9)), "--json")
    assert (counts["skipped"], counts["sent"]) == (6, 0)
    ada = plan(dripper, "ada@lovelace.example")
    assert (ada["reminder-1"]["state"], ada["reminder-1"]["reason"]) == ("skipped", "step_removed")
    assert (ada["early"]["state"], ada["early"]["reason"]) == ("skipped", "missed")
    assert ada["letter-1"]["state"] == "planned"
    # The next edit removes letter-1, which they now wait for: the summary table says 3.
    edited = campaigns.read_text()
    letter = edited[edited.index("        - id: letter-1\n") : edited.index("        - id: news-1\n")]
    campaigns.write_text(edited.replace(letter, ""))
    summary = dripper("tick", "--at", iso(MONDAY + timedelta(days=9, hours=1))).stdout
    lines = summary.splitlines()
    header = next(line for line in lines if "┃" in line)  # the first table: the tick's counts
    values = lines[lines.index(header) + 2]
    cells = {k.strip(): v.strip() for k, v in zip(header.split("┃")[1:-1], values.split("│")[1:-1], strict=True)}
    assert (cells["skipped"], cells["sent"]) == ("3", "0"), summary
    assert "re-planned literature-follow-up" in summary
