"""`dripper leads import` on PostgreSQL: leads per second, touch rows per second and the
importing process's peak memory, against PostgreSQL's own bulk load of the same file
(`COPY … FROM STDIN (FORMAT csv)` into a table without indexes) measured in the same run:
the floor for getting those bytes into that server at all.

    python -m bench.import_speed [--leads 200000,1000000] [--admin-dsn "host=127.0.0.1 user=postgres dbname=test"]

The file has the shipped campaigns.yaml's stages mixed, complete postal addresses in five
countries (varied postal codes) and one template attribute. Each run gets a fresh
database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from dripper.leads.records import POSTAL_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    "supplier_research",
    "awareness_of_need",
    "awareness_of_solutions",
    "awareness_of_suppliers",
    "supplier_preference",
    "negotiation",
    "lost_to_competitor",
]
HEADER = ["email", "first_name", "last_name", "company", "stage", "timezone", "campaign", *POSTAL_COLUMNS, "product"]
# The command reports its peak resident set size when it exits: the larger of its own and
# that of its forked reader (which counts the pages it shares with the importer).
MEASURED = (
    "import atexit, resource, runpy, sys\n"
    "atexit.register(lambda: print(f'peak_rss_kb={max(resource.getrusage(w).ru_maxrss for w in "
    "(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))}', file=sys.stderr))\n"
    "sys.argv = ['dripper', *sys.argv[1:]]\n"
    "runpy.run_module('dripper', run_name='__main__')\n"
)


def _place(rng: random.Random) -> tuple[str, str, str, str, str]:
    """(country, timezone, city, region, postal code): valid, varied codes."""
    pick = rng.randrange(5)
    if pick == 0:
        return "US", "America/Chicago", "Dallas", "TX", f"75{rng.randrange(1000):03d}"
    if pick == 1:
        return "US", "", "Chicago", "IL", f"60{rng.randrange(600, 1000):03d}"
    if pick == 2:
        return "DE", "Europe/Berlin", "Stuttgart", "", f"70{rng.randrange(1000):03d}"
    if pick == 3:
        return "GB", "Europe/London", "London", "", f"W1U {rng.randrange(10)}NR"
    return "FR", "Europe/Paris", "Paris", "", f"750{rng.randrange(1, 21):02d}"


def write_leads(path: Path, n: int) -> None:
    rng = random.Random(42)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(n):
            country, tz, city, region, code = _place(rng)
            writer.writerow(
                [
                    f"lead{i}@company{i % 5000}.example",
                    f"First{i}",
                    "Müller",
                    f"Company {i % 5000}",
                    STAGES[i % len(STAGES)],
                    tz,
                    "literature-follow-up",
                    f"{1 + i % 900} Main Street",
                    "",
                    city,
                    region,
                    code,
                    country,
                    rng.choice(["valves", "pumps", "flow meters"]),
                ]
            )


def _admin(dsn: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _database(dsn: str) -> tuple[str, str]:
    name = f"dripper_bench_{uuid.uuid4().hex[:8]}"
    with _admin(dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(part.split("=", 1) for part in dsn.split())
    return (
        name,
        f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', '5432')}/{name}",
    )


def _drop(dsn: str, name: str) -> None:
    with _admin(dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bare_copy(dsn: str, csv_path: Path) -> float:
    """Seconds for PostgreSQL to take the file with COPY into an unindexed table."""
    import psycopg

    name, _ = _database(dsn)
    try:
        params = dict(part.split("=", 1) for part in dsn.split()) | {"dbname": name}
        with psycopg.connect(" ".join(f"{k}={v}" for k, v in params.items())) as conn:
            conn.execute(f"CREATE TABLE raw ({', '.join(f'{c} text' for c in HEADER)})")
            start = time.perf_counter()
            with (
                conn.cursor() as cursor,
                cursor.copy("COPY raw FROM STDIN (FORMAT csv, HEADER)") as copy,
                open(csv_path, "rb") as handle,
            ):
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    copy.write(chunk)
            conn.commit()
            return time.perf_counter() - start
    finally:
        _drop(dsn, name)


def dripper_import(dsn: str, csv_path: Path, work: Path) -> tuple[float, int, int, str]:
    """Seconds (the whole command, start-up included), peak RSS in kB, touch rows, summary."""
    import psycopg

    name, url = _database(dsn)
    try:
        env = {
            **os.environ,
            "DRIPPER_DATABASE_URL": url,
            "DRIPPER_CAMPAIGNS": str(ROOT / "campaigns.yaml"),
            "DRIPPER_SECRET": "bench",
        }
        subprocess.run([sys.executable, "-m", "dripper", "check"], env=env, cwd=work, check=True, capture_output=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", MEASURED, "leads", "import", str(csv_path), "--at", "2026-11-02T15:00:00+00:00"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"import failed ({done.returncode}):\n{done.stderr[-3000:]}")
        rss = int(next(line for line in done.stderr.splitlines() if line.startswith("peak_rss_kb=")).split("=")[1])
        params = dict(part.split("=", 1) for part in dsn.split()) | {"dbname": name}
        with psycopg.connect(" ".join(f"{k}={v}" for k, v in params.items())) as conn:
            touches = conn.execute("SELECT count(*) FROM touches").fetchone()[0]  # type: ignore[index]
        return seconds, rss, touches, done.stdout.strip()
    finally:
        _drop(dsn, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", default="200000", help="comma-separated lead counts")
    parser.add_argument("--admin-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        empty = work / "empty.csv"
        write_leads(empty, 0)
        startup = dripper_import(args.admin_dsn, empty, work)[0]  # the command with nothing to import
        for n in (int(x) for x in args.leads.split(",")):
            csv_path = work / f"leads-{n}.csv"
            write_leads(csv_path, n)
            floor = bare_copy(args.admin_dsn, csv_path)
            seconds, rss, touches, summary = dripper_import(args.admin_dsn, csv_path, work)
            print(summary)
            rows.append((n, floor, seconds, rss, touches))
            csv_path.unlink()
    print(f"\nstart-up: the same command on a file with no leads took {startup:.2f} s")
    print(
        f"{'leads':>9} {'bare COPY s':>12} {'dripper s':>10} {'leads/s':>9} {'net of start-up':>16} "
        f"{'touches/s':>10} {'x COPY':>7} {'peak RSS MB':>12}"
    )
    for n, floor, seconds, rss, touches in rows:
        print(
            f"{n:>9} {floor:>12.2f} {seconds:>10.2f} {n / seconds:>9.0f} {n / (seconds - startup):>16.0f} "
            f"{touches / seconds:>10.0f} {seconds / floor:>7.1f} {rss / 1024:>12.0f}"
        )
    print(
        "\n(dripper's time is the whole command: start-up, CSV parsing and validation, postal checks, the merge"
        " into leads and each lead's first touch: a track is planned one touch ahead)"
    )


if __name__ == "__main__":
    main()
