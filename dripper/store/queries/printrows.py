"""Queries for print batches and the letters in them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, func, select, update

from dripper.store import upsert
from dripper.store.tables import leads, letter_batches, letters, touches


def open_batch(conn: Connection, day: str, now: datetime) -> str:
    """The batch that takes a day's letters now: the day's first batch not yet mailed,
    else a new one (`DAY`, then `DAY-2`, …)."""
    query = (
        select(letter_batches.c.id)
        .where(letter_batches.c.day == day, letter_batches.c.mailed_at.is_(None))
        .order_by(letter_batches.c.created_at, letter_batches.c.id)
        .limit(1)
    )
    while True:
        found = conn.scalar(query)
        if found is not None:
            return str(found)
        taken = conn.scalar(select(func.count()).where(letter_batches.c.day == day)) or 0
        batch = day if taken == 0 else f"{day}-{taken + 1}"
        # Two workers may open it at once: the second one's insert does nothing.
        conn.execute(
            upsert.insert(conn, letter_batches).on_conflict_do_nothing(),
            {"id": batch, "day": day, "created_at": now, "version": 0, "built_version": 0},
        )


def add_letters(conn: Connection, rows: Sequence[dict[str, Any]], day: str, now: datetime) -> str:
    """Put produced letters (touch_id, file, pages, format, address, sort_key) into the
    day's open batch; a letter already in a batch stays where it is."""
    batch = open_batch(conn, day, now)
    result = conn.execute(
        upsert.insert(conn, letters).on_conflict_do_nothing(),
        [{**row, "batch_id": batch, "created_at": now} for row in rows],
    )
    added = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)
    conn.execute(
        update(letter_batches)
        .where(letter_batches.c.id == batch)
        .values(version=letter_batches.c.version + max(added, 1))
    )
    return batch


def stale(conn: Connection) -> list[RowMapping]:
    """Batches whose merged PDF does not show every letter they hold yet."""
    query = select(letter_batches).where(letter_batches.c.version > letter_batches.c.built_version)
    return [row._mapping for row in conn.execute(query.order_by(letter_batches.c.id))]


def in_batch(conn: Connection, batch: str) -> list[RowMapping]:
    """The batch's letters in print order: by country and postal code (presorted mail
    costs less), then lead."""
    query = (
        select(
            letters,
            touches.c.campaign,
            touches.c.step_id,
            leads.c.email,
            leads.c.first_name,
            leads.c.last_name,
            leads.c.id.label("lead_id"),
        )
        .join(touches, touches.c.id == letters.c.touch_id)
        .join(leads, leads.c.id == touches.c.lead_id)
        .where(letters.c.batch_id == batch)
        .order_by(letters.c.sort_key, leads.c.email, letters.c.touch_id)
    )
    return [row._mapping for row in conn.execute(query)]


def mark_built(conn: Connection, batch: str, version: int, count: int, pages: int, now: datetime) -> None:
    conn.execute(
        update(letter_batches)
        .where(letter_batches.c.id == batch, letter_batches.c.built_version < version)
        .values(built_version=version, built_at=now, letters=count, pages=pages)
    )


def mark_mailed(conn: Connection, batch: str, now: datetime, by: str) -> bool:
    """Record the hand-off to the post; False when there is no such open batch."""
    result = conn.execute(
        update(letter_batches)
        .where(letter_batches.c.id == batch, letter_batches.c.mailed_at.is_(None))
        .values(mailed_at=now, mailed_by=by)
    )
    return bool(result.rowcount)


def get(conn: Connection, batch: str) -> RowMapping | None:
    row = conn.execute(select(letter_batches).where(letter_batches.c.id == batch)).first()
    return row._mapping if row else None


def listing(conn: Connection, limit: int = 60) -> list[RowMapping]:
    query = select(letter_batches).order_by(letter_batches.c.day.desc(), letter_batches.c.id.desc()).limit(limit)
    return [row._mapping for row in conn.execute(query)]


def open_batches(conn: Connection) -> list[RowMapping]:
    """Batches not yet marked mailed, oldest first."""
    query = select(letter_batches).where(letter_batches.c.mailed_at.is_(None)).order_by(letter_batches.c.id)
    return [row._mapping for row in conn.execute(query)]


def unsubmitted(conn: Connection, batch: str) -> list[RowMapping]:
    return [row for row in in_batch(conn, batch) if row["provider_ref"] is None]


def set_provider_ref(conn: Connection, touch_id: int, ref: str) -> None:
    conn.execute(update(letters).where(letters.c.touch_id == touch_id).values(provider_ref=ref))


def for_touches(conn: Connection, touch_ids: Sequence[int]) -> dict[int, RowMapping]:
    if not touch_ids:
        return {}
    query = (
        select(letters, letter_batches.c.mailed_at)
        .join(letter_batches, letter_batches.c.id == letters.c.batch_id)
        .where(letters.c.touch_id.in_(list(touch_ids)))
    )
    return {row.touch_id: row._mapping for row in conn.execute(query)}


__all__ = [
    "add_letters",
    "for_touches",
    "get",
    "in_batch",
    "listing",
    "mark_built",
    "mark_mailed",
    "open_batch",
    "open_batches",
    "set_provider_ref",
    "stale",
    "unsubmitted",
]
