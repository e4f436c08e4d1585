"""Lead management and privacy (issue 20): `dripper leads list|show|export|pause|resume|stop|forget`,
`dripper suppress import|list|remove`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Dripper
from sqlalchemy import select

from dripper.store import open_store
from dripper.store.tables import events, leads, suppressions, touches

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SENT_AT = T0 + timedelta(days=1, hours=8)  # a Tuesday, inside the send window
LATER = T0 + timedelta(days=3)


def _imported(dripper: Dripper) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", SENT_AT.isoformat())


def _states(dripper: Dripper, email: str) -> list[tuple[str, str | None]]:
    return [(t["state"], t["reason"]) for t in dripper.json("plan", email, "--json")["touches"]]


def test_list_and_show_tell_each_leads_status(dripper: Dripper) -> None:
    _imported(dripper)
    dripper("leads", "stop", "grace@hopper.example", "--at", LATER.isoformat())
    listed = dripper.json("leads", "list", "--json", "--at", LATER.isoformat())
    status = {lead["email"]: lead["status"] for lead in listed}
    assert status["grace@hopper.example"] == "stopped"
    assert status["ada@lovelace.example"] == "active"
    only = dripper.json("leads", "list", "--json", "--status", "stopped", "--at", LATER.isoformat())
    assert [lead["email"] for lead in only] == ["grace@hopper.example"]
    shown = dripper.json("leads", "show", "ada@lovelace.example", "--json")
    assert shown["lead"]["first_name"] == "Ada" and shown["touches"] and shown["events"] == []
    assert dripper("leads", "show", "nobody@nowhere.example", ok=1).stderr.startswith("dripper: no lead")
    for action in (("pause",), ("resume",), ("stop",), ("forget", "--yes")):
        assert dripper("leads", *action, "nobody@nowhere.example", ok=1).stderr.startswith("dripper: no lead")


def test_stop_suppresses_every_pending_touch_and_resume_plans_them_again(dripper: Dripper) -> None:
    _imported(dripper)
    dripper("leads", "stop", "ada@lovelace.example", "--at", LATER.isoformat())
    states = _states(dripper, "ada@lovelace.example")
    assert ("suppressed", "stopped") in states and not any(s == "planned" for s, _ in states)
    # a later tick sends it nothing, even a step planned after the stop
    sent = [s for s, _ in _states(dripper, "ada@lovelace.example")].count("sent")
    dripper("event", "ada@lovelace.example", "stage", "--stage", "supplier_preference", "--at", LATER.isoformat())
    # a track planned while stopped (a stage change and back) is suppressed at send time
    dripper("event", "ada@lovelace.example", "stage", "--stage", "supplier_research", "--at", LATER.isoformat())
    dripper("tick", "--at", (T0 + timedelta(weeks=8)).isoformat())
    assert [s for s, _ in _states(dripper, "ada@lovelace.example")].count("sent") == sent
    dripper("leads", "resume", "ada@lovelace.example", "--at", LATER.isoformat())
    assert any(s == "planned" for s, _ in _states(dripper, "ada@lovelace.example"))
    assert ("suppressed", "stopped") not in _states(dripper, "ada@lovelace.example")


def test_pause_then_resume_brings_the_held_touches_back(dripper: Dripper) -> None:
    _imported(dripper)
    paused = dripper.json(
        "leads", "pause", "ada@lovelace.example", "--months", "2", "--json", "--at", LATER.isoformat()
    )
    assert (paused["action"], paused["until"]) == ("paused", "2026-03-08T08:00:00+00:00")
    listed = dripper.json("leads", "list", "--json", "--at", LATER.isoformat())
    assert {lead["email"]: lead["status"] for lead in listed}["ada@lovelace.example"] == "paused"
    resumed = dripper.json("leads", "resume", "ada@lovelace.example", "--json", "--at", LATER.isoformat())
    assert resumed["action"] == "resumed" and resumed["touches"] >= 1
    listed = dripper.json("leads", "list", "--json", "--at", LATER.isoformat())
    assert {lead["email"]: lead["status"] for lead in listed}["ada@lovelace.example"] == "active"
    due = [
        t["due"] for t in dripper.json("plan", "ada@lovelace.example", "--json")["touches"] if t["state"] == "planned"
    ]
    assert due and min(datetime.fromisoformat(d) for d in due) <= LATER + timedelta(weeks=3)


def test_export_holds_everything_about_the_lead(dripper: Dripper, tmp_path: Path) -> None:
    _imported(dripper)
    target = tmp_path / "ada.json"
    dripper("leads", "export", "ada@lovelace.example", "-o", str(target), "--at", LATER.isoformat())
    document = json.loads(target.read_text())
    assert document["lead"]["email"] == "ada@lovelace.example"
    assert document["lead"]["attrs"] == {"product": "valves"}
    assert document["consent"] == {"source": None, "at": None}
    assert {t["step_id"] for t in document["touches"]} and document["touches"][0]["state"] == "sent"
    assert set(document) >= {"touches", "events", "clicks", "opens", "calls", "letters"}


def test_forget_erases_keeps_the_counts_and_refuses_a_later_import(dripper: Dripper, project: Path) -> None:
    _imported(dripper)
    dripper("event", "ada@lovelace.example", "replied", "--at", LATER.isoformat())
    dripper("leads", "stop", "ada@lovelace.example", "--at", LATER.isoformat())
    lead_id = _with_old_text(dripper)  # an inbound message's sender and subject, an SMTP answer
    before = dripper.json("report", "--json")
    dripper("leads", "forget", "ada@lovelace.example", "--yes", "--at", LATER.isoformat())
    # the same figures; only a reason's text that quoted the address now quotes the placeholder
    expected = json.loads(json.dumps(before).replace("ada@lovelace.example", f"forgotten-{lead_id}@invalid"))
    assert dripper.json("report", "--json") == expected
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            row = conn.execute(select(leads).where(leads.c.email.like("forgotten-%"))).one()
            assert row.email == f"forgotten-{row.id}@invalid"
            assert (row.first_name, row.last_name, row.company, row.city, row.attrs) == ("", "", "", "", {})
            assert (row.language, row.owner, row.consent_source, row.consent_at) == ("", "", "", None)
            text = json.dumps([dict(r._mapping) for r in conn.execute(select(suppressions))], default=str)
            assert "ada" not in text and "lovelace" not in text
            kinds = [e.kind for e in conn.execute(select(events).where(events.c.lead_id == row.id))]
            assert kinds[-1] == "forgotten"
            assert conn.execute(select(touches).where(touches.c.lead_id == row.id)).all()
    finally:
        store.dispose()
    assert dripper("leads", "show", "ada@lovelace.example", ok=1).exit_code == 1
    exported = dripper("leads", "export", f"forgotten-{lead_id}@invalid").stdout.lower()
    assert not [word for word in ("ada", "lovelace", "valves", "springfield") if word in exported]
    assert '"status": "forgotten"' in exported
    result = dripper("leads", "import", "leads.csv", "--at", (LATER + timedelta(days=1)).isoformat(), ok=2)
    assert "leads.csv:2: suppressed (the address is on the do-not-contact list)" in result.stderr
    added = dripper("leads", "add", "ADA@lovelace.example", ok=1)
    assert "suppressed" in added.stderr


def test_suppress_import_refuses_addresses_and_whole_domains(dripper: Dripper, project: Path) -> None:
    (project / "dnc.txt").write_text("# do not contact\nGrace@Hopper.example\n@mueller.example\nnot an address@\n")
    result = dripper("suppress", "import", "dnc.txt", ok=2)
    assert "dnc.txt:4: invalid e-mail address" in result.stderr
    assert "2 entr(y/ies) added" in result.stdout
    imported = dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), ok=2)
    assert "leads.csv:3: suppressed (the domain mueller.example is on the do-not-contact list)" in imported.stderr
    assert "leads.csv:4: suppressed (the address is on the do-not-contact list)" in imported.stderr
    emails = [lead["email"] for lead in dripper.json("leads", "list", "--json")]
    assert emails == ["ada@lovelace.example"]
    listed = dripper.json("suppress", "list", "--json")
    assert {e["kind"] for e in listed} == {"address", "domain"}
    assert all(e["reason"] == "dnc.txt" for e in listed)
    assert "grace" not in json.dumps(listed)
    dripper("suppress", "remove", "grace@hopper.example", "mueller.example")
    assert dripper.json("suppress", "list", "--json") == []
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    assert dripper("suppress", "remove", "nobody.example", ok=2).exit_code == 2


def test_suppression_holds_after_the_secret_is_rotated(dripper: Dripper, project: Path) -> None:
    (project / "dnc.txt").write_text("grace@hopper.example\n")
    dripper("suppress", "import", "dnc.txt")
    rotated = {"DRIPPER_SECRET": "new-secret", "DRIPPER_SECRET_OLD": "test-secret"}
    result = dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), ok=2, **rotated)
    assert "leads.csv:4: suppressed" in result.stderr
    # once the old secret is no longer listed, its entries stop matching (documented)
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), DRIPPER_SECRET="new-secret")


# --- consent ------------------------------------------------------------------------------
def _require_consent(project: Path) -> None:
    path = project / "campaigns.yaml"
    text = path.read_text()
    path.write_text(
        text.replace("  literature-follow-up:\n", "  literature-follow-up:\n    require_consent: true\n", 1)
    )


def test_a_campaign_that_requires_consent_refuses_rows_without_it(dripper: Dripper, project: Path) -> None:
    _require_consent(project)
    (project / "consent.csv").write_text(
        "email,stage,campaign,consent_source,consent_at\n"
        "ada@lovelace.example,supplier_research,literature-follow-up,web form,2026-01-02T10:00:00+00:00\n"
        "bob@nowhere.example,supplier_research,literature-follow-up,,\n"
    )
    result = dripper("leads", "import", "consent.csv", "--at", T0.isoformat(), ok=2)
    assert "consent.csv:3: no consent: campaign 'literature-follow-up' has require_consent: true" in result.stderr
    assert [lead["email"] for lead in dripper.json("leads", "list", "--json")] == ["ada@lovelace.example"]
    shown = dripper.json("leads", "show", "ada@lovelace.example", "--json")
    assert shown["consent"] == {"source": "web form", "at": "2026-01-02T10:00:00+00:00"}
    assert "no consent" in dripper("leads", "add", "carl@nowhere.example", ok=1).stderr
    dripper("leads", "add", "carl@nowhere.example", "--attr", "consent_source=phone call")


# --- retention ----------------------------------------------------------------------------
def _with_old_text(dripper: Dripper) -> int:
    """An inbound event with a sender and subject, and a touch detail, at T0 (as ingest keeps them)."""
    from dripper.store.queries import leadrows

    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            lead = leadrows.by_email(conn, "ada@lovelace.example")
            assert lead is not None
            leadrows.record_event(
                conn, lead.id, "unknown", T0, "inbound", {"from": "ada@lovelace.example", "subject": "Re: valves"}
            )
            conn.execute(touches.update().where(touches.c.lead_id == lead.id).values(detail="550 ada@lovelace.example"))
            profile = {"language": "de", "owner": "bob", "consent_source": "web form", "consent_at": T0}
            conn.execute(leads.update().where(leads.c.id == lead.id).values(**profile))
            return lead.id
    finally:
        store.dispose()


def _event_rows(dripper: Dripper, lead_id: int) -> list[tuple[str, object]]:
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            rows = conn.execute(select(events.c.kind, events.c.detail).where(events.c.lead_id == lead_id)).all()
            details = conn.execute(select(touches.c.detail).where(touches.c.lead_id == lead_id)).scalars().all()
    finally:
        store.dispose()
    return [(kind, detail) for kind, detail in rows] + [("touch", d) for d in details]


def test_purge_blanks_old_text_and_deletes_old_events_by_the_defaults(dripper: Dripper) -> None:
    _imported(dripper)
    dripper("event", "ada@lovelace.example", "converted", "--at", T0.isoformat())
    lead_id = _with_old_text(dripper)
    purged = dripper.json("leads", "purge", "--json", "--at", (T0 + timedelta(days=150)).isoformat())
    assert (purged["events"], purged["bodies"]) == (0, 0)  # within the 6 months bodies are kept
    purged = dripper.json("leads", "purge", "--json", "--at", (T0 + timedelta(days=190)).isoformat())
    assert purged["events"] == 0 and purged["bodies"] >= 2
    rows = _event_rows(dripper, lead_id)
    assert "ada@lovelace.example" not in json.dumps(rows) and "converted" in [k for k, _ in rows]
    purged = dripper.json("leads", "purge", "--json", "--at", (T0 + timedelta(days=24 * 31)).isoformat())
    assert purged["events"] == 2 and not [k for k, _ in _event_rows(dripper, lead_id) if k != "touch"]


def test_retention_settings_and_the_workers_housekeeping(dripper: Dripper, project: Path) -> None:
    import asyncio

    from dripper.clock import FrozenClock
    from dripper.config import Watcher
    from dripper.sending.worker import Worker
    from dripper.settings import Settings

    path = project / "campaigns.yaml"
    path.write_text(path.read_text().replace("campaigns:\n", "retention: {events: 1mo, bodies: 2w}\ncampaigns:\n", 1))
    _imported(dripper)
    lead_id = _with_old_text(dripper)
    settings = Settings(campaigns_path=path, database_url=dripper.db_url, secret="test-secret")
    store = open_store(dripper.db_url)
    try:
        clock = FrozenClock(T0 + timedelta(days=20))
        worker = Worker(store, Watcher(settings), settings, clock)
        asyncio.run(worker.housekeeping())
        assert ("unknown", None) in _event_rows(dripper, lead_id)
        clock.instant = T0 + timedelta(days=40)
        asyncio.run(worker.housekeeping())
        assert [k for k, _ in _event_rows(dripper, lead_id) if k != "touch"] == []
    finally:
        store.dispose()


def test_diff_leaves_a_stopped_lead_out(dripper: Dripper, project: Path) -> None:
    _imported(dripper)
    path = project / "campaigns.yaml"
    path.write_text(path.read_text().replace("after: 10w", "after: 12w", 1))
    at = (T0 + timedelta(days=16)).isoformat()
    before = dripper.json("diff", "--json", "--at", at)["campaigns"]["literature-follow-up"]["leads"]
    dripper("leads", "stop", "ada@lovelace.example", "--at", LATER.isoformat())
    after = dripper.json("diff", "--json", "--at", at)["campaigns"]["literature-follow-up"]["leads"]
    assert (before["affected"], after["affected"]) == (3, 2)
    assert after["steps"]["offer-1"]["upcoming_moved"]["leads"] == 2


def test_fields_are_printed_as_they_are_never_as_markup(dripper: Dripper) -> None:
    dripper("leads", "add", "mark@up.example", "--first-name", "[red]Eve[/red]", "--attr", "note=[bold]x")
    shown = dripper("leads", "show", "mark@up.example").stdout
    assert "first_name: [red]Eve[/red]" in shown and "attrs.note: [bold]x" in shown
    assert "mark@up.example" in dripper("leads", "list").stdout


def test_a_suppression_csv_with_a_header_and_a_missing_file(dripper: Dripper, project: Path) -> None:
    (project / "dnc.csv").write_text("email,name\ngrace@hopper.example,Grace\n\n")
    assert "1 entr(y/ies) added" in dripper("suppress", "import", "dnc.csv", "--name", "crm-export").stdout
    assert [e["reason"] for e in dripper.json("suppress", "list", "--json")] == ["crm-export"]
    assert "0 entr(y/ies) added, 1 already listed" in dripper("suppress", "import", "dnc.csv").stdout
    assert "cannot read" in dripper("suppress", "import", "missing.txt", ok=1).stderr


def test_stop_cancels_the_leads_open_call_tasks(dripper: Dripper, project: Path) -> None:
    from test_send_time import MONDAY, call_project

    call_project(project)
    dripper("leads", "import", "one.csv", "--at", MONDAY.isoformat())
    dripper("tick", "--at", MONDAY.isoformat())
    dripper("tick", "--at", (MONDAY + timedelta(weeks=1)).isoformat())
    assert len(dripper.json("calls", "--date", "all", "--open", "--json")) == 1
    dripper("leads", "stop", "ada@lovelace.example", "--at", (MONDAY + timedelta(weeks=1, hours=2)).isoformat())
    assert dripper.json("calls", "--date", "all", "--open", "--json") == []
    [task] = dripper.json("calls", "--date", "all", "--json")
    assert (task["outcome"], task["note"]) == ("cancelled", "stopped")
