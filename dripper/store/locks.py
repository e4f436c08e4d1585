"""Named locks shared by every worker on one database: a periodic job that must run on
one worker at a time (IMAP polling, print batches) runs where its lock was taken.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection held
for the job; it is released when the job ends, or by the server when the worker dies.
SQLite: an exclusive `flock` on a file beside the database; the kernel releases it when
the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from typing import IO

from sqlalchemy import text

from dripper.store.db import Store


def _key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL's advisory lock space)."""
    return int.from_bytes(hashlib.sha256(f"dripper:{name}".encode()).digest()[:8], "big", signed=True)


def _lock_file(store: Store, name: str) -> str | None:
    database = store.engine.url.database
    if not database or database == ":memory:":
        return None
    return f"{database}.{name}.lock"


@contextlib.contextmanager
def held(store: Store, name: str) -> Iterator[bool]:
    """Try to take the lock `name` without waiting: yields True when this worker holds it
    (and runs the job), False when another worker does."""
    if store.is_postgres:
        with store.engine.connect() as conn:
            taken = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}))
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                    conn.commit()
        return
    path = _lock_file(store, name)
    if path is None:
        yield True
        return
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


class ProcessLock:
    """A lock held for the life of a process (`dripper run` on SQLite: one worker)."""

    def __init__(self, store: Store, name: str):
        self._path = _lock_file(store, name)
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        if self._path is None:
            return True
        handle = open(self._path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


__all__ = ["ProcessLock", "held"]
