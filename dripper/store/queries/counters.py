"""Counters behind the sending limits: taken atomically, so N workers together never
send more than the limit (other tools count per worker and overshoot N-fold)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, select, tuple_, update

from dripper.store import upsert
from dripper.store.tables import send_counters

Key = tuple[str, int, datetime]  # scope, window seconds, window start


def take(
    conn: Connection, limits: dict[Key, int], demands: Sequence[tuple[int, Sequence[Key]]]
) -> tuple[set[int], dict[Key, int]]:
    """Admit, in order, each demand (an id and the counters it needs) whose counters all
    have room; count the admitted ones. Returns the admitted ids and the new counts."""
    if not demands:
        return set(), {}
    keys = list(limits)
    insert = upsert.insert(conn, send_counters)
    conn.execute(
        insert.on_conflict_do_nothing(),
        [{"scope": s, "window_seconds": w, "window_start": t, "count": 0} for s, w, t in keys],
    )
    key_columns = tuple_(send_counters.c.scope, send_counters.c.window_seconds, send_counters.c.window_start)
    query = select(
        send_counters.c.scope, send_counters.c.window_seconds, send_counters.c.window_start, send_counters.c.count
    ).where(key_columns.in_(keys))
    if conn.dialect.name == "postgresql":  # SQLite: the transaction already holds the write lock
        query = query.with_for_update()
    used = {(s, w, t): n for s, w, t, n in conn.execute(query)}
    added: dict[Key, int] = {}
    admitted: set[int] = set()
    for item, needs in demands:
        if all(used[k] + added.get(k, 0) < limits[k] for k in needs):
            for k in needs:
                added[k] = added.get(k, 0) + 1
            admitted.add(item)
    if added:
        conn.execute(
            update(send_counters)
            .where(
                send_counters.c.scope == bindparam("k_scope"),
                send_counters.c.window_seconds == bindparam("k_w"),
                send_counters.c.window_start == bindparam("k_start"),
            )
            .values(count=send_counters.c.count + bindparam("k_add")),
            [{"k_scope": s, "k_w": w, "k_start": t, "k_add": n} for (s, w, t), n in added.items()],
        )
    return admitted, {k: used[k] + added.get(k, 0) for k in used}


def forget_before(conn: Connection, cutoff: datetime) -> int:
    return conn.execute(delete(send_counters).where(send_counters.c.window_start < cutoff)).rowcount or 0


def window_start(now: datetime, seconds: int) -> datetime:
    """Fixed windows aligned to the epoch (whole minutes, hours, UTC days)."""
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    elapsed = int((now - epoch).total_seconds())
    return epoch + timedelta(seconds=elapsed - elapsed % seconds)
