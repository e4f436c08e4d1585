"""Scale-out on PostgreSQL, proven with real processes: several `dripper` workers, a real
SMTP server in its own process, crashes (kill -9), an SMTP outage and SIGTERM under load.

Why separate processes everywhere: a worker in a thread of the test would share the
test's GIL and could not be killed with SIGKILL; the SMTP sink in its own process keeps
counting while workers die, and can be stopped and started again on the same port.

What "exactly once" means here, measured at the SMTP server: every due touch's Message-ID
arrives, each once, and a touch is `sent` in the database only if the server has it.
The one exception the design allows: a worker killed with messages in flight may deliver
those again (at most `max_in_flight` of them), only as `resent_after_interruption`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import wait_for

from tests.support.db import sql
from tests.support.smtp import SinkProcess as Sink

T0 = datetime(2026, 1, 5, 15, 0, 5, tzinfo=UTC)  # Monday, inside the fixture's send window
MAX_IN_FLIGHT = 4  # the default, which bounds what a crash can send twice
CLI = [sys.executable, "-m", "dripper"]


# --- the SMTP sink: a separate process (tests/support/smtp.py) --------------------------


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    folder = tmp_path / "sink"
    folder.mkdir()
    sink = Sink(folder)
    sink.start()
    yield sink
    sink.kill()


# --- the database and the workers -------------------------------------------------------


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied: this module is about PostgreSQL only."""
    from conftest import _empty_pg

    _empty_pg(pg_database)
    return pg_database


@dataclass
class Setup:
    project: Path
    db_url: str
    sink: Sink
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)  # killed at teardown if still running
    extra: dict[str, str] = field(default_factory=dict)  # more environment for every process of the test

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DRIPPER_DATABASE_URL": self.db_url,
            "DRIPPER_SMTP_URL": self.sink.url,
            "DRIPPER_SECRET": "s",
            "DRIPPER_BASE_URL": "https://acme.example",
            **self.extra,
            **extra,
        }

    def start_with(self, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        """A worker process with this environment on top of the test's, its output dropped."""
        process = subprocess.Popen(
            CLI + list(args),
            env=self.env(**env),
            cwd=self.project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started.append(process)
        return process

    def dripper(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            CLI + list(args), env=self.env(), cwd=self.project, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"dripper {' '.join(args)}: {result.returncode}\n{result.stderr}"
        return result

    def start(self, *args: str, pipe: bool = False, log: Path | None = None) -> subprocess.Popen[bytes]:
        """A worker process: its output piped (`pipe`), written to `log`, or dropped."""
        out: IO[bytes] | int = subprocess.PIPE if pipe else subprocess.DEVNULL
        if log is not None:
            out = open(log, "ab")
        try:
            process = subprocess.Popen(
                CLI + list(args),
                env=self.env(),
                cwd=self.project,
                stdout=out,
                stderr=subprocess.PIPE if pipe else subprocess.STDOUT,
            )
            self.started.append(process)
            return process
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]

    def import_leads(self, n: int, at: datetime) -> None:
        """n leads whose first step (`thanks`, after 0d) is due from `at` on."""
        rows = "".join(f"lead{i}@x{i % 13}.example,Lead{i},supplier_research\n" for i in range(n))
        (self.project / "many.csv").write_text("email,first_name,stage\n" + rows)
        self.dripper("leads", "import", "many.csv", "--at", at.isoformat())

    def rows(self) -> list[dict[str, Any]]:
        """Every `thanks` touch: the ones due in these tests."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return [
                    dict(r._mapping)
                    for r in conn.execute(
                        text(
                            # the reason as `plan` shows it: with its detail (stored apart)
                            "SELECT id, state, CASE WHEN detail IS NULL THEN reason "
                            "ELSE reason || ': ' || detail END AS reason, message_id, claimed_by, attempts FROM touches "
                            "WHERE step_id = 'thanks' ORDER BY id"
                        )
                    )
                ]
        finally:
            engine.dispose()

    def states(self) -> Counter[str]:
        return Counter(r["state"] for r in self.rows())

    def sql(self, statement: str, **params: Any) -> list[Any]:
        return sql(self.db_url, statement, **params)

    def wait_out_the_lease(self, lease: float) -> None:
        """Wait, on the real clock, until the lease on every touch still `sending` has run
        out: `lease` seconds (and a margin) after its last renewal."""
        last = self.sql("SELECT max(claimed_at) FROM touches WHERE state = 'sending'")[0][0]
        assert last is not None
        ends = last.replace(tzinfo=UTC) + timedelta(seconds=lease + 0.5)
        wait_for(lambda: datetime.now(UTC) > ends, lease + 30, "the lease to run out")

    def next_touches(self) -> Counter[str]:
        """The states of the touch after `thanks` (`reminder-1`): planned by each outcome in
        the commit that records it (a track is planned one touch ahead)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return Counter(
                    dict(
                        conn.execute(
                            text("SELECT state, count(*) FROM touches WHERE step_id = 'reminder-1' GROUP BY state")
                        ).all()
                    )
                )
        finally:
            engine.dispose()


@pytest.fixture
def setup(project: Path, pg_url: str, sink: Sink) -> Iterator[Setup]:
    setup = Setup(project, pg_url, sink)
    yield setup
    for process in setup.started:  # a failed test must not leave workers sending
        if process.poll() is None:
            process.kill()
            process.wait(10)


def without_send_window(project: Path) -> None:
    """`dripper run` ticks on the wall clock: the test must not depend on the hour."""
    campaigns = project / "campaigns.yaml"
    text = campaigns.read_text()
    window = '  send_window: {days: mon-fri, hours: "09:00-17:00"}\n'
    assert window in text
    campaigns.write_text(text.replace(window, ""))


def assert_exactly_once(setup: Setup, n: int) -> None:
    """n due touches, all `sent`; the server has each Message-ID once and nothing else;
    the database's Message-IDs are exactly the server's."""
    rows = setup.rows()
    received = setup.sink.received()
    ids = Counter(mid for mid, _ in received)
    assert len(rows) == n
    assert Counter(r["state"] for r in rows) == {"sent": n}
    duplicates = {mid: c for mid, c in ids.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} Message-IDs received more than once: {list(duplicates)[:5]}"
    assert len(received) == n
    assert {r["message_id"] for r in rows} == set(ids)
    assert setup.next_touches() == {"planned": n}  # every track goes on, once (the key is unique)


# --- a. several workers share the queue, exactly once ------------------------------------

N = 1500


def test_three_tick_processes_send_each_due_touch_exactly_once(setup: Setup) -> None:
    """Three `dripper tick` processes at the same instant, side by side: SKIP LOCKED
    shares the queue; no touch is claimed twice, none is left behind."""
    setup.import_leads(N, T0)
    at = (T0 + timedelta(minutes=1)).isoformat()
    workers = [setup.start("tick", "--at", at, "--json", pipe=True) for _ in range(3)]
    outs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], [e.decode()[-2000:] for _, e in outs]
    counts = [json.loads(o) for o, _ in outs]
    assert_exactly_once(setup, N)
    assert sum(c["sent"] for c in counts) == N
    assert all(c["sent"] > 0 for c in counts), counts  # the claims were shared, not one worker's
    by_worker = Counter(r["claimed_by"] for r in setup.rows())
    assert len(by_worker) == 3 and sorted(by_worker.values()) == sorted(c["sent"] for c in counts)


def test_three_run_workers_send_each_due_touch_exactly_once_and_stop_cleanly(setup: Setup) -> None:
    """Three long-running `dripper run` workers on the wall clock; SIGTERM once all is sent."""
    without_send_window(setup.project)
    setup.import_leads(N, datetime.now(UTC) - timedelta(hours=1))
    workers = [setup.start("run", "--interval", "1") for _ in range(3)]
    try:
        wait_for(lambda: setup.sink.count() >= N, 90, f"{N} messages at the server")
        wait_for(lambda: setup.states() == {"sent": N}, 10, "every touch recorded as sent")
        for w in workers:
            w.send_signal(signal.SIGTERM)
        assert [w.wait(timeout=10) for w in workers] == [0, 0, 0]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert_exactly_once(setup, N)
    by_worker = Counter(r["claimed_by"] for r in setup.rows())
    assert len(by_worker) == 3, by_worker  # each worker sent a share


# --- b. kill -9 mid-send ------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The processes a worker forked (its render worker): they must not outlive it."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] not in "ZX"
    except OSError:
        return False


def test_kill_9_mid_send_loses_nothing_and_duplicates_at_most_what_was_in_flight(setup: Setup) -> None:
    """A worker dies with SIGKILL while the (slow) server holds its messages. After the
    lease (15 s here, on the real clock whatever `--at` says), a tick takes its touches
    again: every touch is sent; the only messages the server gets twice are the ones that
    were in flight, marked as resent."""
    n = 300  # enough for a render worker process (200 due) and a claimed batch ahead
    lease = 15.0  # long enough for the tick right after the kill to start within it, on a loaded machine
    setup.extra["DRIPPER_LEASE_SECONDS"] = str(lease)
    setup.import_leads(n, T0)
    setup.sink.slow(0.1)
    at = T0 + timedelta(minutes=1)
    worker = setup.start("tick", "--at", at.isoformat())
    try:
        wait_for(lambda: setup.sink.count() >= 60, 60, "the worker to be well into sending")
        forked = children(worker.pid)
        worker.kill()
        assert worker.wait(10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    wait_for(lambda: not any(alive(c) for c in forked), 10, "the render worker to follow its parent")
    before = setup.states()
    assert before["sending"] > 0 and before["sent"] < n, before  # it really died mid-send
    setup.sink.slow(0)
    soon = json.loads(setup.dripper("tick", "--at", (at + timedelta(hours=1)).isoformat(), "--json").stdout)
    assert soon["recovered"] == 0  # the lease still holds, although --at is an hour on: the touches wait
    setup.wait_out_the_lease(lease)
    later = json.loads(setup.dripper("tick", "--at", (at + timedelta(hours=1)).isoformat(), "--json").stdout)
    assert later["recovered"] == before["sending"]

    rows = setup.rows()
    assert Counter(r["state"] for r in rows) == {"sent": n}
    received = Counter(mid for mid, _ in setup.sink.received())
    assert {r["message_id"] for r in rows} == set(received)  # nothing lost
    twice = {mid for mid, c in received.items() if c > 1}
    assert all(c <= 2 for c in received.values())
    assert len(twice) <= MAX_IN_FLIGHT, len(twice)
    resent = {r["message_id"] for r in rows if r["reason"] == "resent_after_interruption"}
    assert twice <= resent and len(resent) == before["sending"]
    assert setup.next_touches() == {"planned": n}  # and every track goes on


# --- c. the SMTP server goes away and comes back ----------------------------------------


def test_an_smtp_outage_mid_run_delivers_everything_exactly_once(setup: Setup) -> None:
    """The server stops while `dripper run` sends: what it did not accept goes back to
    `planned` (smtp_retry), nothing is `sent` that it does not have; it comes back on
    the same port and a later tick delivers the rest, each message once."""
    n = 200
    without_send_window(setup.project)
    setup.import_leads(n, datetime.now(UTC) - timedelta(hours=1))
    setup.sink.slow(0.05)  # about 80 messages a second: the outage falls mid-run
    worker = setup.start("run", "--interval", "1", log=setup.project / "worker.log")
    try:
        wait_for(lambda: setup.sink.count() >= 40, 60, "the first messages")
        setup.sink.stop()
        time.sleep(3)  # the worker ticks on against a closed port
        wait_for(lambda: setup.states()["sending"] == 0, 20, "no touch left in flight")
        rows = setup.rows()
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    received = setup.sink.received()
    sent = [r for r in rows if r["state"] == "sent"]
    waiting = [r for r in rows if r["state"] != "sent"]
    assert waiting, "the outage came too late to matter"
    assert all(r["state"] == "planned" and r["reason"].startswith("smtp_retry: ") for r in waiting), Counter(
        (r["state"], r["reason"]) for r in waiting
    )
    assert len(sent) == len(received) == len({mid for mid, _ in received})  # nothing sent unaccepted
    assert {r["message_id"] for r in sent} == {mid for mid, _ in received}

    setup.sink.slow(0)
    setup.sink.start()  # the same port
    # Retries are due 5 min after their failure (10, 20, ... after more): an hour later
    # every one is due.
    later = datetime.now(UTC) + timedelta(hours=1)
    counts = json.loads(setup.dripper("tick", "--at", later.isoformat(), "--json").stdout)
    assert counts["sent"] == len(waiting)
    assert_exactly_once(setup, n)


# --- d. SIGTERM under load ----------------------------------------------------------------


def stop_within_grace(worker: subprocess.Popen[Any]) -> None:
    """SIGTERM: the worker must exit 0 within the 10 s the contract gives it."""
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 10


def test_sigterm_mid_send_exits_in_time_and_leaves_nothing_behind(setup: Setup) -> None:
    """`dripper run` stopped while a slow server holds its sends: it exits 0 within 10 s,
    its in-flight sends are recorded, what it claimed but had not started is released at
    once (not left to the 60 s lease), and a tick then sends the rest, each once."""
    n = 200
    without_send_window(setup.project)
    setup.import_leads(n, datetime.now(UTC) - timedelta(hours=1))
    setup.sink.slow(0.2)
    worker = setup.start("run", "--interval", "1", log=setup.project / "worker.log")
    try:
        wait_for(lambda: setup.sink.count() >= 30, 60, "the worker to be well into sending")
        stop_within_grace(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    states = setup.states()
    assert states["sending"] == 0, states
    assert 0 < states["sent"] == setup.sink.count() < n
    setup.sink.slow(0)
    counts = json.loads(setup.dripper("tick", "--json").stdout)  # now: the released touches are due
    assert counts["sent"] == n - states["sent"] and counts["recovered"] == 0
    assert_exactly_once(setup, n)


def test_sigterm_with_the_server_hung_leaves_only_the_hung_sends(setup: Setup) -> None:
    """The server never answers: after the grace the worker gives up its in-flight sends
    (at most max_in_flight touches stay `sending`, no longer renewed: for the lease) and
    exits 0 within 10 s; everything it claimed but had not started is released at once."""
    n = 200
    lease = 5.0
    setup.extra["DRIPPER_LEASE_SECONDS"] = str(lease)
    without_send_window(setup.project)
    setup.import_leads(n, datetime.now(UTC) - timedelta(hours=1))
    setup.sink.slow(60)
    worker = setup.start("run", "--interval", "1", log=setup.project / "worker.log")
    try:
        wait_for(lambda: setup.sink.count() >= MAX_IN_FLIGHT, 60, "every send slot to hang")
        time.sleep(0.5)
        stop_within_grace(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    states = setup.states()
    assert states == {"sending": MAX_IN_FLIGHT, "planned": n - MAX_IN_FLIGHT}, states
    hung = {r["id"] for r in setup.rows() if r["state"] == "sending"}
    setup.sink.stop()  # its hung sessions go with it
    setup.sink.slow(0)
    setup.sink.start()
    setup.wait_out_the_lease(lease)  # the hung ones' lease runs out: nobody renews it any more
    counts = json.loads(setup.dripper("tick", "--json").stdout)
    assert counts["recovered"] == MAX_IN_FLIGHT and counts["sent"] == n
    rows = setup.rows()
    assert Counter(r["state"] for r in rows) == {"sent": n}
    received = Counter(mid for mid, _ in setup.sink.received())
    assert {r["message_id"] for r in rows} == set(received)
    twice = {mid for mid, c in received.items() if c > 1}
    # The server had the hung messages (it never said so): they arrive twice, marked.
    assert twice == {r["message_id"] for r in rows if r["id"] in hung}
    assert all(r["reason"] == "resent_after_interruption" for r in rows if r["id"] in hung)


# --- e. leases: renewed while sends are in flight, on the real clock ---------------------


def test_a_slow_server_and_a_second_worker_deliver_nothing_twice(setup: Setup) -> None:
    """Issue 15, repro A: each message takes the server longer than a lease to answer, and
    a second worker ticks all along. The first renews its leases while its sends are in flight and
    while the touches it claimed ahead wait for a slot, so the second takes none of them:
    every message arrives once. The second does take a dead worker's claim once its lease
    has run out, which shows that the short lease of this test is in force."""
    lease = 4.0  # a beat every second: a loaded machine may delay one or two, not four
    setup.extra["DRIPPER_LEASE_SECONDS"] = str(lease)
    without_send_window(setup.project)
    n = 5
    setup.import_leads(n, datetime.now(UTC) - timedelta(hours=1))
    dead = setup.sql(
        "UPDATE touches SET state = 'sending', claimed_by = 'dead:1', claimed_at = :now, "
        "attempts = 1 WHERE id = (SELECT min(id) FROM touches WHERE step_id = 'thanks') RETURNING id",
        now=datetime.now(UTC).replace(tzinfo=None),
    )[0][0]
    setup.sink.slow(1.5 * lease)
    first = setup.start("tick", "--max-in-flight", "2")  # 2 in flight, 2 claimed ahead: 4 leases in all
    second = setup.start("run", "--interval", "0.5")
    try:
        assert first.wait(120) == 0
        wait_for(lambda: setup.states() == {"sent": n}, 30, "the dead worker's touch to be sent by the second")
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
    assert_exactly_once(setup, n)
    resent = {r["id"] for r in setup.rows() if r["reason"] == "resent_after_interruption"}
    assert resent == {dead}  # the dead worker's claim only: none of the live one's


def test_a_tick_at_a_later_instant_takes_nothing_a_live_worker_is_sending(setup: Setup) -> None:
    """Issue 15, repro B: while a tick's sends wait for a slow server, `tick --at` an hour
    later takes none of them: a lease runs out by the real clock, whatever --at says."""
    n = 6  # 4 in flight, 2 claimed ahead
    without_send_window(setup.project)
    setup.import_leads(n, datetime.now(UTC) - timedelta(hours=1))
    setup.sink.slow(25)  # within the client's 30 s timeout; released below, once the second tick is done
    first = setup.start("tick")
    try:
        wait_for(lambda: setup.sink.count() >= MAX_IN_FLIGHT, 60, "the first tick's sends to reach the server")
        later = datetime.now(UTC) + timedelta(hours=1)
        counts = json.loads(setup.dripper("tick", "--at", later.isoformat(), "--json").stdout)
        setup.sink.slow(0)
        assert first.wait(60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert counts["recovered"] == 0 and counts["sent"] == 0, counts
    assert_exactly_once(setup, n)
    assert not any(r["reason"] == "resent_after_interruption" for r in setup.rows())


def test_a_worker_stalled_past_the_lease_sends_nothing_taken_over(setup: Setup, tmp_path: Path) -> None:
    """A worker stopped (SIGSTOP: a frozen VM, a swapped-out process) for longer than a
    lease is taken for dead: another worker takes its claims and sends them. When it
    resumes, it renews before it hands anything over, finds them gone, and sends none of
    them; only what it had in flight when it stopped arrives twice, marked as resent."""
    lease = 3.0
    setup.extra["DRIPPER_LEASE_SECONDS"] = str(lease)
    without_send_window(setup.project)
    n = 20
    setup.import_leads(n, datetime.now(UTC) - timedelta(hours=1))
    other = Sink(tmp_path / "other")  # the second worker's server: whose message came from whom
    other.folder.mkdir()
    other.start()
    setup.sink.slow(5.0)  # the first sends wait there: no fifth has started when the worker stops
    stalled = setup.start("tick")
    try:
        wait_for(lambda: setup.sink.count() >= MAX_IN_FLIGHT, 60, "the first sends to reach the server")
        stalled.send_signal(signal.SIGSTOP)
        time.sleep(0.3)  # bytes it wrote before it stopped reach the server
        in_flight = setup.sink.count()
        taker = setup.start_with({"DRIPPER_SMTP_URL": other.url}, "run", "--interval", "0.5")
        wait_for(lambda: setup.states() == {"sent": n}, 60, "the second worker to send every touch")
        taker.send_signal(signal.SIGTERM)
        assert taker.wait(10) == 0
        stalled.send_signal(signal.SIGCONT)
        assert stalled.wait(60) == 0
    finally:
        for process in setup.started:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
        other.stop()
    assert setup.sink.count() == in_flight <= MAX_IN_FLIGHT  # it sent nothing more once it resumed
    rows = setup.rows()
    assert Counter(r["state"] for r in rows) == {"sent": n}
    received = Counter(mid for mid, _ in setup.sink.received() + other.received())
    assert {r["message_id"] for r in rows} == set(received)
    twice = {mid for mid, c in received.items() if c > 1}
    assert twice == {mid for mid, _ in setup.sink.received()}  # what was in flight, and only that
    assert twice <= {r["message_id"] for r in rows if r["reason"] == "resent_after_interruption"}
