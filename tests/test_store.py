"""The store: migrations, first use by several processes at once, the shared secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from conftest import PG_ADMIN

from dripper.store import db, open_store


def test_head_constant_matches_the_migrations():
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == db.HEAD


# Each process imports first and then waits for the same instant, so that the first
# connections really meet (importing takes long and varies, which would stagger them).
_OPEN_AT_ONCE = """
import os, time
from dripper.store import open_store
time.sleep(max(0.0, float(os.environ["OPEN_AT"]) - time.time()))
print(open_store(os.environ["DRIPPER_DATABASE_URL"]).secret())
"""


def _start_many(url: str, cwd: Path, n: int = 8) -> list[subprocess.CompletedProcess[bytes]]:
    env = {**os.environ, "DRIPPER_DATABASE_URL": url, "OPEN_AT": str(time.time() + 3)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT_ONCE], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(n)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(60), *p.communicate()) for p in procs]


def test_first_use_by_several_processes_at_once_sqlite(tmp_path: Path):
    results = _start_many(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
    assert all(r.returncode == 0 for r in results), [r.stderr.decode() for r in results]
    assert len({r.stdout for r in results}) == 1  # one secret, shared


def test_first_use_by_several_processes_at_once_postgres(pg_database: str, tmp_path: Path):
    name = f"dripper_test_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg_database.rsplit("/", 1)[0] + "/" + name
        results = _start_many(url, tmp_path)
        assert all(r.returncode == 0 for r in results), [r.stderr.decode() for r in results]
        assert len({r.stdout for r in results}) == 1
        store = open_store(url)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == db.HEAD
        store.dispose()
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unreachable_database_is_a_clear_error():
    with pytest.raises(db.StoreUnavailable, match="cannot open database"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/none")
