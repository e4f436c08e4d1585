"""A track planned one touch ahead (`dripper.track`): which rows to write, what is to come."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dripper.campaign.model import Step
from dripper.planning.track import Known, advance, entry, superseded, upcoming

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def step(name: str) -> Step:
    return Step(id=name, after="0d", channel="email", subject="s", template="t.html")


# Five steps, two weeks apart.
TRACK = [(step(f"s{i}"), T0 + 14 * i * DAY) for i in range(5)]


def known(**rows: str) -> dict[str, Known]:
    """s1="sent", s2="planned", s3="skipped:stage_changed", ... (planned at T0)."""
    out = {}
    for name, text in rows.items():
        state, _, reason = text.partition(":")
        out[name] = Known(state, reason or None, T0)
    return out


def names(planned) -> list[tuple[str, bool]]:
    return [(p.step.id, p.missed) for p in planned]


def test_a_new_lead_gets_its_first_step_only():
    assert names(entry(TRACK, {}, T0, T0)) == [("s0", False)]


def test_entry_leaves_done_steps_alone_and_plans_the_next_open_one():
    rows = known(s0="sent", s1="skipped:stage_changed")  # back in the stage: s1 is planned again
    assert names(entry(TRACK, rows, T0, T0)) == [("s1", False)]
    assert names(entry(TRACK, known(s0="sent", s1="failed"), T0, T0)) == [("s2", False)]


def test_entry_moves_what_is_pending_and_plans_nothing_behind_it():
    assert names(entry(TRACK, known(s0="sent", s1="planned"), T0, T0)) == [("s1", False)]  # due time follows
    assert entry(TRACK, known(s0="sent", s1="sending"), T0, T0) == []


def test_entry_skips_what_is_more_than_a_day_overdue_on_the_way():
    # Planned 30 days after the stage began: s0 (day 0) and s1 (day 14) are missed, s2 (day 28) is late
    # by two days too, s3 (day 42) is the next touch.
    at = T0 + 30 * DAY
    assert names(entry(TRACK, {}, at, T0)) == [("s0", True), ("s1", True), ("s2", True), ("s3", False)]
    assert names(entry(TRACK, {}, T0 + 28 * DAY + timedelta(hours=20), T0)) == [
        ("s0", True),
        ("s1", True),
        ("s2", False),
    ]


def test_a_step_inserted_before_the_pending_one_is_planned_beside_it():
    rows = known(s0="sent", s2="planned")  # s1 is new in the campaign
    assert names(entry(TRACK, rows, T0 + 14 * DAY, T0)) == [("s1", False), ("s2", False)]
    assert names(entry(TRACK, rows, T0 + 20 * DAY, T0)) == [("s1", True), ("s2", False)]


def test_a_closed_track_gets_nothing_new():
    rows = known(s0="sent", s1="suppressed:unsubscribed")
    assert entry(TRACK, rows, T0, T0) == []
    assert advance(TRACK, known(s0="sent", s1="suppressed:replied"), "s0", T0, T0) == []
    # ...unless it was closed on an earlier stay in the stage
    earlier = {"s1": Known("suppressed", "replied", T0 - DAY)}
    assert names(entry(TRACK, {**known(s0="sent"), **earlier}, T0, T0)) == [("s2", False)]


def test_advance_plans_the_next_step():
    assert names(advance(TRACK, known(s0="sent"), "s0", T0, T0)) == [("s1", False)]
    assert names(advance(TRACK, known(s0="sent", s1="sent"), "s0", T0, T0)) == [("s2", False)]  # done before
    assert advance(TRACK, known(s0="sent", s1="planned"), "s0", T0, T0) == []  # a full plan of old
    assert advance(TRACK, known(s4="sent"), "s4", T0, T0) == []  # the end of the track
    assert advance(TRACK, {}, "not-in-the-track", T0, T0) == []


def test_advance_catches_up_with_only_the_latest_due_step():
    at = T0 + 45 * DAY  # s1 (day 14), s2 (day 28) and s3 (day 42) are all due
    assert names(advance(TRACK, known(s0="sent"), "s0", at, T0)) == [("s1", True), ("s2", True), ("s3", False)]


def test_superseded_needs_a_day_overdue_and_a_later_step_due():
    assert superseded(TRACK, 1, T0 + 29 * DAY)  # s1 is 15 days late and s2 is due
    assert not superseded(TRACK, 1, T0 + 27 * DAY)  # s2 not due yet: s1 still goes out
    assert not superseded(TRACK, 4, T0 + 200 * DAY)  # the last step is never superseded


def test_upcoming_lists_the_steps_after_the_pending_one():
    rows = known(s0="sent", s1="planned")
    assert [(u.step.id, u.due, u.suppressed_by, u.missed) for u in upcoming(TRACK, rows, T0)] == [
        ("s2", T0 + 28 * DAY, None, False),
        ("s3", T0 + 42 * DAY, None, False),
        ("s4", T0 + 56 * DAY, None, False),
    ]


def test_upcoming_of_a_closed_track_is_suppressed_for_its_reason():
    rows = known(s0="sent", s1="suppressed:unsubscribed")
    assert {(u.step.id, u.suppressed_by) for u in upcoming(TRACK, rows, T0)} == {
        ("s2", "unsubscribed"),
        ("s3", "unsubscribed"),
        ("s4", "unsubscribed"),
    }


def test_upcoming_of_a_finished_or_moved_track_is_empty():
    assert list(upcoming(TRACK, known(s0="sent", s1="sent", s2="sent", s3="sent", s4="sent"), T0)) == []
    assert list(upcoming(TRACK, known(s0="sent", s1="skipped:stage_changed"), T0)) == []


def test_upcoming_of_a_held_touch_foresees_what_it_will_pass_over():
    rows = known(s0="sent", s1="planned")  # s1 held by a pause until day 50
    back = T0 + 50 * DAY
    assert [(u.step.id, u.due, u.missed) for u in upcoming(TRACK, rows, T0, resume=back)] == [
        ("s2", T0 + 28 * DAY, True),
        ("s3", back, False),
        ("s4", T0 + 56 * DAY, False),
    ]
