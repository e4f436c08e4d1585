"""`dripper tick` over N due leads (file outbox, SQLite, shipped templates) against the
naive loop a competent user would write by hand for the same messages (per lead a
Jinja2 render, premailer.transform(), an EmailMessage, one .eml file). Same run, same
machine; prints messages/second for both and the ratio. Whole commands are timed,
start-up included.

    python -m bench.tick [N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import T0, count_argument
from bench.send_throughput import naive_message, naive_template, prepare_dripper


def naive(n: int, out: Path) -> float:
    template = naive_template()
    out.mkdir()
    start = time.perf_counter()
    for i in range(n):
        _email, data = naive_message(template, i)
        (out / f"{i}.eml").write_bytes(data)
    return time.perf_counter() - start


def main(n: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        env = prepare_dripper(work, n, f"sqlite:///{work / 'd.db'}")
        imported = time.perf_counter() - t
        env["DRIPPER_OUTBOX"] = str(work / "outbox")
        t = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "dripper", "tick", "--at", T0.replace(day=6).isoformat(), "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        ticked = time.perf_counter() - t
        sent = len(list((work / "outbox").glob("*.eml")))
        baseline = naive(n, work / "naive")
    print(f"leads: {n}   tick: {result.stdout.strip()}   .eml files: {sent}")
    print(f"leads import (whole command)         : {n / imported:8.0f} leads/s")
    print(f"naive loop (jinja+premailer+EmailMsg): {n / baseline:8.0f} msg/s")
    print(f"dripper tick (whole command)         : {n / ticked:8.0f} msg/s")
    print(f"ratio                                : dripper is {baseline / ticked:.2f}x the naive loop")


if __name__ == "__main__":
    main(count_argument(2000))
