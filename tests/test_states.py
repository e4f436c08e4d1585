"""The vocabulary: touch states and their transitions, reasons and their meanings, and
the reference page generated from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dripper.states import (
    FINAL,
    PENDING,
    REPLANNABLE,
    STATES,
    TRANSITIONS,
    USER_EVENTS,
    Channel,
    EventKind,
    InboundKind,
    Reason,
    TouchState,
    reasons_markdown,
)

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "reasons.md"


def test_states_keep_their_stored_strings_and_order():
    assert [str(s) for s in STATES] == ["planned", "sending", "sent", "failed", "suppressed", "skipped"]
    assert TouchState("planned") is TouchState.PLANNED
    assert TouchState.SENT == "sent"


def test_pending_and_final_split_the_states():
    assert {"planned", "sending"} == PENDING
    assert set(TouchState) == PENDING | FINAL
    assert not PENDING & FINAL
    assert TouchState.PLANNED.is_pending and TouchState.SENDING.is_pending
    assert not TouchState.SENT.is_pending and TouchState.SENT.is_final
    assert "planned" in PENDING  # stored strings are looked up as they are


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        ("planned", "sending", True),
        ("planned", "skipped", True),
        ("planned", "suppressed", True),
        ("planned", "sent", False),  # never sent without a claim
        ("planned", "failed", False),
        ("sending", "sent", True),
        ("sending", "failed", True),
        ("sending", "planned", True),  # a retry, a release
        ("sent", "planned", True),  # a soft bounce: sent again
        ("sent", "failed", False),
        ("sent", "sending", False),
        ("failed", "sent", False),
        ("skipped", "planned", True),  # re-planned when the track comes back
        ("suppressed", "sending", False),
    ],
)
def test_transitions(before, after, allowed):
    assert TouchState(before).can_become(TouchState(after)) is allowed


def test_every_state_has_its_transitions_and_none_to_itself():
    assert set(TRANSITIONS) == set(TouchState)
    for state, targets in TRANSITIONS.items():
        assert state not in targets


def test_every_reason_has_a_one_line_meaning():
    for reason in Reason:
        assert reason.meaning.strip(), reason
        assert "\n" not in reason.meaning


def test_every_reason_names_its_states():
    for reason in Reason:
        assert reason.states, reason
    assert Reason.MISSED.states == (TouchState.SKIPPED,)
    assert Reason.SMTP_RETRY.states == (TouchState.PLANNED,)
    assert all(reason.states == (TouchState.SKIPPED,) for reason in REPLANNABLE)
    # Only `sent` goes without a reason, except for the two that say how it was sent.
    assert {r for r in Reason if TouchState.SENT in r.states} == {Reason.CALL_TASK, Reason.RESENT_AFTER_INTERRUPTION}


def test_reasons_keep_the_strings_stored_today():
    assert Reason.MISSED == "missed"
    assert Reason.STAGE_CHANGED == "stage_changed"
    assert Reason.RESENT_AFTER_INTERRUPTION == "resent_after_interruption"
    assert {"stage_changed", "campaign_changed", "step_removed"} == REPLANNABLE


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ("missed", Reason.MISSED, None),
        ("smtp_retry: 451 4.3.0 try later", Reason.SMTP_RETRY, "451 4.3.0 try later"),
        ("smtp_error: 550 5.1.1 no: such user", Reason.SMTP_ERROR, "550 5.1.1 no: such user"),
        ("letters_unavailable: cannot load libpango", Reason.LETTERS_UNAVAILABLE, "cannot load libpango"),
        ("paused until 2026-05-01", Reason.PAUSED, "until 2026-05-01"),
        ("held: away until 2026-12-03", Reason.HELD, "away until 2026-12-03"),
        ("something else: entirely", None, "something else: entirely"),
        (None, None, None),
    ],
)
def test_split_and_with_detail_round_trip(text, reason, detail):
    assert Reason.parse(text) == (reason, detail)
    if reason is not None:
        assert reason.with_detail(detail) == text


def test_meaning_of_a_stored_reason_with_its_detail():
    assert Reason.meaning_of("smtp_retry: 421 busy") == Reason.SMTP_RETRY.meaning
    assert Reason.meaning_of("missed") == Reason.MISSED.meaning
    assert Reason.meaning_of("no idea") is None


def test_members_are_still_strings():
    # Nothing on the enum shadows a str method: a stored reason is used as text too.
    assert Reason.SMTP_RETRY.split("_") == ["smtp", "retry"]
    assert TouchState.PLANNED.upper() == "PLANNED"
    assert f"{Reason.MISSED}" == "missed" and str(Channel.EMAIL) == "email"


def test_channels_events_and_inbound_kinds():
    assert [str(c) for c in Channel] == ["email", "letter", "call"]
    assert [str(k) for k in USER_EVENTS] == ["converted", "replied", "unsubscribed", "bounced", "complained", "stage"]
    assert EventKind("soft_bounce") is EventKind.SOFT_BOUNCE
    assert {str(k) for k in InboundKind} == {
        "reply",
        "auto_reply",
        "bounce_hard",
        "bounce_soft",
        "complaint",
        "unsubscribe",
        "unknown",
    }


def test_the_reference_page_matches_the_enum():
    assert PAGE.read_text(encoding="utf-8") == reasons_markdown(), (
        "docs/reference/reasons.md is out of date: run `python -m dripper.states > docs/reference/reasons.md`"
    )


def test_the_page_lists_every_reason_once():
    page = reasons_markdown()
    for reason in Reason:
        assert page.count(f"| `{reason.value}") == 1, reason


def test_python_m_prints_the_page(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dripper.states"], capture_output=True, text=True, check=True, cwd=PAGE.parents[2]
    )
    assert out.stdout == reasons_markdown()


def _migrate(conn, revision: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    from dripper.store import db

    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    config.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(config, revision)
    conn.commit()


_GLUED = {
    1: "smtp_retry: 451 4.3.0 try later [retrying since 2026-03-02T09:00:00+00:00]",
    2: "paused until 2026-05-01",
    3: "gave_up: smtp_retry: 452 4.2.2 full (retried since 2026-03-02T09:00:00+00:00)",
    4: "missed",
    5: "something: unknown to dripper",
    6: None,
    7: "render_error: 'x' is undefined",
}


def test_migration_0010_moves_the_detail_out_of_the_reason_and_back(tmp_path):
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.connect() as conn:
        _migrate(conn, "0009")
        conn.execute(
            text(
                "INSERT INTO leads (id, email, first_name, last_name, company, stage, stage_entered_at, campaign, "
                "address_line1, address_line2, city, region, postal_code, country, attrs, created_at, updated_at) "
                "VALUES (1, 'a@b.example', '', '', '', 's', '2026-01-01', 'c', '', '', '', '', '', '', '{}', "
                "'2026-01-01', '2026-01-01')"
            )
        )
        for touch_id, reason in _GLUED.items():
            conn.execute(
                text(
                    "INSERT INTO touches (id, lead_id, campaign, step_id, stage, channel, kind, due_at, state, "
                    "reason, attempts, planned_at, updated_at) VALUES (:id, 1, 'c', :step, 's', 'email', 'k', "
                    "'2026-01-01', 'planned', :reason, 0, '2026-01-01', '2026-01-01')"
                ),
                {"id": touch_id, "step": f"s{touch_id}", "reason": reason},
            )
        conn.commit()
        _migrate(conn, "0010")
        split = {i: (r, d) for i, r, d in conn.execute(text("SELECT id, reason, detail FROM touches"))}
        assert split == {
            1: ("smtp_retry", "451 4.3.0 try later [retrying since 2026-03-02T09:00:00+00:00]"),
            2: ("paused", "until 2026-05-01"),
            3: ("gave_up", "smtp_retry: 452 4.2.2 full (retried since 2026-03-02T09:00:00+00:00)"),
            4: ("missed", None),
            5: ("something: unknown to dripper", None),
            6: (None, None),
            7: ("render_error", "'x' is undefined"),
        }
        from dripper.states import reason_text

        assert {i: reason_text(r, d) for i, (r, d) in split.items()} == _GLUED
        _migrate(conn, "0009", down=True)
        assert dict(conn.execute(text("SELECT id, reason FROM touches")).all()) == _GLUED
    engine.dispose()


def test_the_store_shows_a_reason_with_its_detail(tmp_path):
    from datetime import UTC, datetime

    from sqlalchemy import insert, select, update

    from dripper.store import open_store
    from dripper.store.queries import touchrows as touch_q
    from dripper.store.tables import leads, touches

    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with store.begin() as conn:
        conn.execute(
            insert(leads).values(
                id=1, email="a@b.example", stage="s", stage_entered_at=at, campaign="c", created_at=at, updated_at=at
            )
        )
        for touch_id, reason in _GLUED.items():
            conn.execute(
                insert(touches).values(
                    id=touch_id,
                    lead_id=1,
                    campaign="c",
                    step_id=f"s{touch_id}",
                    stage="s",
                    channel="email",
                    kind="k",
                    due_at=at,
                    state="planned",
                    planned_at=at,
                    updated_at=at,
                    **touch_q.reason_columns(reason),
                )
            )
        stored = dict(conn.execute(select(touches.c.id, touches.c.reason)).all())
        assert stored[1] == "smtp_retry" and stored[2] == "paused" and stored[5] == "something: unknown to dripper"
        assert {t["id"]: t["reason"] for t in touch_q.for_lead(conn, 1)} == _GLUED
        assert touch_q.by_id(conn, 7)["reason"] == _GLUED[7]
        # A new reason without detail clears the old detail.
        conn.execute(update(touches).where(touches.c.id == 1).values(**touch_q.reason_columns("missed")))
        assert touch_q.by_id(conn, 1)["reason"] == "missed"
    store.dispose()
