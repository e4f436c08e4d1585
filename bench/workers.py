"""Scale-out on PostgreSQL: several `dripper tick` processes share one queue, exactly once.

In one run, on a fresh PostgreSQL database (dropped at the end) and the shipped
campaigns.yaml and templates:

  1. N leads are imported; each has one e-mail (`research-thanks`) due at the tick instant.
  2. Baseline: ONE `dripper tick --at T` process sends them.
     Scale-out: W `dripper tick --at T` processes, started together, send the same N
     (the touches are put back to `planned` between runs).
     With --rounds R the two alternate R times and medians are reported.
  3. Crash: one worker is killed with SIGKILL mid-send; a tick once its lease has run
     out by the real clock (CRASH_LEASE seconds here, DRIPPER_LEASE_SECONDS) takes its
     touches again.

The SMTP sink (tests/support/smtp.py) is aiosmtpd in a separate process on 127.0.0.1, at a higher priority
(nice -10, when run as root): it stands for a server on another machine, which the
workers must not starve of CPU. It appends the Message-ID and recipient of every
message it accepts to a file, before its 250, so it counts what a real server would
have queued. Each run is checked against it: messages received, distinct Message-IDs,
duplicates, losses (due touches whose Message-ID never arrived). Wall times run from
the start of the processes to the exit of the last one, Python start-up included, as
`cron` or a supervisor would see them.

Two questions, two settings:
  --latency 0 (default): the sink answers at once, so sending is bound by CPU. On one
      machine the workers share its cores: the ratio shows what sharing the queue
      costs, not what more machines would add.
  --latency 0.1: a relay 100 ms away. One worker keeps 4 messages in flight, so it
      is bound by round trips, and more workers (or machines) multiply throughput.

    python -m bench.workers [--leads 10000] [--workers 3] [--rounds 1] [--latency 0]
                            [--render-processes N] [--pg "host=127.0.0.1 user=postgres dbname=test"]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median

from bench._common import T0, write_plain_leads
from tests.support.db import sql
from tests.support.smtp import SinkProcess as Sink

ROOT = Path(__file__).resolve().parent.parent
AT = T0 + timedelta(days=1)  # the tick instant: every lead's first e-mail is due
CLI = [sys.executable, "-m", "dripper"]
IN_FLIGHT = 4  # dripper's default: what one killed worker may deliver twice
CRASH_LEASE = 5.0  # seconds: the lease in the crash run (DRIPPER_LEASE_SECONDS; 60 by default)
SINK_NICE = -10  # the sink's priority, when allowed (root)


# --- the database -------------------------------------------------------------------------


def create_database(admin: str) -> tuple[str, str]:
    import psycopg

    name = f"dripper_bench_workers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(part.split("=", 1) for part in admin.split())
    url = (
        f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', '5432')}/{name}"
    )
    return name, url


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum(url: str) -> None:
    """Every run starts from the same table state (a reset leaves dead rows behind)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE touches"))
    finally:
        engine.dispose()


def reset(url: str, ids: list[int], sink: Sink) -> None:
    """Put the due touches back as they were after the import, and forget the next touches
    their outcomes planned (a track is planned one touch ahead)."""
    sql(
        url,
        "UPDATE touches SET state = 'planned', reason = NULL, attempts = 0, message_id = NULL, "
        "claimed_at = NULL, claimed_by = NULL, sent_at = NULL WHERE id = ANY(:ids)",
        ids=ids,
    )
    sql(url, "DELETE FROM touches WHERE NOT (id = ANY(:ids))", ids=ids)
    vacuum(url)
    sink.clear()


# --- the runs -------------------------------------------------------------------------------


def import_leads(work: Path, n: int, env: dict[str, str]) -> float:
    write_plain_leads(work / "leads.csv", n)
    start = time.perf_counter()
    subprocess.run(
        [*CLI, "leads", "import", str(work / "leads.csv"), "--at", T0.isoformat()],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def cpu_of_children() -> float:
    """CPU seconds of the children waited for so far, and of their own (render workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ticks(workers: int, env: dict[str, str], work: Path, at: datetime) -> tuple[float, float, list[int]]:
    """`workers` tick processes started together: wall time to the last exit, their CPU
    time (with their render workers'), sent per process."""
    cpu = cpu_of_children()
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*CLI, "tick", "--at", at.isoformat(), "--json"],
            env=env,
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    outs = [p.communicate(timeout=1800) for p in procs]
    wall = time.perf_counter() - start
    for p, (_, err) in zip(procs, outs, strict=False):
        if p.returncode != 0:
            raise SystemExit(f"dripper tick exited {p.returncode}:\n{err.decode()[-3000:]}")
    return wall, cpu_of_children() - cpu, [json.loads(out)["sent"] for out, _ in outs]


@dataclass
class Check:
    received: int
    distinct: int
    duplicates: int  # messages beyond the first for their Message-ID
    lost: int  # due touches not `sent`, or whose Message-ID the server never got
    resent: int  # touches marked resent_after_interruption

    def line(self) -> str:
        return (
            f"received {self.received}, distinct Message-IDs {self.distinct}, duplicates {self.duplicates}, "
            f"lost {self.lost}"
        )


def check(url: str, ids: list[int], sink: Sink) -> Check:
    rows = sql(url, "SELECT state, message_id, reason FROM touches WHERE id = ANY(:ids)", ids=ids)
    received = Counter(mid for mid, _ in sink.received())
    lost = sum(1 for state, mid, _ in rows if state != "sent" or mid not in received)
    resent = sum(1 for _, _, reason in rows if reason == "resent_after_interruption")
    return Check(sum(received.values()), len(received), sum(c - 1 for c in received.values()), lost, resent)


def share(sent: list[int]) -> str:
    total = sum(sent) or 1
    return " / ".join(f"{s} ({s / total:.0%})" for s in sent)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--render-processes",
        type=int,
        help="DRIPPER_RENDER_PROCESSES for every worker (default: dripper's, 1 with 2+ cores)",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("DRIPPER_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test"),
        help="libpq string of a database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the sink takes per message before its 250 (default 0: as fast as it can)",
    )
    args = parser.parse_args()
    n, k = args.leads, args.workers
    name, url = create_database(args.pg)
    work = Path(tempfile.mkdtemp(prefix="dripper-bench-workers-"))
    sink = Sink(work, latency=args.latency, nice=SINK_NICE)
    sink.start()
    env = {
        **os.environ,
        "DRIPPER_DATABASE_URL": url,
        "DRIPPER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "DRIPPER_SECRET": "bench",
        "DRIPPER_BASE_URL": "https://acme.example",
        "DRIPPER_CAMPAIGNS": str(ROOT / "campaigns.yaml"),
    }
    if args.render_processes is not None:
        env["DRIPPER_RENDER_PROCESSES"] = str(args.render_processes)
    try:
        imported = import_leads(work, n, env)
        ids = [
            row[0]
            for row in sql(
                url, "SELECT id FROM touches WHERE state = 'planned' AND due_at <= :at AND channel = 'email'", at=AT
            )
        ]
        vacuum(url)
        print(
            f"{n} leads imported in {imported:.1f} s; {len(ids)} e-mails due at {AT.isoformat()}; "
            f"{os.cpu_count()} cores; PostgreSQL; SMTP sink in its own process on 127.0.0.1 (nice "
            f"{sink.niceness()}, {args.latency * 1000:.0f} ms a message); render processes per worker: "
            f"{env.get('DRIPPER_RENDER_PROCESSES', 'default')}"
        )
        rates: dict[int, list[float]] = {1: [], k: []}
        costs: dict[int, list[float]] = {1: [], k: []}  # dripper's CPU ms per message
        for round_ in range(args.rounds):
            for workers in (1, k):
                reset(url, ids, sink)
                wall, cpu, sent = ticks(workers, env, work, AT)
                outcome = check(url, ids, sink)
                rates[workers].append(len(ids) / wall)
                costs[workers].append(cpu * 1000 / len(ids))
                print(
                    f"round {round_ + 1}, {workers} worker(s): {outcome.line()}; sent per worker {share(sent)}; "
                    f"{wall:.1f} s, {len(ids) / wall:.0f} msg/s, dripper CPU {costs[workers][-1]:.2f} ms/msg"
                )
        one, many = median(rates[1]), median(rates[k])
        print(
            f"{k} workers / 1 worker: throughput {many / one:.2f}x (medians {many:.0f} vs {one:.0f} msg/s); "
            f"CPU per message {median(costs[k]) / median(costs[1]):.2f}x "
            f"({median(costs[k]):.2f} vs {median(costs[1]):.2f} ms)"
        )

        reset(url, ids, sink)
        env = {**env, "DRIPPER_LEASE_SECONDS": str(CRASH_LEASE)}  # leases run on the real clock: a short one
        worker = subprocess.Popen(
            [*CLI, "tick", "--at", AT.isoformat()],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while sink.count() < len(ids) // 3 and worker.poll() is None:
            time.sleep(0.01)
        worker.kill()
        worker.wait()
        at_kill = sink.count()
        stuck = sql(url, "SELECT count(*) FROM touches WHERE state = 'sending'")[0][0]
        time.sleep(CRASH_LEASE + 1)  # a dead worker renews nothing: its last renewal was before the kill
        ticks(1, env, work, AT)
        outcome = check(url, ids, sink)
        print(
            f"kill -9 after {at_kill} messages ({stuck} touches left `sending`), recovered by a tick after the "
            f"{CRASH_LEASE:.0f} s lease: "
            f"{outcome.line()} (in flight at most {IN_FLIGHT}); {outcome.resent} marked resent_after_interruption"
        )
    finally:
        sink.stop()
        drop_database(args.pg, name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
