"""`dripper diff`: what an edited campaigns.yaml will do to the leads already in a
campaign, checked against what the ticks then actually write. SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from dripper.campaign.model import load as load_campaigns
from dripper.leads.records import Lead
from dripper.planning.diff import PREDATES
from dripper.planning.planner import Planner
from dripper.store import campaign_versions, leads, open_store, touches
from dripper.store.tables import metadata

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday; 02:00 in Chicago
CAMPAIGN = "literature-follow-up"


def iso(t: datetime) -> str:
    return t.isoformat()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _step(step_id: str, after: str, template: str = "mail/news.html") -> str:
    return (
        f"        - id: {step_id}\n          after: {after}\n          channel: email\n          kind: new_info\n"
        f'          subject: "{step_id}"\n          template: {template}\n'
    )


LETTER_1 = (
    "        - id: letter-1\n          after: 4w\n          channel: letter\n          kind: follow_up\n"
    "          template: letters/follow_up.html\n"
)


def _rows(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every touch, keyed by (lead e-mail, step id)."""
    store = open_store(url)
    try:
        with store.begin() as conn:
            query = select(touches, leads.c.email).join(leads, leads.c.id == touches.c.lead_id)
            return {(row["email"], row["step_id"]): dict(row) for row in conn.execute(query).mappings()}
    finally:
        store.dispose()


def _everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    store = open_store(url)
    try:
        with store.begin() as conn:
            return {
                table.name: sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
                for table in metadata.sorted_tables
            }
    finally:
        store.dispose()


def _next_touches(rows: dict[tuple[str, str], dict[str, Any]], rename: dict[str, str]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for (email, step), row in rows.items():
        if row["state"] == "planned":
            candidate = (row["due_at"], rename.get(step, step))
            out[email] = min(out.get(email, candidate), candidate)
    return out


def _week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _spread(deltas: list[float]) -> tuple[float, float, float]:
    return min(deltas), statistics.median(deltas), max(deltas)


def _json_spread(data: dict[str, Any]) -> tuple[float, float, float]:
    return data["min_seconds"], data["median_seconds"], data["max_seconds"]


def test_diff_tells_what_the_next_ticks_do(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    dripper("leads", "add", "late@lead.example", "--stage", "supplier_research", "--at", iso(day(10)))
    for n in (1, 15):
        dripper("tick", "--at", iso(day(n) + timedelta(hours=7)))  # 09:00 in Chicago: inside the send window
    campaigns = project / "campaigns.yaml"
    original = load_campaigns(campaigns)
    # Insert a step in the past (1w: more than a day overdue for the three first leads,
    # still ahead for the late one) and one in the future (8w); delete letter-1, the
    # pending touch of the three first leads and still to come for the late one; rename
    # thanks (sent to all: its history goes with it); change two `after`s: reminder-1 is
    # the late lead's pending touch, offer-1 is still to come for everyone.
    _edit(campaigns, LETTER_1, _step("inserted-past", "1w"))
    _edit(campaigns, "        - id: offer-1\n", _step("inserted-future", "8w") + "        - id: offer-1\n")
    _edit(campaigns, "        - id: thanks\n", "        - id: thank-you\n          renamed_from: [thanks]\n")
    _edit(campaigns, "after: 2w", "after: 3w")
    _edit(campaigns, "after: 10w", "after: 12w")
    at = day(16)

    before = _rows(dripper.db_url)
    everything = _everything(dripper.db_url)
    data = dripper.json("diff", "--json", "--at", iso(at))
    assert _everything(dripper.db_url) == everything  # it wrote nothing
    assert list(data["campaigns"]) == [CAMPAIGN]
    diff = data["campaigns"][CAMPAIGN]
    assert diff["status"] == "changed" and diff["note"] is None
    steps = diff["steps"]
    assert [(s["step"], s["stage"], s["after"]) for s in steps["added"]] == [
        ("inserted-past", "supplier_research", "1w"),
        ("inserted-future", "supplier_research", "8w"),
    ]
    assert steps["removed"] == [{"step": "letter-1", "stage": "supplier_research"}]
    assert steps["renamed"] == [{"from": "thanks", "to": "thank-you"}]
    assert [(s["step"], s["after"], s["send_window"]) for s in steps["retimed"]] == [
        ("reminder-1", {"from": "2w", "to": "3w"}, None),
        ("offer-1", {"from": "10w", "to": "12w"}, None),
    ]
    assert steps["moved"] == steps["reordered"] == steps["changed"] == [] and steps["settings"] == {}
    effects = diff["leads"]
    assert effects["in_campaign"] == 4 and effects["at"] == iso(at)
    by_step = effects["steps"]
    assert set(by_step) == {"inserted-past", "inserted-future", "letter-1", "reminder-1", "offer-1"}
    assert "thank-you" not in by_step  # renamed with its history: nothing changes for anyone

    tick = dripper.json("tick", "--json", "--at", iso(at))
    assert tick["sent"] == 0
    after = _rows(dripper.db_url)
    written = {key: row for key, row in after.items() if row["updated_at"] == at}

    def written_as(step: str, state: str, reason: str | None) -> list[dict[str, Any]]:
        return [
            row for (_, s), row in written.items() if s == step and (row["state"], row["reason"]) == (state, reason)
        ]

    # What the tick wrote is what diff said, step by step.
    assert by_step["inserted-past"]["missed"] == len(written_as("inserted-past", "skipped", "missed")) == 3
    planned_now = written_as("inserted-past", "planned", None)
    assert by_step["inserted-past"]["gets"] == {
        "leads": 1,
        "weeks": dict(Counter(_week(r["due_at"]) for r in planned_now)),
    }
    removed = written_as("letter-1", "skipped", "step_removed")
    assert by_step["letter-1"]["step_removed"] == len(removed) == 3
    assert all(before[(r["email"], "letter-1")]["state"] == "planned" for r in removed)
    assert by_step["letter-1"]["loses"] == 1 and ("late@lead.example", "letter-1") not in after
    for step in ("inserted-past", "inserted-future", "letter-1", "reminder-1", "offer-1"):
        assert by_step[step]["missed"] == len(written_as(step, "skipped", "missed")), step
        assert by_step[step]["step_removed"] == len(written_as(step, "skipped", "step_removed")), step
    moved = [
        (after[key]["due_at"] - row["due_at"]).total_seconds()
        for key, row in before.items()
        if row["state"] == "planned"
        and key in after
        and after[key]["state"] == "planned"
        and after[key]["due_at"] != row["due_at"]
    ]
    assert by_step["reminder-1"]["pending_moved"]["touches"] == len(moved) == 1
    assert _json_spread(by_step["reminder-1"]["pending_moved"]) == _spread(moved) == (7 * 86400,) * 3
    assert (
        effects["next_touch_changes"]
        == sum(
            1
            for email, nxt in _next_touches(after, {}).items()
            if _next_touches(before, {"thanks": "thank-you"}).get(email) != nxt
        )
        == 4
    )
    assert not any(step == "thanks" for _, step in after)  # carried over to thank-you
    assert dripper("diff", "--exit-code", "--at", iso(at)).exit_code == 0  # applied: nothing left to tell

    # Later ticks: the steps still to come go out as diff said.
    for n in range(17, 130):
        # Inside the send window in Chicago and in Berlin: 15:30 UTC, 14:30 once Chicago is on summer time.
        dripper("tick", "--at", iso(day(n) + timedelta(hours=7.5 if n < 62 else 6.5)))
    final = _rows(dripper.db_url)
    future = [row for (_, step), row in final.items() if step == "inserted-future"]
    assert all(row["state"] == "sent" for row in future)
    assert by_step["inserted-future"]["gets"] == {
        "leads": len(future),
        "weeks": dict(Counter(_week(r["due_at"]) for r in future)),
    }
    assert by_step["inserted-future"]["gets"]["leads"] == 4
    assert not [row for (_, step), row in final.items() if step == "letter-1" and row["state"] == "sent"]
    old = Planner(original)
    store = open_store(dripper.db_url)
    with store.begin() as conn:
        lead_rows = {row["email"]: row for row in conn.execute(select(leads)).mappings()}
    store.dispose()
    offer_moves = []
    for email, lead in lead_rows.items():
        due_before = next(due for step, due in old.track_of(Lead.stored(lead)) if step.id == "offer-1")
        sent = final[(email, "offer-1")]
        assert sent["state"] == "sent"
        offer_moves.append((sent["due_at"] - due_before).total_seconds())
    upcoming = by_step["offer-1"]["upcoming_moved"]
    assert upcoming["leads"] == 4 and _json_spread(upcoming) == _spread(offer_moves)
    assert _spread(offer_moves) == (14 * 86400 - 3600, 14 * 86400, 14 * 86400)  # Berlin changes clocks in between

    terminal = dripper("diff", "--at", iso(at)).stdout
    assert "no schedule changes" in terminal


def test_the_terminal_shows_the_same_story(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    dripper("tick", "--at", iso(day(1)))
    _edit(project / "campaigns.yaml", "after: 10w", "after: 12w")
    _edit(
        project / "campaigns.yaml", "        - id: reminder-1\n", _step("extra-1", "1d") + "        - id: reminder-1\n"
    )
    result = dripper("diff", "--at", iso(day(2)), "--exit-code", ok=1)
    text = result.stdout
    assert "literature-follow-up" in text and "retimed" in text and "10w → 12w" in text
    assert "extra-1" in text and "2026-W02: 3" in text  # due on day 1 and 2: planned now for all three
    assert "3 of 3 lead(s) affected" in text
    checked = dripper("check", "--against-db", "--at", iso(day(2))).stdout
    assert "OK" in checked and "10w → 12w" in checked


def test_no_change_is_an_empty_diff(dripper):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    dripper("tick", "--at", iso(day(1)))
    assert dripper.json("diff", "--json", "--at", iso(day(2))) == {"campaigns": {}}
    result = dripper("diff", "--exit-code", "--at", iso(day(2)))
    assert result.exit_code == 0 and "no schedule changes" in result.stdout
    assert dripper.json("diff", "--json", "--campaign", CAMPAIGN) == {"campaigns": {}}
    assert "no campaign 'nope'" in dripper("diff", "--campaign", "nope", ok=1).stderr


def test_a_broken_file_is_refused_located(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    _edit(project / "campaigns.yaml", "after: 2w", "after: 2 fortnights")
    result = dripper("diff", "--json", ok=1)
    assert "campaigns.yaml:20:18: after: bad duration '2 fortnights'" in result.stderr
    assert result.stdout == ""


def test_a_version_applied_before_definitions_were_kept(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    for n in (1, 15):
        dripper("tick", "--at", iso(day(n) + timedelta(hours=7)))  # 09:00 in Chicago: inside the send window
    store = open_store(dripper.db_url)
    with store.begin() as conn:  # as the import wrote it
        definition = conn.scalar(select(campaign_versions.c.definition))
        assert definition == load_campaigns(project / "campaigns.yaml").schedule_definition(CAMPAIGN)
        conn.execute(update(campaign_versions).values(definition=None))  # as migration 0008 leaves it
    store.dispose()
    assert dripper.json("diff", "--json", "--at", iso(day(16))) == {"campaigns": {}}  # the fingerprint tells
    # A step inserted before reminder-1 (which every lead has passed), letter-1 (every
    # lead's pending touch) deleted.
    _edit(project / "campaigns.yaml", LETTER_1, "")
    _edit(project / "campaigns.yaml", "        - id: reminder-1\n", _step("early", "1w") + "        - id: reminder-1\n")
    diff = dripper.json("diff", "--json", "--at", iso(day(16)))["campaigns"][CAMPAIGN]
    assert diff["note"].startswith(PREDATES)
    steps = diff["steps"]
    assert [s["step"] for s in steps["added"]] == ["early"]
    assert steps["removed"] == [{"step": "letter-1", "stage": "supplier_research"}]
    assert [s["step"] for s in steps["unreached"]] == [
        "news-1",
        "offer-1",
        "monthly-4",
        "monthly-6",
        "lost-1",
        "welcome-customer",
    ]
    by_step = diff["leads"]["steps"]
    assert by_step["early"]["missed"] == 3 and by_step["letter-1"]["step_removed"] == 3
    assert by_step["news-1"]["gets"]["leads"] == 3 and set(by_step) == {"early", "letter-1", "news-1"}
    assert "predates this feature" in dripper("diff", "--at", iso(day(16))).stdout
    dripper("tick", "--at", iso(day(16)))
    rows = _rows(dripper.db_url)
    assert sum((row["state"], row["reason"]) == ("skipped", "step_removed") for row in rows.values()) == 3
    assert sum((row["state"], row["reason"]) == ("skipped", "missed") for row in rows.values()) == 3
    assert sum(step == "news-1" and row["state"] == "planned" for (_, step), row in rows.items()) == 3
    assert dripper.json("diff", "--json", "--at", iso(day(16))) == {"campaigns": {}}


def test_an_upgraded_database_adopts_the_new_fingerprint_without_replanning(dripper, project):
    """A version recorded before migration 0008 has the older fingerprint and no
    definition: with campaigns.yaml unchanged, nothing is re-planned, and the next tick
    records the definition."""
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    config = load_campaigns(project / "campaigns.yaml")
    store = open_store(dripper.db_url)
    with store.begin() as conn:
        conn.execute(update(campaign_versions).values(definition=None, fingerprint=config.legacy_fingerprint(CAMPAIGN)))
    store.dispose()
    assert dripper.json("diff", "--json", "--at", iso(day(1))) == {"campaigns": {}}
    result = dripper("tick", "--at", iso(day(1)))
    assert "re-planned" not in result.stdout
    store = open_store(dripper.db_url)
    with store.begin() as conn:
        row = conn.execute(select(campaign_versions)).one()
    store.dispose()
    assert (row.fingerprint, row.definition) == (
        config.schedule_fingerprint(CAMPAIGN),
        config.schedule_definition(CAMPAIGN),
    )


def test_moved_reordered_rewindowed_and_recast_steps(dripper, project):
    dripper("leads", "import", "leads.csv", "--at", iso(T0))
    dripper("event", "grace@hopper.example", "stage", "--stage", "lost_to_competitor", "--at", iso(day(1)))
    dripper("leads", "add", "new@customer.example", "--stage", "customer", "--at", iso(day(1)))
    dripper("tick", "--at", iso(day(2) + timedelta(hours=7)))  # 09:00 in Chicago: inside the send window
    campaigns = project / "campaigns.yaml"
    text = campaigns.read_text()
    # lost-1 moves to the customer track (and comes after 1w there) ...
    lost = text[text.index("        - id: lost-1\n") : text.index("      customer:\n")]
    text = text.replace("      lost_to_competitor:\n" + lost, "      lost_to_competitor: []\n")
    text += lost.replace("after: 3mo", "after: 1w")
    # ... monthly-6 comes before monthly-4 in the file (the same times, another order), offer-1
    # changes its kind, and the campaign gets its own send window and stop_on.
    m4 = text[text.index("        - id: monthly-4\n") : text.index("        - id: monthly-6\n")]
    m6 = text[text.index("        - id: monthly-6\n") : text.index("      lost_to_competitor:")]
    text = text.replace(m4 + m6, m6 + m4)
    text = text.replace("          kind: special_offer\n", "          kind: reminder\n")
    text = text.replace(
        "    stages:\n",
        "    stop_on: [converted, unsubscribed, bounced, complained]\n"
        '    send_window: {days: [mon, tue, wed, thu], hours: "10:00-16:00"}\n    stages:\n',
    )
    campaigns.write_text(text)
    dripper("check")
    diff = dripper.json("diff", "--json", "--at", iso(day(3)))["campaigns"][CAMPAIGN]
    steps = diff["steps"]
    assert steps["added"] == steps["removed"] == steps["renamed"] == []
    assert steps["moved"] == [{"step": "lost-1", "from": "lost_to_competitor", "to": "customer"}]
    research = ["thanks", "reminder-1", "letter-1", "news-1", "offer-1"]
    assert steps["reordered"] == [
        {
            "stage": "supplier_research",
            "from": [*research, "monthly-4", "monthly-6"],
            "to": [*research, "monthly-6", "monthly-4"],
        }
    ]
    assert steps["changed"] == [{"step": "offer-1", "kind": {"from": "special_offer", "to": "reminder"}}]
    assert steps["settings"] == {
        "stop_on": {
            "from": ["bounced", "complained", "converted", "replied", "unsubscribed"],
            "to": ["bounced", "complained", "converted", "unsubscribed"],
        }
    }
    retimed = {s["step"]: s for s in steps["retimed"]}
    assert set(retimed) == set(research) | {"monthly-4", "monthly-6", "lost-1", "welcome-customer"}
    assert retimed["thanks"]["send_window"] == {"from": "mon-fri 09:00-17:00", "to": "mon-thu 10:00-16:00"}
    assert retimed["thanks"]["after"] is None and retimed["lost-1"]["after"] == {"from": "3mo", "to": "1w"}
    by_step = diff["leads"]["steps"]
    assert by_step["lost-1"]["step_removed"] == 1  # Grace's pending lost-1, in the stage that no longer has it
    assert by_step["lost-1"]["gets"] == {"leads": 1, "weeks": {"2026-W03": 1}}  # the customer's track has it now
    # reminder-1 is pending for Ada and Zoë: Monday 19 January, 09:00 -> 10:00 on their clocks.
    assert by_step["reminder-1"]["pending_moved"] == {
        "touches": 2,
        "min_seconds": 3600,
        "median_seconds": 3600,
        "max_seconds": 3600,
    }

    before = _rows(dripper.db_url)
    dripper("tick", "--at", iso(day(3)))
    after = _rows(dripper.db_url)
    grace = after[("grace@hopper.example", "lost-1")]
    assert (grace["state"], grace["reason"]) == ("skipped", "step_removed")
    assert after[("new@customer.example", "lost-1")]["state"] == "planned"
    assert _week(after[("new@customer.example", "lost-1")]["due_at"]) == "2026-W03"
    moved = [
        (after[key]["due_at"] - row["due_at"]).total_seconds()
        for key, row in before.items()
        if row["state"] == "planned" == after[key]["state"] and after[key]["due_at"] != row["due_at"]
    ]
    assert moved == [3600, 3600]
    assert sum(effect["pending_moved"]["touches"] for effect in by_step.values()) == len(moved)


def test_migration_0008_keeps_the_versions_applied_before(sqlite_url):
    """A database at 0007 gains the `definition` column; its versions have none (NULL)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from dripper.store import db

    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
        conn.execute(
            text(
                "INSERT INTO campaign_versions (campaign, fingerprint, applied_at) "
                "VALUES ('literature-follow-up', 'f0', '2026-01-05 08:00:00')"
            )
        )
        conn.commit()
    engine.dispose()
    store = open_store(sqlite_url)
    with store.begin() as conn:
        row = conn.execute(select(campaign_versions)).one()
    store.dispose()
    assert (row.campaign, row.fingerprint, row.definition) == ("literature-follow-up", "f0", None)
