"""Campaign-version queries: the schedule of each campaign as planning last applied it
(`planner.reconcile` compares campaigns.yaml with it, `dripper diff` shows the difference)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text

from dripper.store.tables import campaign_versions

# The advisory lock key that serializes reconciles on PostgreSQL ("driq"); workers of
# every version must agree on it.
_PG_RECONCILE_LOCK = 0x64726971


@dataclass(frozen=True)
class VersionRow:
    """A campaign's applied version, as campaign_versions keeps it."""

    campaign: str
    fingerprint: str
    definition: dict[str, Any] | None  # None: recorded before migration 0008
    applied_at: datetime


def all_versions(conn: Connection) -> list[VersionRow]:
    return [
        VersionRow(row.campaign, row.fingerprint, row.definition, row.applied_at)
        for row in conn.execute(select(campaign_versions))
    ]


def names(conn: Connection) -> set[str]:
    """The campaigns that have an applied version."""
    return set(conn.scalars(select(campaign_versions.c.campaign)))


def insert(conn: Connection, campaign: str, fingerprint: str, definition: dict[str, Any], applied_at: datetime) -> None:
    conn.execute(
        campaign_versions.insert().values(
            campaign=campaign, fingerprint=fingerprint, definition=definition, applied_at=applied_at
        )
    )


def replace(
    conn: Connection, campaign: str, fingerprint: str, definition: dict[str, Any], applied_at: datetime
) -> None:
    conn.execute(
        campaign_versions.update()
        .where(campaign_versions.c.campaign == campaign)
        .values(fingerprint=fingerprint, definition=definition, applied_at=applied_at)
    )


def upgrade(conn: Connection, campaign: str, fingerprint: str, definition: dict[str, Any]) -> None:
    """Give a version recorded before definitions were kept its definition and current
    fingerprint; it keeps the instant it was applied at."""
    conn.execute(
        campaign_versions.update()
        .where(campaign_versions.c.campaign == campaign)
        .values(fingerprint=fingerprint, definition=definition)
    )


def delete(conn: Connection, campaign: str) -> None:
    conn.execute(campaign_versions.delete().where(campaign_versions.c.campaign == campaign))


def lock_for_reconcile(conn: Connection) -> bool:
    """On PostgreSQL, wait for the lock that lets one worker at a time reconcile (held to
    the end of the transaction); whether it was taken. SQLite needs none: a write
    transaction there already holds the database's one write lock."""
    if conn.dialect.name != "postgresql":
        return False
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_RECONCILE_LOCK})
    return True


__all__ = ["VersionRow", "all_versions", "delete", "insert", "lock_for_reconcile", "names", "replace", "upgrade"]
