"""A tick's cost must follow the number of DUE touches, not the number of leads.

For each lead count, a fresh PostgreSQL database is created, dripper creates the schema,
and the database is then filled directly with SQL (generate_series), independent of the
import code: every lead is on a track of the shipped campaigns.yaml (the steps of its
stage up to seven months, ~8 touches a lead), entered its stage at some moment of the
last eight months, and its touches are in the states a live system would show at that
instant: past touches `sent` (e-mails with a Message-ID, letters in mailed print batches,
calls as call tasks), a few `skipped: missed`, the next one of unsubscribed leads
`suppressed`, the next one of the others `planned` (a track is planned one touch ahead:
the steps after that have no rows yet). Exactly --due touches (e-mail steps, one per lead,
less than an hour overdue) are due at the tick instant T. Then VACUUM ANALYZE and a
CHECKPOINT, so every size starts from the same state.

Then `python -m dripper tick --at T --json` runs as a subprocess (file outbox) and its
wall time and peak resident memory are measured (GNU time's %M: the largest process
of the command, i.e. the tick or its forked render worker). Every tick runs on a fresh
copy of the populated database (CREATE DATABASE … TEMPLATE, then a CHECKPOINT); with
--rounds R the sizes take turns R times (this machine is noisy) and the median is
reported.

    python -m bench.scale [--leads 100000,1000000] [--due 10000] [--rounds 1]
                          [--explain] [--commands] [--keep]

--explain: EXPLAIN (ANALYZE, BUFFERS) of every statement a tick runs (captured from the
real functions, in a transaction that is rolled back), for the largest size.
--commands: wall time and peak RSS of `dripper plan EMAIL` and `dripper report --json`
at the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGNS = ROOT / "campaigns.yaml"
T = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # a Tuesday, 09:00 in Chicago: inside the window
T_SQL = "timestamp '2026-03-10 15:00:00'"  # the same instant, naive UTC as the store keeps it
TRACK_DAYS = 215  # steps up to seven months of a stage's track: ~8 touches a lead
HISTORY_MINUTES = 240 * 24 * 60  # leads entered their stage over the last eight months
LOADED = ", ".join(f"'{t}'::regclass" for t in ("leads", "touches", "letters", "letter_batches", "calls", "events"))
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of a command
ADMIN = os.environ.get("DRIPPER_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def _pg_params() -> dict[str, str]:
    return dict(part.split("=", 1) for part in ADMIN.split())


def url_for(name: str) -> str:
    p = _pg_params()
    return (
        f"postgresql+psycopg://{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{name}"
    )


def dsn_for(name: str) -> str:
    return " ".join(f"{k}={v}" for k, v in {**_pg_params(), "dbname": name}.items())


def admin(sql: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def drop(name: str) -> None:
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the campaign as SQL rows ---------------------------------------------------------------


def _interval(after: Any) -> str:
    return f"{after.months} months {after.days} days {after.seconds} seconds"


def step_rows(config: Any) -> tuple[str, list[tuple[Any, ...]], list[str]]:
    """(campaign, rows of (stage_no, stage, ord, step_id, channel, kind, after, due_no), stages).
    due_no numbers the e-mail steps after 0d a due touch may be (per stage), else None."""
    name = config.default_campaign
    campaign = config.campaigns[name]
    rows: list[tuple[Any, ...]] = []
    stages = []
    for stage, steps in campaign.stages.items():
        track = [s for s in steps if s.after.approx_days() <= TRACK_DAYS]
        if not track:
            continue
        stage_no = len(stages)
        stages.append(stage)
        due_no = 0
        for order, step in enumerate(track):
            eligible = step.channel == "email" and step.after.approx_days() > 0
            rows.append(
                (
                    stage_no,
                    stage,
                    order,
                    step.id,
                    step.channel,
                    step.kind,
                    _interval(step.after),
                    due_no if eligible else None,
                )
            )
            due_no += eligible
    return name, rows, stages


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- population ----------------------------------------------------------------------------


def populate(name: str, leads: int, due: int) -> dict[str, float]:
    """Create the database, let dripper create the schema, fill it with SQL."""
    from dripper.campaign.model import load
    from dripper.planning.planner import record_versions
    from dripper.store import open_store

    if due > leads:
        raise SystemExit("--due cannot exceed the number of leads (one due touch per lead)")
    admin(f'CREATE DATABASE "{name}"')
    store = open_store(url_for(name))  # dripper's own migrations create the schema
    config = load(CAMPAIGNS)
    with store.begin() as conn:
        record_versions(conn, config, T)  # the campaigns as planned: reconcile has nothing to do
    store.dispose()
    campaign, rows, stages = step_rows(config)
    stride = leads // due
    is_due = f"((({{id}} - 1) % {stride}) = 0 AND (({{id}} - 1) / {stride}) < {due})"
    timings: dict[str, float] = {}
    with psycopg.connect(dsn_for(name), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK trigger per row of a bulk load
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(
            "CREATE TEMP TABLE bench_steps (stage_no int, stage text, ord int, step_id text, channel text,"
            " kind text, after interval, due_no int)"
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bench_steps VALUES (%s, %s, %s, %s, %s, %s, %s::interval, %s)", rows)
        conn.execute(
            "CREATE TEMP TABLE bench_due AS SELECT stage_no, count(due_no) AS n FROM bench_steps GROUP BY stage_no"
        )

        # Secondary indexes and unique constraints are dropped for the load and rebuilt
        # after it from their own definitions (a bulk build instead of 8 million random
        # inserts); primary keys and foreign keys stay.
        rebuild = conn.execute(f"""
            SELECT format('DROP INDEX %I', i.indexrelid::regclass::text), pg_get_indexdef(i.indexrelid)
            FROM pg_index i WHERE i.indrelid IN ({LOADED}) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            UNION ALL
            SELECT format('ALTER TABLE %I DROP CONSTRAINT %I', c.conrelid::regclass::text, c.conname),
                   format('ALTER TABLE %I ADD CONSTRAINT %I %s', c.conrelid::regclass::text, c.conname,
                          pg_get_constraintdef(c.oid))
            FROM pg_constraint c WHERE c.conrelid IN ({LOADED}) AND c.contype = 'u'
        """).fetchall()
        for drop_sql, _create in rebuild:
            conn.execute(drop_sql)

        started = time.perf_counter()
        lead_due = is_due.format(id="i")
        conn.execute(f"""
            INSERT INTO leads (id, email, first_name, last_name, company, stage, stage_entered_at, campaign,
                               timezone, address_line1, address_line2, city, region, postal_code, country, attrs,
                               created_at, updated_at, unsubscribed_at)
            SELECT i, 'lead' || i || '@company' || (i % 20000) || '.example', 'First' || i, 'Last' || i,
                   'Company ' || (i % 20000), st.stage, e.entered, {_literal(campaign)},
                   CASE WHEN i % 10 = 3 THEN 'America/New_York' END,
                   i || ' Main St', '', 'Springfield', 'IL', '62701', 'US',
                   json_build_object('product', 'pump ' || (i % 7)), e.entered, e.entered,
                   CASE WHEN NOT {lead_due} AND i % 40 = 7 AND e.entered + interval '20 days' < {T_SQL}
                        THEN e.entered + interval '20 days' END
            FROM generate_series(1, {leads}) AS i
            JOIN (SELECT DISTINCT stage_no, stage FROM bench_steps) st ON st.stage_no = i % {len(stages)}
            JOIN bench_due dc ON dc.stage_no = st.stage_no
            CROSS JOIN LATERAL (SELECT CASE
                WHEN {lead_due} THEN {T_SQL}
                    - (SELECT s.after FROM bench_steps s
                       WHERE s.stage_no = st.stage_no AND s.due_no = ((i - 1) / {stride}) % dc.n)
                    - (((i - 1) / {stride}) % 50) * interval '1 minute'
                ELSE {T_SQL} - ((i::bigint * 7919) % {HISTORY_MINUTES}) * interval '1 minute'
            END AS entered) e
        """)
        timings["leads"] = time.perf_counter() - started

        started = time.perf_counter()
        touch_due = is_due.format(id="l.id")
        conn.execute(f"""
            INSERT INTO touches (lead_id, campaign, step_id, stage, channel, kind, due_at, state, reason, attempts,
                                 message_id, planned_at, claimed_at, claimed_by, sent_at, updated_at)
            SELECT lead_id, campaign, step_id, stage, channel, kind, due_at, state, reason, attempts,
                   message_id, planned_at, claimed_at, claimed_by, sent_at, updated_at
            FROM (
            SELECT l.id AS lead_id, l.campaign, s.step_id, l.stage, s.channel, s.kind, d.due AS due_at, x.state,
                   CASE x.state WHEN 'suppressed' THEN 'unsubscribed' WHEN 'skipped' THEN 'missed'
                                WHEN 'sent' THEN CASE WHEN s.channel = 'call' THEN 'call_task' END END AS reason,
                   CASE WHEN x.state = 'sent' THEN 1 ELSE 0 END AS attempts,
                   CASE WHEN x.state = 'sent' AND s.channel = 'email'
                            THEN '<' || md5(l.email || s.step_id) || '.drip@acme.example>'
                        WHEN x.state = 'sent' AND s.channel = 'letter'
                            THEN 'letters/' || l.id || '-' || s.step_id || '.pdf' END AS message_id,
                   l.stage_entered_at AS planned_at,
                   CASE WHEN x.state = 'sent' THEN d.due END AS claimed_at,
                   CASE WHEN x.state = 'sent' THEN 'bench:1' END AS claimed_by,
                   CASE WHEN x.state = 'sent' THEN d.due END AS sent_at,
                   CASE WHEN x.state = 'planned' THEN l.stage_entered_at ELSE least(d.due, {T_SQL}) END AS updated_at,
                   -- a track is planned one touch ahead: its first pending (or suppressed) step has a row,
                   -- the steps after it none yet
                   count(*) FILTER (WHERE x.state IN ('planned', 'suppressed'))
                       OVER (PARTITION BY l.id ORDER BY s.ord) AS ahead
            FROM leads l
            JOIN bench_steps s ON s.stage = l.stage
            CROSS JOIN LATERAL (SELECT l.stage_entered_at + s.after AS due) d
            CROSS JOIN LATERAL (SELECT CASE
                WHEN l.unsubscribed_at IS NOT NULL AND d.due > l.unsubscribed_at THEN 'suppressed'
                WHEN d.due > {T_SQL} THEN 'planned'
                WHEN {touch_due} AND d.due > {T_SQL} - interval '1 hour' THEN 'planned'
                WHEN (l.id + s.ord) % 61 = 0 THEN 'skipped'
                ELSE 'sent'
            END AS state) x
            ) planned
            WHERE state NOT IN ('planned', 'suppressed') OR ahead = 1
            ORDER BY lead_id, due_at
        """)
        timings["touches"] = time.perf_counter() - started

        started = time.perf_counter()
        # Paperwork history: every sent letter in its (mailed) day's print batch, every
        # sent call a call task; an event for each unsubscribe.
        conn.execute("""
            INSERT INTO letter_batches (id, day, created_at, version, built_version, built_at, letters, pages,
                                        mailed_at, mailed_by)
            SELECT day, day, d, 1, 1, d, 0, 0, d + interval '1 day', 'manual'
            FROM (SELECT DISTINCT to_char(due_at, 'YYYY-MM-DD') AS day, date_trunc('day', due_at) AS d
                  FROM touches WHERE channel = 'letter' AND state = 'sent') days
        """)
        conn.execute("""
            INSERT INTO letters (touch_id, batch_id, file, pages, format, address, sort_key, created_at)
            SELECT t.id, to_char(t.due_at, 'YYYY-MM-DD'), t.message_id, 1, 'us-letter',
                   'First Last' || chr(10) || '1 Main St' || chr(10) || 'Springfield IL 62701', 'US 62701', t.sent_at
            FROM touches t WHERE t.channel = 'letter' AND t.state = 'sent'
        """)
        conn.execute("""
            INSERT INTO calls (touch_id, lead_id, day, owner, talking_points, outcome, outcome_at, created_at)
            SELECT t.id, t.lead_id, to_char(t.due_at, 'YYYY-MM-DD'), 'Sales desk', 'Ask about the sample.',
                   CASE WHEN t.id % 3 = 0 THEN NULL ELSE 'reached' END,
                   CASE WHEN t.id % 3 = 0 THEN NULL ELSE t.due_at + interval '2 hours' END, t.sent_at
            FROM touches t WHERE t.channel = 'call' AND t.state = 'sent'
        """)
        conn.execute("""
            INSERT INTO events (lead_id, kind, at, source)
            SELECT id, 'unsubscribed', unsubscribed_at, 'web' FROM leads WHERE unsubscribed_at IS NOT NULL
        """)
        conn.execute("SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))")
        timings["paperwork"] = time.perf_counter() - started
        conn.execute("RESET session_replication_role")

        started = time.perf_counter()
        for _drop, create_sql in rebuild:
            conn.execute(create_sql)
        timings["indexes"] = time.perf_counter() - started

        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
        timings["vacuum"] = time.perf_counter() - started
        found = conn.execute(f"SELECT count(*) FROM touches WHERE state = 'planned' AND due_at <= {T_SQL}").fetchone()[
            0
        ]
        if found != due:
            raise SystemExit(f"population error: {found} touches due at T, wanted {due}")
    return timings


def facts(name: str) -> dict[str, Any]:
    with psycopg.connect(dsn_for(name)) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        touches = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'touches'").fetchone()[0]
        states = dict(conn.execute("SELECT state, count(*) FROM touches GROUP BY state").fetchall())
    return {"size_mb": size / 2**20, "touches": touches, "states": states}


# --- running dripper commands ----------------------------------------------------------------


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str, str, int]:
    """Run a command; (wall seconds, peak RSS MB of its largest process, stdout, stderr, exit code).

    The peak comes from GNU time (`%M`: wait4's ru_maxrss of the command). Not from our own
    wait4: a child's ru_maxrss also counts the parent's memory it was forked from, before exec."""
    out_path, err_path, rss_path = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "rss.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%M", "-o", str(rss_path), *args], env=env, cwd=cwd, stdout=out, stderr=err)
        wall = time.perf_counter() - started
    rss_kb = int(rss_path.read_text().split()[-1])
    return wall, rss_kb / 1024, out_path.read_text(), err_path.read_text(), proc.returncode


def dripper_env(name: str, work: Path) -> dict[str, str]:
    # PYTHONPATH: the command runs the dripper of this tree, whatever else is installed.
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DRIPPER_DATABASE_URL": url_for(name),
        "DRIPPER_CAMPAIGNS": str(CAMPAIGNS),
        "DRIPPER_OUTBOX": str(work / "outbox"),
        "DRIPPER_LETTERS": str(work / "letters"),
        "DRIPPER_CALLS": str(work / "calls"),
        "DRIPPER_SECRET": "bench-secret",
    }


@dataclass
class Tick:
    seconds: float
    rss_mb: float
    touches_read: int = 0  # rows of `touches` the tick read (sequential + through indexes)
    touches_seq_scans: int = 0
    buffers: int = 0  # shared buffers the database touched for the tick (hit + read)


def tick(name: str, at: datetime, due: int) -> Tick:
    """`dripper tick --at AT --json` on database `name`; checks that `due` e-mails went out."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wall, rss, out, err, code = run_measured(
            [sys.executable, "-m", "dripper", "tick", "--at", at.isoformat(), "--json"], dripper_env(name, work), work
        )
        if code != 0:
            raise SystemExit(f"tick failed ({code}): {err}")
        counts = json.loads(out.strip().splitlines()[-1])
        files = len(list((work / "outbox").glob("*.eml"))) if (work / "outbox").is_dir() else 0
        if counts.get("sent") != due or files != due:
            raise SystemExit(f"tick sent {counts} with {files} .eml files; wanted {due}")
    return Tick(wall, rss)


def reset_counters(name: str) -> None:
    with psycopg.connect(dsn_for(name), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")


def read_counters(name: str, result: Tick) -> Tick:
    """What the database did since reset_counters: its statistics, not a clock, so the
    noise of a shared machine does not reach them."""
    time.sleep(1.5)  # the tick's sessions report their statistics as they end
    with psycopg.connect(dsn_for(name), autocommit=True) as conn:
        seq, seq_read, idx_read = conn.execute(
            "SELECT seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables"
            " WHERE relname = 'touches'"
        ).fetchone()
        buffers = conn.execute(
            "SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]
    result.touches_read, result.touches_seq_scans, result.buffers = seq_read + idx_read, seq, buffers
    return result


def commands(name: str) -> list[tuple[str, float, float]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dripper_env(name, work)
        with psycopg.connect(dsn_for(name)) as conn:
            email = conn.execute("SELECT email FROM leads ORDER BY id LIMIT 1 OFFSET 500").fetchone()[0]
        for label, args in (
            ("plan EMAIL", ["plan", email]),
            ("plan EMAIL --json", ["plan", email, "--json"]),
            ("report --json", ["report", "--json"]),
            ("report", ["report"]),
        ):
            wall, rss, _out, err, code = run_measured([sys.executable, "-m", "dripper", *args], env, work)
            if code != 0:
                raise SystemExit(f"{label} failed ({code}): {err}")
            out.append((label, wall, rss))
    return out


# --- EXPLAIN of what a tick runs -----------------------------------------------------------


@contextmanager
def _capture(engine: Any) -> Iterator[list[tuple[str, Any, bool]]]:
    from sqlalchemy import event

    seen: list[tuple[str, Any, bool]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        seen.append((statement, parameters, executemany))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def explain(name: str) -> None:
    """Each step of a tick, run for real in a transaction that is rolled back; each
    statement it ran is then EXPLAIN ANALYZEd in that same transaction."""
    from dripper import config as config_mod
    from dripper.channels.limits import Limiter
    from dripper.planning.planner import Finished, advance, reconcile
    from dripper.sending.tick import CLAIM_BATCH, IDEMPOTENT_IN_FLIGHT, LEASE, RENDER_POOL_MIN
    from dripper.settings import from_env
    from dripper.store import open_store
    from dripper.store.queries import callrows, counters, leadrows, printrows
    from dripper.store.queries import touchrows as touch_q

    settings = from_env({"DRIPPER_CAMPAIGNS": str(CAMPAIGNS)})
    loaded = config_mod.load(settings)
    store = open_store(url_for(name))
    day = T.date().isoformat()
    claim_size = max(2 * IDEMPOTENT_IN_FLIGHT, CLAIM_BATCH)
    limits = loaded.campaigns.limits
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("reconcile (no change)", lambda c: reconcile(c, loaded.planner, T)),
        ("recover_interrupted", lambda c: touch_q.recover_interrupted(c, T, LEASE)),
        ("due e-mails (render pool)", lambda c: touch_q.count_due(c, T, "email", up_to=RENDER_POOL_MIN)),
        ("claim", lambda c: touch_q.claim(c, T, T, "explain", claim_size)),
        (
            "leads of a claimed batch",
            lambda c: leadrows.by_ids(c, [t.lead_id for t in touch_q.claim(c, T, T, "explain", claim_size)]),
        ),
        (
            "finish_many (record outcomes)",
            lambda c: touch_q.finish_many(
                c,
                "explain",
                [
                    (
                        t.id,
                        {"state": "sent", "sent_at": T, "message_id": f"<{t.id}@x>", "reason": None, "updated_at": T},
                    )
                    for t in touch_q.claim(c, T, T, "explain", claim_size)
                ],
            ),
        ),
        (
            "advance (plan the next touches)",
            lambda c: advance(
                c,
                loaded.planner,
                [
                    Finished(t.lead_id, t.campaign, t.stage, t.step_id, t.planned_at)
                    for t in touch_q.claim(c, T, T, "explain", claim_size)
                ],
                T,
            ),
        ),
        ("next_due", lambda c: touch_q.next_due(c, T)),
        ("print batches: open_batch", lambda c: printrows.open_batch(c, day, T)),
        ("print batches: stale", lambda c: printrows.stale(c)),
        ("print batches: open_batches", lambda c: printrows.open_batches(c)),
        ("call list of the day", lambda c: callrows.listing(c, day=day)),
        (
            "send counters: take",
            lambda c: counters.take(
                c,
                {("all", 86400, counters.window_start(T, 86400)): 1000},
                [(1, [("all", 86400, counters.window_start(T, 86400))])],
            ),
        ),
        ("send counters: forget_before", lambda c: counters.forget_before(c, T - timedelta(days=2))),
    ]
    done: set[str] = set()
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of what a tick runs, database {name} (limits active: {limits.active})")
    for label, fn in steps:
        with store.engine.connect() as conn:
            trans = conn.begin()
            try:
                with _capture(store.engine) as seen:
                    fn(conn)
                statements = list(seen)
                for statement, parameters, many in statements:
                    if statement.lstrip().upper().startswith(("SELECT PG_", "SET ", "SHOW ")) or statement in done:
                        continue
                    done.add(statement)
                    params = parameters[0] if many and parameters else parameters
                    plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).scalars().all()
                    print(
                        f"\n--- {label}{' (executemany, first row)' if many else ''}\n"
                        f"{' '.join(statement.split())[:400]}"
                    )
                    for line in plan:
                        print("    " + line)
            finally:
                trans.rollback()
    store.dispose()
    _ = Limiter  # the limiter calls counters.take/forget_before (above) when limits are configured


# --- main ----------------------------------------------------------------------------------


def _exists(name: str) -> bool:
    with psycopg.connect(ADMIN) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _ready(name: str) -> None:
    """A kept database from an earlier run: bring its schema to the current head first
    (a migration inside the timed tick would distort it), then fresh statistics."""
    from dripper.store import open_store

    open_store(url_for(name)).dispose()
    with psycopg.connect(dsn_for(name), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def clone(base: str, name: str) -> None:
    drop(name)
    admin(f'CREATE DATABASE "{name}" TEMPLATE "{base}" STRATEGY FILE_COPY')
    with psycopg.connect(dsn_for(name), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", default="100000,1000000", help="comma-separated lead counts")
    parser.add_argument("--due", type=int, default=10000, help="touches due at the tick instant (e-mails)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="ticks per size, each on a fresh clone, interleaved; median"
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE a tick's statements (largest size)")
    parser.add_argument("--commands", action="store_true", help="also measure plan and report (largest size)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the populated databases (dripper_scale_LEADS_DUE) and reuse them in later runs",
    )
    args = parser.parse_args()
    sizes = [int(x.replace("_", "")) for x in args.leads.split(",")]
    tag = uuid.uuid4().hex[:6]
    bases = {n: f"dripper_scale_{n}_{args.due}" if args.keep else f"dripper_scale_{n}_{tag}" for n in sizes}
    results: dict[int, list[tuple[Tick, Tick]]] = {n: [] for n in sizes}  # (nothing due, --due due)
    info: dict[int, dict[str, Any]] = {}
    work = f"dripper_scale_tick_{tag}"
    try:
        for n in sizes:
            started = time.perf_counter()
            if args.keep and _exists(bases[n]):
                _ready(bases[n])
                note = "kept from an earlier run"
            else:
                drop(bases[n])
                timings = populate(bases[n], n, args.due)
                note = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
            info[n] = facts(bases[n])
            print(
                f"{n:,} leads: {info[n]['touches']:,} touches {info[n]['states']}, {info[n]['size_mb']:,.0f} MB, "
                f"ready in {time.perf_counter() - started:.0f} s ({note})",
                flush=True,
            )
        if args.explain:
            explain(bases[sizes[-1]])
        for round_no in range(args.rounds):
            for n in sizes:  # every tick on a fresh copy: the populated database stays as it was
                clone(bases[n], work)
                # First a tick two hours early, when nothing is due yet: what a tick costs
                # besides its sends. Then the tick at T, which sends the --due e-mails.
                reset_counters(work)
                idle = read_counters(work, tick(work, T - timedelta(hours=2), 0))
                reset_counters(work)
                busy = read_counters(work, tick(work, T, args.due))
                drop(work)
                results[n].append((idle, busy))
                print(
                    f"round {round_no + 1}: {n:,} leads: tick {busy.seconds:.2f} s (peak RSS {busy.rss_mb:.1f} MB, "
                    f"{busy.touches_read:,} touch rows read, {busy.touches_seq_scans} seq scans, "
                    f"{busy.buffers:,} buffers); nothing due: {idle.seconds:.2f} s ({idle.touches_read:,} rows, "
                    f"{idle.touches_seq_scans} seq scans, {idle.buffers:,} buffers)",
                    flush=True,
                )
        extra = commands(bases[sizes[-1]]) if args.commands else []
    finally:
        drop(work)
        if not args.keep:
            for name in bases.values():
                drop(name)
        else:
            print("kept:", ", ".join(bases.values()))

    def med(n: int, which: int, field: str) -> float:
        return median(getattr(pair[which], field) for pair in results[n])

    first = sizes[0]
    print(
        f"\n{'leads':>10} {'touches':>10} {'db size':>8} {'due':>7} | {'tick s':>7} {'ratio':>6} {'min s':>6} "
        f"{'ratio':>6} {'peak RSS':>9} {'rows read':>10} {'seq scans':>9} {'buffers':>9} | "
        f"{'idle s':>6} {'ratio':>6} {'rows read':>10} {'seq scans':>9}"
    )
    for n in sizes:
        busy = [pair[1] for pair in results[n]]
        low, low_first = min(t.seconds for t in busy), min(pair[1].seconds for pair in results[first])
        print(
            f"{n:>10,} {info[n]['touches']:>10,} {info[n]['size_mb']:>6,.0f}MB {args.due:>7,} | "
            f"{med(n, 1, 'seconds'):>7.2f} {med(n, 1, 'seconds') / med(first, 1, 'seconds'):>5.2f}x "
            f"{low:>6.2f} {low / low_first:>5.2f}x {max(t.rss_mb for t in busy):>7.1f}MB "
            f"{med(n, 1, 'touches_read'):>10,.0f} {med(n, 1, 'touches_seq_scans'):>9.0f} "
            f"{med(n, 1, 'buffers'):>9,.0f} | "
            f"{med(n, 0, 'seconds'):>6.2f} {med(n, 0, 'seconds') / med(first, 0, 'seconds'):>5.2f}x "
            f"{med(n, 0, 'touches_read'):>10,.0f} {med(n, 0, 'touches_seq_scans'):>9.0f}"
        )
        print(f"{'':>10} rounds, tick s: {', '.join(f'{t.seconds:.2f}' for t in busy)}")
    if len(sizes) > 1:
        last = sizes[-1]
        print(
            f"\ntick({last:,}) / tick({first:,}) = {med(last, 1, 'seconds') / med(first, 1, 'seconds'):.2f} "
            f"(median of {args.rounds}; target <= 1.5), best of each: "
            f"{min(p[1].seconds for p in results[last]) / min(p[1].seconds for p in results[first]):.2f}"
        )
    for label, wall, rss in extra:
        print(f"{label:<20} at {sizes[-1]:,} leads: {wall:.2f} s, peak RSS {rss:.1f} MB")


if __name__ == "__main__":
    main()
