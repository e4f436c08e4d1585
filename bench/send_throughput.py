"""Sending throughput against a local SMTP sink (a separate process on 127.0.0.1).

Sends N touches three ways in one run and prints messages/second for each:

  (a) limit   — N pre-rendered identical messages blasted over several aiosmtplib connections
  (b) naive   — what a competent user writes by hand: per lead a Jinja2 render of an HTML
                template with a <style> block, premailer.transform(), an EmailMessage
                (multipart/alternative), one persistent smtplib connection
  (c) dripper — `dripper tick` (Sender.tick, in-process) over N due leads: claim, suppression
                check, render, CSS inlining, text part, MIME, SMTP, record

The sink checks afterwards that it received exactly N messages per run and, for (b) and
(c), that each was rendered for its own lead (its recipient's name is in its body).

    python -m bench.send_throughput [N] [--rounds R] [--database-url URL]

With --rounds R the three ways run R times, interleaved, and the medians are reported
(this machine is noisy; interleaving exposes all three to the same noise).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import quopri
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from statistics import median

from bench._common import T0, write_plain_leads
from tests.support.smtp import SinkProcess

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 4


# --- the sink: tests/support/smtp.py in its own process, asked after each run what it got ---


def rendered_for(rcpt: str, data: bytes) -> bool:
    """The body greets this recipient by name (leads are named after their address)."""
    name = rcpt.split("@")[0].capitalize()  # lead123@… is "Lead123"
    body = quopri.decodestring(data.split(b"\r\n\r\n", 1)[-1])
    return name.encode() in body


# --- (a) the limit ---------------------------------------------------------------------


async def blast(port: int, data: bytes, n: int) -> None:
    import aiosmtplib

    async def one_connection(count: int, first: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for i in range(count):
            await client.sendmail("bench@acme.example", [f"lead{first + i}@x.example"], data)
        await client.quit()

    share = n // CONNECTIONS
    counts = [share + (1 if i < n % CONNECTIONS else 0) for i in range(CONNECTIONS)]
    starts = [sum(counts[:i]) for i in range(CONNECTIONS)]
    await asyncio.gather(*(one_connection(c, s) for c, s in zip(counts, starts, strict=False)))


# --- (b) the naive baseline -------------------------------------------------------------


def naive_template():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "templates"), autoescape=True)
    return env.get_template("email/research/thanks.html")


def naive_message(template, i: int) -> tuple[str, bytes]:
    """One lead's message, the way a competent user writes it by hand."""
    import premailer

    email = f"lead{i}@x{i % 50}.example"
    lead = {
        "email": email,
        "first_name": f"Lead{i}",
        "last_name": "Lee",
        "company": "Co",
        "attrs": {"product": "valves"},
    }
    html = template.render(
        lead=lead,
        sender={"from_name": "Acme Sales"},
        step={"id": "thanks"},
        campaign={"name": "c"},
        unsubscribe_url="https://acme.example/u/x",
        today="5 January 2026",
    )
    html = premailer.transform(html, disable_validation=True, cssutils_logging_level="CRITICAL")
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = "Acme Sales <sales@acme.example>"
    msg["To"] = f"Lead{i} Lee <{email}>"
    msg["Subject"] = "Your valves information pack"
    msg.set_content(f"Hello Lead{i}, your information pack is ready: https://acme.example/literature")
    msg.add_alternative(html, subtype="html")
    return email, msg.as_bytes()


def naive(port: int, n: int) -> None:
    template = naive_template()
    client = smtplib.SMTP("127.0.0.1", port)
    for i in range(n):
        email, data = naive_message(template, i)
        client.sendmail("sales@acme.example", [email], data)
    client.quit()


# --- (c) dripper -------------------------------------------------------------------------


def prepare_dripper(work: Path, n: int, database_url: str) -> dict[str, str]:
    write_plain_leads(work / "leads.csv", n)
    env = {
        **os.environ,
        "DRIPPER_CAMPAIGNS": str(ROOT / "campaigns.yaml"),
        "DRIPPER_DATABASE_URL": database_url,
        "DRIPPER_SECRET": "bench",
    }
    subprocess.run(
        [sys.executable, "-m", "dripper", "leads", "import", str(work / "leads.csv"), "--at", T0.isoformat()],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def dripper_tick(port: int, env: dict[str, str]) -> dict[str, int]:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.sending.tick import Sender
    from dripper.settings import from_env
    from dripper.store import open_store

    settings = from_env({**env, "DRIPPER_SMTP_URL": f"smtp://127.0.0.1:{port}"})
    loaded = config_mod.load(settings)
    store = open_store(settings.database_url)
    sender = Sender(store, loaded, settings, FrozenClock(T0 + timedelta(days=1)))
    start = time.perf_counter()
    summary = asyncio.run(sender.tick())
    elapsed = time.perf_counter() - start
    store.dispose()
    return {**summary.counts(), "seconds": elapsed}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=3000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    n = args.n
    folder = tempfile.TemporaryDirectory()
    sink = SinkProcess(Path(folder.name), check="bench.send_throughput:rendered_for", logging=False)
    sink.start()
    port = sink.port
    names = [
        "(a) limit: pre-rendered, aiosmtplib x4",
        "(b) naive: jinja2 + premailer + EmailMessage + smtplib",
        "(c) dripper tick",
    ]
    rates: dict[str, list[float]] = {name: [] for name in names}
    checks: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    try:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                env = prepare_dripper(work, n, args.database_url or f"sqlite:///{work / 'bench.db'}")
                sample = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "dripper",
                        "preview",
                        "literature-follow-up",
                        "research-thanks",
                        "--format",
                        "eml",
                        "--lead",
                        "lead0@x0.example",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                ).stdout
                start = time.perf_counter()
                asyncio.run(blast(port, sample, n))
                rates[names[0]].append(n / (time.perf_counter() - start))
                checks[names[0]].append(sink.stats())
                start = time.perf_counter()
                naive(port, n)
                rates[names[1]].append(n / (time.perf_counter() - start))
                checks[names[1]].append(sink.stats())
                counts = dripper_tick(port, env)
                rates[names[2]].append(n / counts["seconds"])
                checks[names[2]].append(sink.stats())
                if args.database_url:  # reuse: clear what this round added
                    _reset(args.database_url)
    finally:
        sink.stop()
        folder.cleanup()
    print(
        f"N = {n} messages per run, {args.rounds} round(s); SMTP sink in a separate process on 127.0.0.1; "
        f"{os.cpu_count()} cores"
    )
    for name in names:
        received = min(c[0] for c in checks[name])
        rendered = min(c[1] for c in checks[name])
        print(
            f"{name:56s} {median(rates[name]):8.0f} msg/s   received {received:5d}   "
            f"rendered for its lead {rendered:5d}"
            + (f"   (rounds: {', '.join(f'{r:.0f}' for r in rates[name])})" if args.rounds > 1 else "")
        )
    limit, base, ours = (median(rates[name]) for name in names)
    print(f"dripper / naive = {ours / base:.2f}x (target >= 3x);  dripper / limit = {ours / limit:.0%} (target >= 40%)")


def _reset(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE touches, events, leads, campaign_versions, send_counters RESTART IDENTITY CASCADE"))
    engine.dispose()


if __name__ == "__main__":
    main()
