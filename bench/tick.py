"""`dripper tick` over N due leads (file outbox, SQLite, shipped templates) against the
naive loop a competent user would write by hand for the same messages: per lead a
Jinja2 render, premailer.transform(), an EmailMessage, one .eml file. Same run, same
machine; prints messages/second for both and the ratio.

    python bench/tick.py [N]
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def naive(n: int, out: Path) -> float:
    import jinja2
    import premailer

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "templates"), autoescape=True)
    template = env.get_template("email/research/thanks.html")
    out.mkdir()
    start = time.perf_counter()
    for i in range(n):
        lead = {"email": f"lead{i}@x{i % 50}.example", "first_name": "Ann", "last_name": "Lee", "company": "Co",
                "attrs": {"product": "valves"}}
        html = template.render(lead=lead, sender={"from_name": "Acme Sales"}, step={"id": "thanks"},
                               campaign={"name": "c"}, unsubscribe_url="https://acme.example/u/x", today="5 January 2026")
        html = premailer.transform(html, disable_validation=True, cssutils_logging_level="CRITICAL")
        msg = EmailMessage(policy=SMTP)
        msg["From"] = "Acme Sales <sales@acme.example>"
        msg["To"] = f"Ann Lee <{lead['email']}>"
        msg["Subject"] = "Your valves information pack"
        msg.set_content("Hello Ann, your information pack is ready.", charset="utf-8")
        msg.add_alternative(html, subtype="html", charset="utf-8")
        (out / f"{i}.eml").write_bytes(msg.as_bytes())
    return time.perf_counter() - start


def main(n: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with open(work / "leads.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "first_name", "last_name", "company", "stage", "timezone", "product"])
            for i in range(n):
                writer.writerow([f"lead{i}@x{i % 50}.example", "Ann", "Lee", "Co", "supplier_research",
                                 "America/Chicago", "valves"])
        env = {**os.environ, "DRIPPER_CAMPAIGNS": str(ROOT / "campaigns.yaml"),
               "DRIPPER_DATABASE_URL": f"sqlite:///{work / 'd.db'}", "DRIPPER_OUTBOX": str(work / "outbox"),
               "DRIPPER_SECRET": "bench"}
        cli = [sys.executable, "-m", "dripper"]
        t = time.perf_counter()
        subprocess.run(cli + ["leads", "import", str(work / "leads.csv"), "--at", "2026-01-05T08:00:00Z"],
                       env=env, check=True, capture_output=True)
        imported = time.perf_counter() - t
        t = time.perf_counter()
        result = subprocess.run(cli + ["tick", "--at", "2026-01-06T08:00:00Z", "--json"], env=env, check=True,
                                capture_output=True, text=True)
        ticked = time.perf_counter() - t
        sent = len(list((work / "outbox").glob("*.eml")))
        baseline = naive(n, work / "naive")
    print(f"leads: {n}   tick: {result.stdout.strip()}   .eml files: {sent}")
    print(f"leads import (whole command)         : {n / imported:8.0f} leads/s")
    print(f"naive loop (jinja+premailer+EmailMsg): {n / baseline:8.0f} msg/s")
    print(f"dripper tick (whole command)         : {n / ticked:8.0f} msg/s")
    print(f"ratio                                : dripper is {baseline / ticked:.2f}x the naive loop")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
