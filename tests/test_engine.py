"""End to end through the CLI, with the injected clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")
RESEARCH_STEPS = ["thanks", "reminder-1", "letter-1", "news-1", "offer-1", "monthly-4", "monthly-6"]


def iso(t: datetime) -> str:
    return t.isoformat()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def touches(dripper, email: str) -> dict[str, dict]:
    return {t["step"]: t for t in dripper.json("plan", email, "--json")["touches"]}


def tick(dripper, at: datetime, **env: str) -> dict[str, int]:
    return dripper.json("tick", "--at", iso(at), "--json", **env)


def office_hours_ticks(dripper, n: int) -> dict[str, int]:
    """Ticks on day `n` at 09:00 and 20:00 UTC: inside the send window in Berlin, then in
    Chicago, in winter and in summer (a touch is sent only while its lead's window is open)."""
    morning = tick(dripper, day(n) - timedelta(hours=6))
    evening = tick(dripper, day(n) + timedelta(hours=5))
    return {key: morning[key] + evening[key] for key in morning}


def test_six_month_cadence_arrives_on_the_right_days(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    for n in range(201):
        office_hours_ticks(dripper, n)  # twice a day
    ada = touches(dripper, "ada@lovelace.example")
    assert [s for s in RESEARCH_STEPS if ada[s]["state"] == "sent"] == RESEARCH_STEPS
    # 09:00 Chicago on the day `after` lands on (or the next weekday): the window opens then.
    expected_local = {
        "thanks": "2026-01-05 09:00",
        "reminder-1": "2026-01-19 09:00",
        "letter-1": "2026-02-02 09:00",
        "news-1": "2026-02-16 09:00",
        "offer-1": "2026-03-16 09:00",  # after the DST change: still 09:00
        "monthly-4": "2026-05-05 09:00",
        "monthly-6": "2026-07-06 09:00",  # 5 July 2026 is a Sunday
    }
    for step, local in expected_local.items():
        due = datetime.fromisoformat(ada[step]["due"]).astimezone(CHICAGO)
        assert due.strftime("%Y-%m-%d %H:%M") == local, step
        sent = datetime.fromisoformat(ada[step]["sent_at"])
        assert timedelta(0) <= sent - datetime.fromisoformat(ada[step]["due"]) < timedelta(days=1), step
    # Zoë lives in Berlin: her window is Berlin's.
    zoe = touches(dripper, "zoe@mueller.example")
    assert datetime.fromisoformat(zoe["thanks"]["due"]).astimezone(BERLIN).strftime("%H:%M") == "09:00"
    assert all(zoe[s]["state"] == "sent" for s in RESEARCH_STEPS)
    # Grace has no postal address: the letter is skipped, the track goes on.
    grace = touches(dripper, "grace@hopper.example")
    assert grace["letter-1"]["state"] == "skipped" and grace["letter-1"]["reason"] == "no_postal_address"
    assert grace["offer-1"]["state"] == "sent"
    outbox = sorted(Path("outbox").glob("*.eml"))
    assert len(outbox) == 3 * 6  # six e-mail steps for each of three leads
    assert len(list(Path("letters").glob("*.pdf"))) == 2
    assert all(p.read_bytes().startswith(b"%PDF") for p in Path("letters").glob("*.pdf"))


@pytest.mark.parametrize("kind", ["converted", "replied", "unsubscribed", "bounced", "complained"])
def test_nothing_goes_out_after_a_stop_event(dripper, kind):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    assert tick(dripper, day(1))["sent"] == 3
    dripper("event", "ada@lovelace.example", kind, "--at", iso(day(3)))
    for n in (14, 28, 42, 70, 125, 185, 200):
        office_hours_ticks(dripper, n)
    ada = touches(dripper, "ada@lovelace.example")
    assert ada["thanks"]["state"] == "sent"
    for step in RESEARCH_STEPS[1:]:
        assert ada[step]["state"] == "suppressed" and ada[step]["reason"] == kind, step
    plan = dripper.json("plan", "ada@lovelace.example", "--json")
    assert plan["lead"]["status"] == kind
    assert touches(dripper, "zoe@mueller.example")["monthly-6"]["state"] == "sent"  # others unaffected
    sent_to_ada = [p for p in Path("outbox").glob("*.eml") if "ada@" in p.name]
    assert len(sent_to_ada) == 1


def test_stage_change_switches_tracks(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    tick(dripper, day(15))
    dripper("event", "ada@lovelace.example", "stage", "--stage", "lost_to_competitor", "--at", iso(day(20)))
    for n in range(21, 200, 7):  # Mondays
        office_hours_ticks(dripper, n)
    ada = touches(dripper, "ada@lovelace.example")
    assert ada["reminder-1"]["state"] == "sent"  # day 14, before the change
    # The old track's next touch is skipped; the rest of it was never planned (one touch ahead).
    assert (ada["letter-1"]["state"], ada["letter-1"]["reason"]) == ("skipped", "stage_changed")
    assert not {"news-1", "offer-1", "monthly-4", "monthly-6"} & set(ada)
    lost = ada["lost-1"]
    assert lost["state"] == "sent" and lost["stage"] == "lost_to_competitor"
    # Its own time zero: three months after the change, not after the import.
    assert datetime.fromisoformat(lost["due"]).astimezone(CHICAGO).date().isoformat() == "2026-04-27"
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["stage"] == "lost_to_competitor"


def test_conversion_can_move_the_lead_to_the_customer_track(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    dripper("event", "ada@lovelace.example", "converted", "--stage", "customer", "--at", iso(day(5)))
    tick(dripper, day(8))  # day 5 is a Saturday: the window opens on Monday
    ada = touches(dripper, "ada@lovelace.example")
    assert ada["reminder-1"]["state"] == "suppressed" and ada["reminder-1"]["reason"] == "converted"
    assert ada["welcome-customer"]["state"] == "sent"


def test_the_same_tick_twice_sends_nothing_the_second_time(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    first = tick(dripper, day(1))
    second = tick(dripper, day(1))
    assert first["sent"] == 3 and second["sent"] == 0
    assert len(list(Path("outbox").glob("*.eml"))) == 3
    assert set(second) >= {"sent", "failed", "suppressed", "skipped", "deferred"}


def test_reimport_does_not_restart_or_duplicate(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    dripper("leads", "import", "leads.csv", "--at", iso(day(10)))
    assert tick(dripper, day(11))["sent"] == 0
    assert tick(dripper, day(15))["sent"] == 3  # reminder-1, on the original schedule
    assert len(touches(dripper, "ada@lovelace.example")) == len(RESEARCH_STEPS)


def test_worker_down_sends_only_the_latest_missed_step(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    counts = tick(dripper, day(50))  # nobody ticked for 50 days
    ada = touches(dripper, "ada@lovelace.example")
    assert (ada["news-1"]["state"], ada["news-1"]["reason"]) == ("sent", None)
    for step in ("thanks", "reminder-1", "letter-1"):
        assert (ada[step]["state"], ada[step]["reason"]) == ("skipped", "missed"), step
    assert counts["sent"] == 3 and counts["skipped"] == 9
    assert ada["offer-1"]["state"] == "planned"


def test_a_track_planned_in_full_by_an_earlier_version_goes_on_once(dripper):
    """Databases planned before tracks were planned one touch ahead hold a row for every
    step of a track. They go on as they are: the catch-up rule holds, nothing is planned
    or sent twice."""
    from sqlalchemy import insert, select

    from dripper.campaign.model import load
    from dripper.leads.records import Lead
    from dripper.planning.planner import Planner
    from dripper.store import leads, open_store
    from dripper.store import touches as touches_t

    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    planner = Planner(load(Path("campaigns.yaml")))
    store = open_store(dripper.db_url)
    with store.begin() as conn:  # what the earlier planner wrote: the rest of every track
        for lead in conn.execute(select(leads)).mappings():
            have = set(conn.scalars(select(touches_t.c.step_id).where(touches_t.c.lead_id == lead["id"])))
            conn.execute(
                insert(touches_t),
                [
                    {
                        "lead_id": lead["id"],
                        "campaign": lead["campaign"],
                        "step_id": step.id,
                        "stage": lead["stage"],
                        "channel": step.channel,
                        "kind": step.kind,
                        "due_at": due,
                        "state": "planned",
                        "attempts": 0,
                        "planned_at": T0,
                        "updated_at": T0,
                    }
                    for step, due in planner.track_of(Lead.stored(lead))
                    if step.id not in have
                ],
            )
    store.dispose()
    counts = tick(dripper, day(50))  # nobody ticked for 50 days
    assert counts["sent"] == 3 and counts["skipped"] == 9
    ada = touches(dripper, "ada@lovelace.example")
    assert [s for s in RESEARCH_STEPS if ada[s]["reason"] == "missed"] == ["thanks", "reminder-1", "letter-1"]
    for n in range(51, 201, 3):
        office_hours_ticks(dripper, n)
    plan = dripper.json("plan", "ada@lovelace.example", "--json")["touches"]
    assert sorted(t["step"] for t in plan) == sorted(RESEARCH_STEPS)  # one row a step
    assert [s for s in RESEARCH_STEPS if ada[s]["state"] != "skipped"] == [
        "news-1",
        "offer-1",
        "monthly-4",
        "monthly-6",
    ]
    assert all(t["state"] == "sent" for t in plan if t["step"] in ("news-1", "offer-1", "monthly-4", "monthly-6"))
    names = [p.name for p in Path("outbox").glob("*ada@*.eml")]
    assert len(names) == len(set(names)) == 4


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_live_edits_insert_delete_rename(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    for n in (1, 15):
        tick(dripper, day(n))
    campaigns = project / "campaigns.yaml"
    # Insert a step in the past (1w: already 9 days overdue) and one in the future (8w).
    _edit(
        campaigns,
        "        - id: letter-1\n",
        "        - id: inserted-past\n          after: 1w\n          channel: email\n          kind: reminder\n"
        '          subject: "Inserted"\n          template: mail/reminder.html\n'
        "        - id: inserted-future\n          after: 8w\n          channel: email\n          kind: new_info\n"
        '          subject: "Inserted later"\n          template: mail/news.html\n'
        "        - id: letter-1\n",
    )
    # Delete news-1, rename offer-1 (a new id is a new step).
    _edit(
        campaigns,
        "        - id: news-1\n          after: 6w\n          channel: email\n          kind: new_info\n"
        '          subject: "New application notes"\n          template: mail/news.html\n',
        "",
    )
    _edit(campaigns, "id: offer-1", "id: offer-kit")
    dripper("check")
    counts = tick(dripper, day(16))
    assert counts["sent"] == 0
    for n in range(17, 120):
        office_hours_ticks(dripper, n)
    ada = touches(dripper, "ada@lovelace.example")
    assert (ada["inserted-past"]["state"], ada["inserted-past"]["reason"]) == ("skipped", "missed")
    assert ada["inserted-future"]["state"] == "sent"
    # Deleted before the track reached them: never planned, never sent.
    assert "news-1" not in ada and "offer-1" not in ada
    assert ada["offer-kit"]["state"] == "sent"
    assert ada["thanks"]["state"] == "sent" and ada["reminder-1"]["state"] == "sent"
    names = [p.name for p in Path("outbox").glob("*ada@*.eml")]
    assert not any("news-1" in n or "offer-1" in n for n in names)
    assert sum("_thanks_" in n for n in names) == 1  # editing never re-sends what went out


def test_deleting_the_pending_step_goes_on_with_the_next(dripper, project):
    """Tracks are planned one touch ahead: when the touch a lead waits for is deleted, the
    track goes on with the step after it."""
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    assert touches(dripper, "ada@lovelace.example")["reminder-1"]["state"] == "planned"
    _edit(
        project / "campaigns.yaml",
        "        - id: reminder-1\n          after: 2w\n          channel: email\n"
        '          kind: reminder\n          subject: "Anything else we can send you, {{ lead.first_name }}?"\n'
        "          template: mail/reminder.html\n",
        "",
    )
    assert tick(dripper, day(15))["sent"] == 0  # reminder-1 was due on day 14
    ada = touches(dripper, "ada@lovelace.example")
    assert (ada["reminder-1"]["state"], ada["reminder-1"]["reason"]) == ("skipped", "step_removed")
    assert ada["letter-1"]["state"] == "planned"
    tick(dripper, day(29))
    assert touches(dripper, "ada@lovelace.example")["letter-1"]["state"] == "sent"
    assert not [p for p in Path("outbox").glob("*.eml") if "reminder-1" in p.name]


def test_changing_after_moves_pending_touches(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    _edit(project / "campaigns.yaml", "after: 10w", "after: 12w")
    tick(dripper, day(1))
    due = datetime.fromisoformat(touches(dripper, "ada@lovelace.example")["offer-1"]["due"]).astimezone(CHICAGO)
    assert due.date().isoformat() == "2026-03-30"


def test_a_campaign_edit_leaves_a_held_touch_held(dripper, project):
    """An out-of-office held Ada's next touch; retiming that step in the file moves everyone
    else's, not hers back into her absence."""
    from dripper.campaign.model import load
    from dripper.planning.planner import Planner, hold_until
    from dripper.store import open_store
    from dripper.store.queries import leadrows

    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    store = open_store(dripper.db_url)
    with store.begin() as conn:
        ada = leadrows.by_email(conn, "ada@lovelace.example")
        assert hold_until(conn, Planner(load(Path("campaigns.yaml"))), ada, day(30).date(), day(2)) == 1
    store.dispose()
    _edit(project / "campaigns.yaml", "after: 2w", "after: 15d")
    tick(dripper, day(16))  # 16:00 in Berlin: inside the send window
    reminders = {
        email: touches(dripper, email)["reminder-1"] for email in ("ada@lovelace.example", "zoe@mueller.example")
    }
    assert reminders["zoe@mueller.example"]["state"] == "sent"
    assert reminders["ada@lovelace.example"]["state"] == "planned"
    assert datetime.fromisoformat(reminders["ada@lovelace.example"]["due"]) > day(30)


def test_a_broken_edit_is_refused_whole(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    _edit(project / "campaigns.yaml", "after: 2w", "after: 2 fortnights")
    result = dripper("tick", "--at", iso(day(1)), ok=1)
    assert "campaigns.yaml:" in result.stderr and "bad duration" in result.stderr
    assert not Path("outbox").exists()


def test_report_json_has_every_state(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    dripper("event", "zoe@mueller.example", "unsubscribed", "--at", iso(day(2)))
    data = dripper.json("report", "--json")
    steps = data["campaigns"]["literature-follow-up"]["steps"]
    for step in RESEARCH_STEPS:
        assert {"planned", "sending", "sent", "failed", "suppressed", "skipped"} <= set(steps[step])
    assert steps["thanks"]["sent"] == 3
    assert steps["reminder-1"]["suppressed"] == 1 and steps["reminder-1"]["planned"] == 2
    html = Path("report.html")
    dripper("report", "--html", str(html))
    assert "literature-follow-up" in html.read_text()


def test_report_counts_what_plan_shows_for_every_lead(dripper, project):
    """The steps still to come have no rows (a track is planned one touch ahead): `report`
    counts them in SQL, `plan` lists them lead by lead. Both must tell the same story, for
    leads at every point of their tracks: sent, stopped, moved, back in a stage, edited."""
    from collections import Counter

    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    extra = [f"extra{i}@lead.example" for i in range(4)]
    for i, email in enumerate(extra):
        stage = "supplier_research" if i % 2 else "lost_to_competitor"
        dripper("leads", "add", email, "--stage", stage, "--at", iso(day(i)))
    tick(dripper, day(1))
    tick(dripper, day(15))
    dripper("event", "ada@lovelace.example", "unsubscribed", "--at", iso(day(16)))
    dripper("event", "zoe@mueller.example", "converted", "--stage", "customer", "--at", iso(day(17)))
    dripper("event", "grace@hopper.example", "stage", "--stage", "lost_to_competitor", "--at", iso(day(18)))
    dripper("event", extra[1], "replied", "--at", iso(day(18)))
    tick(dripper, day(29))
    dripper("event", "grace@hopper.example", "stage", "--stage", "supplier_research", "--at", iso(day(40)))
    tick(dripper, day(43))
    _edit(project / "campaigns.yaml", "id: offer-1", "id: offer-kit")  # a step renamed: a new one, the old removed
    tick(dripper, day(44))

    report = dripper.json("report", "--json")["campaigns"]["literature-follow-up"]["steps"]
    shown: Counter[tuple[str, str]] = Counter()
    for email in ["ada@lovelace.example", "zoe@mueller.example", "grace@hopper.example", *extra]:
        plan = dripper.json("plan", email, "--json")["touches"]
        assert len({t["step"] for t in plan}) == len(plan), email  # one entry a step
        shown.update((t["step"], t["state"]) for t in plan)
    counted = {
        (step, state): n
        for step, row in report.items()
        for state in ("planned", "sending", "sent", "failed", "suppressed", "skipped")
        if (n := row[state])
    }
    assert counted == dict(shown)
    assert counted[("monthly-6", "planned")] >= 1 and counted[("monthly-6", "suppressed")] >= 2


def test_a_touch_of_a_track_the_lead_left_is_never_sent(dripper):
    """An outcome plans the next touch from the lead as it was claimed; a stage change in
    between leaves that touch on the old track. The sender checks every touch against the
    lead's current track and skips it."""
    from sqlalchemy import insert, select

    from dripper.store import leads, open_store
    from dripper.store import touches as touches_t

    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    dripper("event", "ada@lovelace.example", "stage", "--stage", "lost_to_competitor", "--at", iso(day(2)))
    store = open_store(dripper.db_url)
    with store.begin() as conn:  # what the race leaves behind: the old track's next step, planned
        ada = conn.execute(select(leads).where(leads.c.email == "ada@lovelace.example")).mappings().one()
        conn.execute(
            insert(touches_t).values(
                lead_id=ada["id"],
                campaign="literature-follow-up",
                step_id="letter-1",
                stage="supplier_research",
                channel="letter",
                kind="follow_up",
                due_at=day(28),
                state="planned",
                attempts=0,
                planned_at=T0,
                updated_at=day(2),
            )
        )
    store.dispose()
    tick(dripper, day(29))
    letter = touches(dripper, "ada@lovelace.example")["letter-1"]
    assert (letter["state"], letter["reason"]) == ("skipped", "stage_changed")
    assert not list(Path("letters").glob("*ada*"))


def test_plan_json_shape(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    dripper("event", "ada@lovelace.example", "unsubscribed", "--at", iso(day(2)))
    plan = dripper.json("plan", "ADA@lovelace.example", "--json")
    assert plan["lead"]["email"] == "ada@lovelace.example" and plan["lead"]["status"] == "unsubscribed"
    first = plan["touches"][0]
    assert set(first) >= {"campaign", "step", "channel", "kind", "due", "state", "reason", "sent_at", "message_id"}
    assert first["state"] == "sent" and first["message_id"].endswith("@acme.example>")
    pending = [t for t in plan["touches"] if t["state"] != "sent"]
    assert pending and all((t["state"], t["reason"]) == ("suppressed", "unsubscribed") for t in pending)


def test_tick_exit_codes(dripper, project):
    assert dripper("tick", "--json", "--at", iso(day(1))).exit_code == 0
    bad = dripper("tick", ok=1, DRIPPER_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    assert "cannot open database" in bad.stderr
    (project / "campaigns.yaml").write_text("sender: [\n")
    assert "YAML syntax error" in dripper("tick", ok=1).stderr


def test_simulate_shows_the_cadence(dripper_sqlite):
    rows = dripper_sqlite.json(
        "simulate", "--stage", "supplier_research", "--days", "200", "--json", "--at", "2026-01-05T08:00:00Z"
    )
    assert [r["step"] for r in rows] == RESEARCH_STEPS
    assert [r["day"] for r in rows] == [0, 14, 28, 42, 70, 120, 182]
    assert rows[1]["subject"] == "Anything else we can send you, Sam?"
    table = dripper_sqlite("simulate", "--stage", "supplier_research", "--at", iso(T0)).stdout
    assert "reminder-1" in table and "special_offer" in table


def test_preview_renders_for_a_lead(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    text = dripper("preview", "literature-follow-up", "offer-1", "--lead", "zoe@mueller.example").stdout
    assert "Subject: A sample kit for Müller Anlagenbau" in text and "Zoë" in text
    eml = dripper(
        "preview", "literature-follow-up", "thanks", "--lead", "zoe@mueller.example", "--format", "eml"
    ).stdout
    message = message_from_bytes(eml.encode(), policy=policy.default)
    assert message["To"].addresses[0].display_name == "Zoë Müller"


def test_leads_add_and_attrs(dripper):
    dripper(
        "leads",
        "add",
        "new@lead.example",
        "--stage",
        "supplier_research",
        "--first-name",
        "Nia",
        "--attr",
        "product=pumps",
        "--at",
        iso(T0),
    )
    tick(dripper, day(1))
    eml = next(Path("outbox").glob("*new@lead.example.eml")).read_bytes()
    assert message_from_bytes(eml, policy=policy.default)["Subject"] == "Your pumps information pack"
    dripper("leads", "add", "new@lead.example", "--stage", "nonsense", ok=1)


def test_renamed_from_keeps_history(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    tick(dripper, day(1))
    _edit(
        project / "campaigns.yaml",
        "        - id: thanks\n",
        "        - id: thank-you\n          renamed_from: [thanks]\n",
    )
    for n in (2, 15):
        tick(dripper, day(n))
    ada = touches(dripper, "ada@lovelace.example")
    assert "thanks" not in ada and ada["thank-you"]["state"] == "sent"
    assert ada["reminder-1"]["state"] == "sent"
    assert len([p for p in Path("outbox").glob("*ada@*.eml") if "thank" in p.name]) == 1


def test_suppression_is_checked_again_at_send_time(dripper):
    """A stop written by another process after planning (here: straight into the store,
    leaving the planned rows alone) still stops the send."""
    from sqlalchemy import update

    from dripper.store import leads, open_store

    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    store = open_store(dripper.db_url)
    with store.begin() as conn:
        conn.execute(update(leads).where(leads.c.email == "ada@lovelace.example").values(unsubscribed_at=day(0.5)))
        conn.execute(update(leads).where(leads.c.email == "zoe@mueller.example").values(replied_at=day(0.5)))
    store.dispose()
    counts = tick(dripper, day(1))
    assert counts["sent"] == 1 and counts["suppressed"] == 2
    assert (touches(dripper, "ada@lovelace.example")["thanks"]["reason"]) == "unsubscribed"
    assert (touches(dripper, "zoe@mueller.example")["thanks"]["reason"]) == "replied"
