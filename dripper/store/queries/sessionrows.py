"""Queries for the dashboard's sessions and failed logins (`dripper.dashboard` decides the policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, and_, delete, or_, select, update

from dripper.store import upsert
from dripper.store.tables import dashboard_login_failures as failures_t
from dripper.store.tables import dashboard_sessions as sessions_t


@dataclass(frozen=True)
class Lockout:
    """How many wrong tokens (`limit`) within `window` lock a client out, and for how long."""

    limit: int
    window: timedelta
    lock: timedelta


# --- sessions ---------------------------------------------------------------------------------


def add_session(conn: Connection, id_hash: str, token_mac: str, issued: datetime, expires: datetime) -> None:
    """A new session; sessions that have expired are deleted on the way (ended or not)."""
    conn.execute(delete(sessions_t).where(sessions_t.c.expires_at <= issued))
    conn.execute(sessions_t.insert().values(id_hash=id_hash, token_mac=token_mac, issued_at=issued, expires_at=expires))


def session(conn: Connection, id_hash: str) -> RowMapping | None:
    return conn.execute(select(sessions_t).where(sessions_t.c.id_hash == id_hash)).mappings().first()


def end_session(conn: Connection, id_hash: str, at: datetime) -> None:
    """Logged out: the row stays until it expires, marked ended."""
    conn.execute(
        update(sessions_t).where(sessions_t.c.id_hash == id_hash, sessions_t.c.ended_at.is_(None)).values(ended_at=at)
    )


# --- failed logins --------------------------------------------------------------------------


def locked_until(conn: Connection, client: str, now: datetime) -> datetime | None:
    """Until when `client` is locked out, or None if it is not."""
    until = conn.scalar(select(failures_t.c.locked_until).where(failures_t.c.client == client))
    return until if until is not None and until > now else None


def record_failure(conn: Connection, client: str, now: datetime, policy: Lockout) -> datetime | None:
    """Count a wrong token from `client`; until when it is locked out if this one locks it."""
    conn.execute(
        upsert.insert(conn, failures_t).values(client=client, failures=0, first_failed_at=now).on_conflict_do_nothing()
    )
    row = conn.execute(select(failures_t).where(failures_t.c.client == client).with_for_update()).mappings().one()
    if row["failures"] == 0 or now - row["first_failed_at"] >= policy.window:
        failures, first = 1, now  # a new window
    else:
        failures, first = row["failures"] + 1, row["first_failed_at"]
    until = now + policy.lock if failures >= policy.limit else None
    if until is not None:
        failures = 0  # once the lock ends, the client starts afresh
    conn.execute(
        update(failures_t)
        .where(failures_t.c.client == client)
        .values(failures=failures, first_failed_at=first, locked_until=until)
    )
    _prune_failures(conn, now, policy)
    return until


def clear_failures(conn: Connection, client: str) -> None:
    """The right token: what this client got wrong before is forgotten."""
    conn.execute(delete(failures_t).where(failures_t.c.client == client))


def _prune_failures(conn: Connection, now: datetime, policy: Lockout) -> None:
    """Rows that neither lock nor count any more."""
    conn.execute(
        delete(failures_t).where(
            and_(
                or_(failures_t.c.locked_until.is_(None), failures_t.c.locked_until <= now),
                failures_t.c.first_failed_at <= now - policy.window,
            )
        )
    )
