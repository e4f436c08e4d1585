"""SQLite serves one `dripper run` at a time; PostgreSQL takes any number of workers."""

from __future__ import annotations

from dripper.store import Store
from dripper.store.locks import ProcessLock


class AnotherWorker(Exception):
    """A worker already runs on this SQLite database."""


def claim(store: Store) -> ProcessLock | None:
    """The lock that makes this process the database's only worker, held until released;
    None when the database takes several (PostgreSQL). Raises AnotherWorker when taken."""
    if store.is_postgres:
        return None
    lock = ProcessLock(store, "worker")
    if not lock.acquire():
        raise AnotherWorker(store.engine.url.database or "")
    return lock
