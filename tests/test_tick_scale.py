"""A tick's cost follows the touches that are due, not the touches kept.

The queries a tick runs go through the partial indexes of pending touches (or the
primary key), in due order with a limit where they read the queue: plans that do not
depend on the planner's guess of how many touches are "planned and due", which column
statistics get wrong on a live system (most touches are long due but sent, most planned
ones lie ahead). `bench/scale.py` measures the same at 100,000 and 1,000,000 leads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, event, insert, text

from dripper.store import Store, open_store
from dripper.store.queries import touchrows as touch_q
from dripper.store.tables import leads, touches

T = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
LEADS, STEPS, DUE = 2000, 8, 40


def _populate(conn: Connection) -> None:
    """A live system's shape: each lead's past touches sent, the future ones planned; DUE
    touches due now, one lead each."""
    conn.execute(
        insert(leads),
        [
            {
                "id": i,
                "email": f"lead{i}@example.com",
                "stage": "supplier_research",
                "campaign": "c",
                "stage_entered_at": T,
                "attrs": {},
                "created_at": T,
                "updated_at": T,
            }
            for i in range(1, LEADS + 1)
        ],
    )
    rows = []
    for i in range(1, LEADS + 1):
        entered = T - timedelta(minutes=30) if i <= DUE else T - timedelta(days=i % 200)
        for k in range(STEPS):
            due = entered + timedelta(days=28 * k)
            state = "planned" if due > T or i <= DUE else "sent"
            rows.append(
                {
                    "lead_id": i,
                    "campaign": "c",
                    "step_id": f"s{k}",
                    "stage": "supplier_research",
                    "channel": "email",
                    "kind": "follow_up",
                    "due_at": due,
                    "state": state,
                    "attempts": 0,
                    "message_id": f"<{i}.{k}@x>" if state == "sent" else None,
                    "planned_at": entered,
                    "updated_at": T,
                }
            )
    conn.execute(insert(touches), rows)


@contextlib.contextmanager
def _captured(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def grab(_c: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        seen.append((statement, parameters[0] if many else parameters))

    event.listen(conn, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", grab)


def _plan(conn: Connection, statement: str, parameters: Any) -> str:
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
    else:
        rows = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()]
    return "\n".join(rows)


def _plans(conn: Connection, step: Callable[[Connection], Any]) -> list[str]:
    with _captured(conn) as seen:
        step(conn)
    return [_plan(conn, statement, parameters) for statement, parameters in seen]


@contextlib.contextmanager
def _opened(url: str) -> Iterator[Store]:
    store = open_store(url)
    try:
        yield store
    finally:
        store.dispose()


def test_tick_queries_read_the_pending_indexes(db_url: str):
    with _opened(db_url) as store:
        with store.begin() as conn:
            _populate(conn)
        with store.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        postgres = store.is_postgres
        full_scan = "Seq Scan on touches" if postgres else "SCAN touches"
        by_id = "touches_pkey" if postgres else "INTEGER PRIMARY KEY"
        with store.engine.connect() as conn, conn.begin():
            steps: list[tuple[str, Callable[[Connection], Any], str]] = [
                (
                    "recover_interrupted",
                    lambda c: touch_q.recover_interrupted(c, T, timedelta(seconds=60)),
                    "ix_touches_sending",
                ),
                ("count_due", lambda c: touch_q.count_due(c, T, "email", up_to=10), "ix_touches_planned_due"),
                ("next_due", lambda c: touch_q.next_due(c, T), "ix_touches_planned_due"),
                ("claim", lambda c: touch_q.claim(c, T, T, "w", 16), "ix_touches_planned_due"),
            ]
            for label, step, index in steps:
                for plan in _plans(conn, step):
                    assert index in plan, (label, plan)
                    assert full_scan not in plan, (label, plan)
            held = touch_q.claim(conn, T, T, "w", 8)
            assert held
            outcomes = [(t.id, {"state": "sent", "sent_at": T, "updated_at": T}) for t in held]
            with _captured(conn) as seen:
                assert touch_q.finish_many(conn, "w", outcomes) == len(held)  # each row found...
            plans = [_plan(conn, statement, parameters) for statement, parameters in seen]
            assert plans and all(by_id in plan and full_scan not in plan for plan in plans), plans
            assert touch_q.finish_many(conn, "w", outcomes) == 0  # ...and recorded once


def test_count_due_stops_at_its_limit(sqlite_url: str):
    with _opened(sqlite_url) as store, store.begin() as conn:
        _populate(conn)
        assert touch_q.count_due(conn, T, "email", up_to=1000) == DUE
        assert touch_q.count_due(conn, T, "email", up_to=5) == 5
        assert touch_q.count_due(conn, T, "letter", up_to=1000) == 0


def test_the_partial_indexes_exist_on_both_databases(db_url: str):
    with _opened(db_url) as store:
        with store.begin() as conn:
            if store.is_postgres:
                names = set(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'touches'")))
            else:
                names = set(
                    conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'touches'"))
                )
        assert {"ix_touches_planned_due", "ix_touches_sending"} <= names
        assert "ix_touches_state_due" not in names
