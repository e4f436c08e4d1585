"""The do-not-contact list (`suppressions`): what dripper.leads.suppression reads and writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, tuple_

from dripper.store import upsert
from dripper.store.tables import suppressions


@dataclass(frozen=True)
class SuppressionRow:
    id: int
    kind: str  # address | domain
    value: str  # the address's keyed hash, or the domain
    reason: str
    created_at: datetime


def add(conn: Connection, entries: Iterable[tuple[str, str]], reason: str, at: datetime) -> int:
    """Add (kind, value) entries; one already listed keeps its first reason. Returns how many were new."""
    pairs = list(dict.fromkeys(entries))
    if not pairs:
        return 0
    known = sum(len(listed(conn, kind, [v for k, v in pairs if k == kind])) for kind in {k for k, _ in pairs})
    rows = [{"kind": kind, "value": value, "reason": reason, "created_at": at} for kind, value in pairs]
    statement = upsert.insert(conn, suppressions).on_conflict_do_nothing(index_elements=["kind", "value"])
    conn.execute(statement, rows)
    return len(pairs) - known


def listed(conn: Connection, kind: str, values: Sequence[str]) -> set[str]:
    """Which of `values` (of `kind`) are on the list."""
    if not values:
        return set()
    query = select(suppressions.c.value).where(suppressions.c.kind == kind, suppressions.c.value.in_(list(values)))
    return set(conn.scalars(query))


def every(conn: Connection) -> list[SuppressionRow]:
    query = select(suppressions).order_by(suppressions.c.id)
    return [SuppressionRow(r.id, r.kind, r.value, r.reason, r.created_at) for r in conn.execute(query)]


def values_of(conn: Connection, kind: str) -> frozenset[str]:
    return frozenset(conn.scalars(select(suppressions.c.value).where(suppressions.c.kind == kind)))


def remove(conn: Connection, entries: Iterable[tuple[str, str]]) -> int:
    pairs = list(entries)
    if not pairs:
        return 0
    result = conn.execute(delete(suppressions).where(tuple_(suppressions.c.kind, suppressions.c.value).in_(pairs)))
    return result.rowcount or 0


__all__ = ["SuppressionRow", "add", "every", "listed", "remove", "values_of"]
