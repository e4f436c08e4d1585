"""`dripper run` as a real process: it ticks, survives a broken edit, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import wait_for


def test_run_ticks_keeps_last_good_config_and_stops_on_sigterm(project: Path, sqlite_url: str, tmp_path: Path):
    campaigns = project / "campaigns.yaml"
    # No send window: the test must not depend on the hour it runs at.
    campaigns.write_text(campaigns.read_text().replace('  send_window: {days: mon-fri, hours: "09:00-17:00"}\n', ""))
    env = {**os.environ, "DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "s", "DRIPPER_TICK_INTERVAL": "0.5"}
    cli = [sys.executable, "-m", "dripper"]
    subprocess.run([*cli, "leads", "import", "leads.csv"], env=env, check=True, capture_output=True)
    # A lead whose two-week reminder falls due a few seconds from now.
    entered = datetime.now(UTC) - timedelta(days=14) + timedelta(seconds=4)
    subprocess.run(
        [*cli, "leads", "add", "late@lead.example", "--stage", "supplier_research", "--at", entered.isoformat()],
        env=env,
        check=True,
        capture_output=True,
    )
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([*cli, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        outbox = project / "outbox"
        wait_for(lambda: len(list(outbox.glob("*.eml"))) >= 4, 20, "the first tick's e-mails")
        campaigns.write_text(campaigns.read_text().replace("after: 2w", "after: 2 weeks"))  # a broken edit
        wait_for(
            lambda: b"keeping the last good version" in (tmp_path / "worker.log").read_bytes(),
            10,
            "the rejected edit in the log",
        )
        wait_for(
            lambda: any("reminder-1" in p.name for p in outbox.glob("*.eml")),
            15,
            "the reminder, sent with the last good version",
        )
        assert worker.poll() is None
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
    text = (tmp_path / "worker.log").read_text()
    assert "campaigns.yaml:" in text and "bad duration" in text
    assert "worker stopped" in text
    assert len(list((project / "outbox").glob("*.eml"))) == 5  # 4 on the first tick, then the reminder


def test_a_second_worker_on_sqlite_is_refused_clearly(project: Path, sqlite_url: str, tmp_path: Path):
    env = {**os.environ, "DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "s", "DRIPPER_TICK_INTERVAL": "5"}
    cli = [sys.executable, "-m", "dripper"]
    log = open(tmp_path / "first.log", "wb")
    first = subprocess.Popen([*cli, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"started" in (tmp_path / "first.log").read_bytes(), 20, "the first worker")
        second = subprocess.run([*cli, "run"], env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert "SQLite serves one worker" in second.stderr and "PostgreSQL" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    finally:
        if first.poll() is None:
            first.kill()
        log.close()


def test_a_singleton_job_runs_on_one_worker_at_a_time(db_url: str):
    """The lock behind IMAP polling and print batches, across two processes."""
    from dripper.store import open_store
    from dripper.store.locks import held

    store = open_store(db_url)
    probe = (
        f"import sys; from dripper.store import open_store; from dripper.store.locks import held\n"
        f"with held(open_store({db_url!r}), 'job') as mine: sys.exit(0 if mine else 3)"
    )
    try:
        with held(store, "job") as mine:
            assert mine
            assert subprocess.run([sys.executable, "-c", probe]).returncode == 3  # another worker holds it
            with held(store, "other-job") as other:
                assert other  # locks are per job
        assert subprocess.run([sys.executable, "-c", probe]).returncode == 0  # released
    finally:
        store.dispose()
