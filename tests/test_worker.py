"""`dripper run` as a real process: it ticks, survives a broken edit, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_ticks_keeps_last_good_config_and_stops_on_sigterm(project: Path, sqlite_url: str, tmp_path: Path):
    campaigns = project / "campaigns.yaml"
    # No send window: the test must not depend on the hour it runs at.
    campaigns.write_text(campaigns.read_text().replace('  send_window: {days: mon-fri, hours: "09:00-17:00"}\n', ""))
    env = {**os.environ, "DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "s", "DRIPPER_TICK_INTERVAL": "0.5"}
    cli = [sys.executable, "-m", "dripper"]
    subprocess.run(cli + ["leads", "import", "leads.csv"], env=env, check=True, capture_output=True)
    # A lead whose two-week reminder falls due a few seconds from now.
    entered = datetime.now(timezone.utc) - timedelta(days=14) + timedelta(seconds=4)
    subprocess.run(cli + ["leads", "add", "late@lead.example", "--stage", "supplier_research", "--at", entered.isoformat()],
                   env=env, check=True, capture_output=True)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(cli + ["run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        outbox = project / "outbox"
        wait_for(lambda: len(list(outbox.glob("*.eml"))) >= 4, 20, "the first tick's e-mails")
        campaigns.write_text(campaigns.read_text().replace("after: 2w", "after: 2 weeks"))  # a broken edit
        wait_for(lambda: b"keeping the last good version" in (tmp_path / "worker.log").read_bytes(), 10,
                 "the rejected edit in the log")
        wait_for(lambda: any("reminder-1" in p.name for p in outbox.glob("*.eml")), 15,
                 "the reminder, sent with the last good version")
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
