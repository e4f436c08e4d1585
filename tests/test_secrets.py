"""Secrets: the SQLite file (which holds the generated secret) is private from its creation."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
THIRTEEN_MONTHS_ON = datetime(2027, 2, 6, 10, 0, tzinfo=UTC)
CAMPAIGN = "literature-follow-up"
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the database file ---------------------------------------------------------------------------

def test_the_sqlite_database_and_its_companions_are_created_private(tmp_path: Path) -> None:
    from dripper.store import open_store

    old_umask = os.umask(0o022)  # the usual one: without care, files come out 0644
    try:
        store = open_store(f"sqlite:///{tmp_path / 'dripper.db'}")
        secret = store.secret()  # generated and written into the file
        with store.begin() as conn:  # a connection in WAL mode keeps -wal and -shm while open
            conn.exec_driver_sql("SELECT 1")
            files = {p.name: mode(p) for p in tmp_path.iterdir()}
        store.dispose()
    finally:
        os.umask(old_umask)
    assert secret and {"dripper.db", "dripper.db-wal", "dripper.db-shm", "dripper.db.migrate-lock"} <= files.keys()
    assert files == {name: 0o600 for name in files}, {name: oct(m) for name, m in files.items()}


def test_a_database_file_others_can_read_gets_a_warning_and_is_left_as_it_is(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from dripper.store import open_store

    path = tmp_path / "dripper.db"
    open_store(f"sqlite:///{path}").dispose()
    path.chmod(0o644)  # as dripper made it before
    with caplog.at_level(logging.WARNING, logger="dripper.store"):
        store = open_store(f"sqlite:///{path}")
        assert store.secret()  # it still runs: a lint is a warning
        store.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "dripper.store"]
    assert any(f"{path} has mode 0644" in w and f"chmod 600 {path}" in w for w in warnings), warnings
    assert mode(path) == 0o644  # not tightened behind the owner's back (a group may read it on purpose)
    path.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dripper.store"):
        open_store(f"sqlite:///{path}").dispose()
    assert not [r for r in caplog.records if r.name == "dripper.store"]
