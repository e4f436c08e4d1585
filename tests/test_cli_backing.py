"""The plain functions the commands call (the CLI only parses and prints): tested on their
own here, beside the end-to-end runs of the commands in the other tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dripper.campaign import usage
from dripper.campaign.model import load as load_campaigns
from dripper.channels.calls.tasks import business_day
from dripper.channels.compose import Composer
from dripper.channels.letters import batches
from dripper.config import Loaded
from dripper.leads.adding import AddOutcome, NotALead, add_lead, with_existing
from dripper.leads.records import Lead
from dripper.reports import simulation
from dripper.reports.previews import NotForStep, touch_text
from dripper.sending import soleworker
from dripper.settings import Settings
from dripper.store import Store
from dripper.store.queries import printrows, tickrows
from dripper.store.queries.metricrows import FigureReader
from dripper.tokens import secret_status

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago


def test_usage_counts_every_step_and_the_channels_they_use(project: Path) -> None:
    config = load_campaigns(project / "campaigns.yaml")
    assert usage.step_count(config) == 9
    assert usage.channels_used(config) == {"email", "letter"}
    assert [s.id for s in usage.all_steps(config)][:3] == ["thanks", "reminder-1", "letter-1"]


def test_an_update_keeps_what_it_does_not_mention() -> None:
    stored = Lead.stored(
        {
            "email": "a@b.example",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Engines",
            "timezone": "Europe/London",
            "stage": "customer",
            "campaign": "c",
            "address_line1": "1 Way",
            "address_line2": None,
            "city": "London",
            "region": "",
            "postal_code": "N1",
            "country": "GB",
            "attrs": {"product": "valves", "size": "L"},
        }
    )
    merged = with_existing({"email": "a@b.example", "first_name": "Augusta", "stage": None, "size": "XL"}, stored)
    assert merged["first_name"] == "Augusta"  # given: wins
    assert merged["last_name"] == "Lovelace" and merged["stage"] == "customer" and merged["city"] == "London"
    assert merged["product"] == "valves" and merged["size"] == "XL"  # stored attrs fill in, given ones win
    assert with_existing({"email": "a@b.example"}, None) == {"email": "a@b.example"}


def test_add_lead_adds_then_updates_then_changes_nothing(store: Store, loaded: Loaded) -> None:
    raw = {"email": "new@lead.example", "first_name": "New", "stage": "supplier_research"}
    with store.begin() as conn:
        first = add_lead(conn, loaded, raw, AT)
    assert first.outcome is AddOutcome.ADDED and first.lead.campaign == "literature-follow-up"
    with store.begin() as conn:
        second = add_lead(conn, loaded, {"email": "new@lead.example", "company": "Acme"}, AT)
    assert second.outcome is AddOutcome.UPDATED
    assert (second.lead.first_name, second.lead.company, second.lead.stage) == ("New", "Acme", "supplier_research")
    with store.begin() as conn:
        third = add_lead(conn, loaded, {"email": "new@lead.example"}, AT)
    assert third.outcome is AddOutcome.UNCHANGED
    with store.begin() as conn, pytest.raises(NotALead, match="stage"):
        add_lead(conn, loaded, {"email": "x@lead.example", "stage": "no_such_stage"}, AT)


def test_next_up_lists_the_earliest_planned_touches(store: Store, loaded: Loaded) -> None:
    with store.begin() as conn:
        assert tickrows.next_up(conn, 10) == []
        add_lead(conn, loaded, {"email": "a@lead.example", "stage": "supplier_research"}, AT)
        add_lead(conn, loaded, {"email": "b@lead.example", "stage": "customer"}, AT + timedelta(days=1))
        found = tickrows.next_up(conn, 1)
        both = tickrows.next_up(conn, 10)
    assert len(found) == 1 and found[0].email == "a@lead.example" and found[0].step_id == "thanks"
    assert [u.email for u in both] == ["a@lead.example", "b@lead.example"]
    assert [u.due_at for u in both] == sorted(u.due_at for u in both)


def test_figures_of_an_empty_database_are_zero(store: Store) -> None:
    figures = FigureReader(store, timedelta(seconds=60)).read(AT)
    assert (figures.due, figures.sending_expired, figures.by_state, figures.events) == (0, 0, {}, {})


def test_sqlite_takes_one_worker(store: Store) -> None:
    first = soleworker.claim(store)
    assert first is not None
    try:
        with pytest.raises(soleworker.AnotherWorker):
            soleworker.claim(store)
    finally:
        first.release()
    again = soleworker.claim(store)
    assert again is not None
    again.release()


def test_business_day_is_the_office_date() -> None:
    late = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # still Sunday evening in Chicago
    assert business_day(late, "America/Chicago") == "2026-03-01"
    assert business_day(late, "Europe/Berlin") == "2026-03-02"


def test_batches_are_summarized_and_marked_mailed_once(store: Store, tmp_path: Path) -> None:
    with store.begin() as conn:
        batch = printrows.open_batch(conn, "2026-03-02", AT)
    [summary] = batches.summaries(store, tmp_path)
    assert (summary.batch, summary.letters, summary.mailed_at, summary.folder) == (batch, 0, None, tmp_path / batch)
    assert summary.as_json()["folder"] == str(tmp_path / batch) and summary.as_json()["mailed_at"] is None
    assert batches.mark_mailed(store, "nope", AT, "manual").outcome is batches.MarkOutcome.NO_BATCH
    assert batches.mark_mailed(store, batch, AT, "manual").outcome is batches.MarkOutcome.MARKED
    later = batches.mark_mailed(store, batch, AT + timedelta(hours=1), "manual")
    assert later.outcome is batches.MarkOutcome.ALREADY_MAILED and later.mailed_at == AT
    [summary] = batches.summaries(store, tmp_path)
    assert summary.as_json()["mailed_at"] == AT.isoformat() and summary.mailed_by == "manual"


def test_secret_status_says_where_the_secret_is_and_who_can_read_the_file(store: Store, sqlite_url: str) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    os.chmod(path, 0o644)
    status = secret_status(Settings(database_url=sqlite_url, secret="s3cret"), store)
    assert status.from_env and status.database_file == path and status.open_mode == 0o644
    assert status.as_json()["database_file"] == {"path": str(path), "private": False, "mode": "0644"}
    os.chmod(path, 0o600)
    status = secret_status(Settings(database_url=sqlite_url), store)
    assert not status.from_env and status.open_mode is None
    assert status.as_json()["signing"] == "database" and status.as_json()["database_file"]["private"] is True


def test_simulation_follows_each_track(loaded: Loaded) -> None:
    config = loaded.campaigns
    assert simulation.tracks(config, ["literature-follow-up"], None) == [
        ("literature-follow-up", "supplier_research"),
        ("literature-follow-up", "lost_to_competitor"),
        ("literature-follow-up", "customer"),
    ]
    touches = simulation.simulate(loaded, ["literature-follow-up"], "supplier_research", AT, 30, None, "")
    assert [t.step for t in touches][:2] == ["thanks", "reminder-1"]
    assert all(t.stage == "supplier_research" and 0 <= t.day <= 30 for t in touches)
    first = touches[0].as_json()
    assert list(first) == ["campaign", "stage", "day", "date", "step", "channel", "kind", "subject"]
    assert first["date"] == touches[0].due.isoformat() and first["subject"]


def test_touch_text_by_format(loaded: Loaded) -> None:
    from dripper.campaign.templates import sample_lead

    config = loaded.campaigns
    camp = config.campaigns["literature-follow-up"]
    lead = sample_lead(config, any_attrs=False)
    composer = Composer(loaded, "https://x.example", "secret")
    email = camp.step("thanks")[1]  # type: ignore[index]
    letter = camp.step("letter-1")[1]  # type: ignore[index]
    assert touch_text(composer, lead, camp, email, AT, "text").startswith("Subject: ")
    assert "<" in touch_text(composer, lead, camp, email, AT, "html")
    assert "List-Unsubscribe: " in touch_text(composer, lead, camp, email, AT, "eml")
    with pytest.raises(NotForStep):
        touch_text(composer, lead, camp, email, AT, "pdf")
    page = touch_text(composer, lead, camp, letter, AT, "html")
    assert page == touch_text(composer, lead, camp, letter, AT, "pdf") and "<" in page
    assert touch_text(composer, lead, camp, letter, AT, "text") == composer.call_notes(lead, camp, letter, AT)


def test_letters_are_said_to_be_skipped_only_when_one_is_planned() -> None:
    from dripper.reports.funnel import letters_skipped_because

    def plan(complete: bool, *touches: tuple[str, str]) -> dict[str, object]:
        address = {"complete": complete, "problem": None if complete else "no city"}
        return {
            "lead": {"postal_address": address},
            "touches": [{"channel": c, "state": s} for c, s in touches],
        }

    assert letters_skipped_because(plan(False, ("email", "planned"), ("letter", "planned"))) == "no city"
    assert letters_skipped_because(plan(False, ("letter", "sent"), ("email", "planned"))) is None
    assert letters_skipped_because(plan(True, ("letter", "planned"))) is None
