"""GET /metrics (Prometheus, read from the shared database) and JSON log lines.

The figures a scrape reports are checked against what the database holds, on SQLite and
PostgreSQL, after real imports, ticks and events through the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Dripper, dripper_env, free_port, serving, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dripper.clock import FrozenClock, parse_instant
from dripper.store import Store, events, open_store, touches
from dripper.web.metrics import DELAY_BUCKETS

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday
TERMINAL = ("sent", "failed", "suppressed", "skipped")
LOG_KEYS = {"ts", "level", "logger", "msg", "worker"}


# --- helpers --------------------------------------------------------------------------------


class Scraper:
    """The web app on a frozen clock; `scrape(at)` returns {sample name + labels: value}."""

    def __init__(self, client: TestClient, clock: FrozenClock):
        self.client = client
        self.clock = clock

    def scrape(self, at: datetime, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        self.clock.instant = at
        response = self.client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        return parse(response.text)


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def make_app(db_url: str, root: Path, clock: FrozenClock, metrics_token: str | None = None) -> tuple[Starlette, Store]:
    from dripper import config as config_mod
    from dripper.settings import Settings
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    store = open_store(db_url)
    loaded = config_mod.load(Settings(campaigns_path=root / "campaigns.yaml"))
    app = create_app(WebContext(store, loaded, Tokens("test-secret"), clock, None, metrics_token=metrics_token))
    return app, store


@pytest.fixture
def scraper(dripper: Dripper) -> Iterator[Scraper]:
    clock = FrozenClock(T0)
    app, store = make_app(dripper.db_url, dripper.root, clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Scraper(client, clock)
    store.dispose()


def rows(db_url: str) -> list[dict[str, Any]]:
    """Every touch, as the database holds it (a handful in these tests)."""
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(select(touches))]
    finally:
        store.dispose()


def event_kinds(db_url: str) -> list[str]:
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            return list(conn.scalars(select(events.c.kind)))
    finally:
        store.dispose()


def assert_log_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line is one JSON object with the required keys and a UTC timestamp."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no log output"
    parsed = []
    for line in lines:
        record = json.loads(line)  # fails the test on any line that is not JSON
        assert record.keys() >= LOG_KEYS, record
        stamp = parse_instant(record["ts"])
        assert record["ts"].endswith("Z") and stamp.utcoffset() == timedelta(0), record["ts"]
        parsed.append(record)
    return parsed


# --- the figures match the database --------------------------------------------------------


def test_metrics_match_the_database(dripper: Dripper, scraper: Scraper) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    first = dripper.json("tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json")
    dripper("event", "ada@lovelace.example", "replied", "--at", (T0 + timedelta(days=2)).isoformat())
    dripper("event", "grace@hopper.example", "unsubscribed", "--at", (T0 + timedelta(days=2)).isoformat())
    # A tick exactly one day after the earliest pending due time: that touch's delay is exactly
    # 86400 s, on a bucket bound, and must be counted in the le="86400" bucket.
    earliest = min(r["due_at"] for r in rows(dripper.db_url) if r["state"] == "planned")
    second = dripper.json("tick", "--at", (earliest + timedelta(days=1)).isoformat(), "--json")
    assert first["sent"] >= 1 and second["sent"] >= 1

    now = T0 + timedelta(days=40)  # the letters and news steps are due by then, not yet sent
    samples = scraper.scrape(now)
    data = rows(dripper.db_url)

    # counters and gauges by state and channel
    for state in ("planned", "sending", *TERMINAL):
        for channel in ("email", "letter", "call"):
            expected = sum(1 for r in data if r["state"] == state and r["channel"] == channel)
            name = "dripper_touches_total" if state in TERMINAL else "dripper_touches_pending"
            assert value(samples, name, state=state, channel=channel) == expected, (state, channel)
    sent = sum(value(samples, "dripper_touches_total", state="sent", channel=c) for c in ("email", "letter", "call"))
    assert sent == first["sent"] + second["sent"]  # what the ticks reported doing
    report = dripper.json("report", "--json")
    for state in TERMINAL:
        in_report = sum(step[state] for c in report["campaigns"].values() for step in c["steps"].values())
        counted = sum(
            value(samples, "dripper_touches_total", state=state, channel=c) for c in ("email", "letter", "call")
        )
        if state == "suppressed":  # the report also counts the steps stopped tracks will not reach
            assert 0 < counted < in_report
        else:
            assert counted == in_report, state

    # the backlog at that instant
    due = [r["due_at"] for r in data if r["state"] == "planned" and r["due_at"] <= now]
    assert due, "the test wants a backlog"
    assert value(samples, "dripper_touches_due") == len(due)
    assert value(samples, "dripper_touches_oldest_due_seconds") == pytest.approx((now - min(due)).total_seconds())
    # ... and before anything is due, none
    quiet = scraper.scrape(T0 - timedelta(days=1))
    assert value(quiet, "dripper_touches_due") == 0 and value(quiet, "dripper_touches_oldest_due_seconds") == 0

    # the send-delay histogram: cumulative buckets, +Inf == _count == sent, per channel
    for channel in ("email", "letter", "call"):
        delays = [
            (r["sent_at"] - r["due_at"]).total_seconds()
            for r in data
            if r["state"] == "sent" and r["channel"] == channel
        ]
        previous = 0.0
        for bound in DELAY_BUCKETS:
            got = value(samples, "dripper_send_delay_seconds_bucket", channel=channel, le=str(float(bound)))
            assert got == sum(1 for d in delays if d <= bound), (channel, bound)
            assert got >= previous
            previous = got
        assert value(samples, "dripper_send_delay_seconds_bucket", channel=channel, le="+Inf") == len(delays)
        assert value(samples, "dripper_send_delay_seconds_count", channel=channel) == len(delays)
        assert value(samples, "dripper_send_delay_seconds_sum", channel=channel) == pytest.approx(sum(delays))
        assert len(delays) == value(samples, "dripper_touches_total", state="sent", channel=channel)
    exact_day = [r for r in data if r["state"] == "sent" and r["sent_at"] - r["due_at"] == timedelta(days=1)]
    assert exact_day, "the boundary case did not happen"

    # inbound events by kind
    kinds = event_kinds(dripper.db_url)
    assert value(samples, "dripper_events_total", kind="replied") == kinds.count("replied") == 1
    assert value(samples, "dripper_events_total", kind="unsubscribed") == kinds.count("unsubscribed") == 1
    assert value(samples, "dripper_events_total", kind="bounced") == 0

    # a tick at `now` drains the backlog
    dripper("tick", "--at", now.isoformat())
    after = scraper.scrape(now)
    assert value(after, "dripper_touches_due") == 0 and value(after, "dripper_touches_oldest_due_seconds") == 0


def test_sending_expired_counts_claims_past_their_lease(dripper: Dripper, scraper: Scraper) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    claimed = T0 + timedelta(days=14, hours=3)
    # A worker that died mid-send leaves its claim behind: set one up as it would be.
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            victim = conn.scalar(select(touches.c.id).where(touches.c.state == "planned").limit(1))
            conn.execute(
                update(touches)
                .where(touches.c.id == victim)
                .values(state="sending", claimed_at=claimed, claimed_by="dead:1", updated_at=claimed)
            )
    finally:
        store.dispose()
    fresh = scraper.scrape(claimed + timedelta(seconds=30))  # inside the 60 s lease: a live send
    assert value(fresh, "dripper_touches_sending_expired") == 0
    stale = scraper.scrape(claimed + timedelta(seconds=61))
    assert value(stale, "dripper_touches_sending_expired") == 1
    channel = next(r["channel"] for r in rows(dripper.db_url) if r["id"] == victim)
    assert value(stale, "dripper_touches_pending", state="sending", channel=channel) == 1
    dripper("tick", "--at", (claimed + timedelta(seconds=61)).isoformat())  # recovery resends it
    assert value(scraper.scrape(claimed + timedelta(seconds=61)), "dripper_touches_sending_expired") == 0


def test_a_scrape_never_waits_for_the_sqlite_write_lock(dripper_sqlite: Dripper) -> None:
    """The store opens every transaction with BEGIN IMMEDIATE; a scrape must read beside a
    tick's write transaction (WAL), not queue behind it for the 30 s busy timeout."""
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    app, store = make_app(dripper_sqlite.db_url, dripper_sqlite.root, FrozenClock(T0 + timedelta(days=1)))
    try:
        with TestClient(app) as client, store.begin() as conn:
            conn.execute(update(touches).values(updated_at=T0))  # holds the write lock, as a tick does
            started = time.monotonic()
            response = client.get("/metrics")
            assert response.status_code == 200 and time.monotonic() - started < 5
            assert value(parse(response.text), "dripper_touches_due") == 3  # the last committed state
    finally:
        store.dispose()


# --- the token -------------------------------------------------------------------------------


def test_metrics_token(dripper: Dripper) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    app, store = make_app(dripper.db_url, dripper.root, FrozenClock(T0 + timedelta(days=1)), metrics_token="scrape-7")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get("/metrics?token=scrape-7").status_code == 401  # not in URLs: they end up in logs
            ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-7"})
            assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
            assert value(parse(ok.text), "dripper_touches_due") == 3  # the three first touches, due by then
    finally:
        store.dispose()
    open_app, open_store_ = make_app(dripper.db_url, dripper.root, FrozenClock(T0))
    try:
        with TestClient(open_app) as client:  # no token set: open (serve binds 127.0.0.1)
            assert client.get("/metrics").status_code == 200
    finally:
        open_store_.dispose()


def test_unreachable_database_is_a_503_not_a_crash(project: Path) -> None:
    from dripper.store.db import make_engine
    from dripper.web.metrics import metrics_route

    # A real PostgreSQL URL on a port nobody listens on.
    store = Store(make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"))
    app = Starlette(routes=[metrics_route(store, FrozenClock(T0), None)])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 503
    store.dispose()


# --- real processes: `dripper serve` and `dripper run`, with JSON logs ------------------------


def test_dripper_serve_exposes_metrics_and_logs_json(dripper: Dripper, tmp_path: Path) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    sent = dripper.json("tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json")["sent"]
    env = dripper_env(
        DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret", DRIPPER_METRICS_TOKEN="scrape-7"
    )
    with serving(dripper.root, env, tmp_path / "serve.log", before=("--log-format", "json")) as server:
        base = server.base
        assert httpx.get(f"{base}/metrics").status_code == 401
        response = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape-7"})
        assert response.status_code == 200
        samples = parse(response.text)
        assert value(samples, "dripper_touches_total", state="sent", channel="email") == sent
        assert value(samples, "dripper_send_delay_seconds_count", channel="email") == sent
    records = assert_log_lines((tmp_path / "serve.log").read_text())
    assert any(r["logger"] == "uvicorn.access" and "/metrics" in r["msg"] for r in records), records


def test_dripper_run_logs_one_json_object_per_line(project: Path, sqlite_url: str, tmp_path: Path) -> None:
    campaigns = project / "campaigns.yaml"
    # No send window: the first touches go out at once, whatever the hour.
    campaigns.write_text(campaigns.read_text().replace('  send_window: {days: mon-fri, hours: "09:00-17:00"}\n', ""))
    env = {
        **os.environ,
        "DRIPPER_DATABASE_URL": sqlite_url,
        "DRIPPER_SECRET": "s",
        "DRIPPER_TICK_INTERVAL": "0.5",
        "DRIPPER_LOG_FORMAT": "json",
    }
    cli = [sys.executable, "-m", "dripper"]
    subprocess.run([*cli, "leads", "import", "leads.csv"], env=env, check=True, capture_output=True)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        worker = subprocess.Popen([*cli, "run"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: log_path.read_text().count('"tick": {') >= 2, 20, "two ticks in the log")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    records = assert_log_lines(log_path.read_text())
    assert {r["worker"] for r in records} == {records[0]["worker"]}  # one process, one id
    ticks = [r for r in records if "tick" in r and isinstance(r["tick"], dict)]
    assert ticks[0]["logger"] == "dripper.worker" and ticks[0]["msg"].startswith("tick at=")
    assert ticks[0]["tick"]["sent"] == 3 and all(
        isinstance(v, int) for k, v in ticks[0]["tick"].items() if k != "replanned"
    )
    assert any(r["msg"] == "worker stopped" for r in records)


def test_text_log_format_keeps_the_tick_line_readable(project: Path, sqlite_url: str, tmp_path: Path) -> None:
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(campaigns.read_text().replace('  send_window: {days: mon-fri, hours: "09:00-17:00"}\n', ""))
    env = {**os.environ, "DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "s", "DRIPPER_TICK_INTERVAL": "0.5"}
    cli = [sys.executable, "-m", "dripper"]
    subprocess.run([*cli, "leads", "import", "leads.csv"], env=env, check=True, capture_output=True)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        worker = subprocess.Popen([*cli, "--log-format", "text", "run"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: " sent=3 " in log_path.read_text(), 20, "the first tick in the log")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    line = next(ln for ln in log_path.read_text().splitlines() if " sent=3 " in ln)
    assert " INFO dripper.worker tick at=" in line and "{" not in line


def test_a_bad_log_format_is_refused(dripper_sqlite: Dripper) -> None:
    result = dripper_sqlite("--log-format", "xml", "check", ok=2)
    assert "xml" in result.stderr
    result = dripper_sqlite("check", ok=2, DRIPPER_LOG_FORMAT="yaml")
    assert "yaml" in result.stderr
