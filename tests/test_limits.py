"""Sending limits hold for all workers together, not per worker."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Dripper

T0 = datetime(2026, 1, 5, 15, 0, 5, tzinfo=UTC)  # Monday, inside the window


def _setup(dripper: Dripper, project: Path, limits: str, leads: list[str]) -> None:
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(campaigns.read_text().replace("campaigns:\n", f"{limits}campaigns:\n", 1))
    (project / "many.csv").write_text("email,first_name,stage\n" + "".join(f"{e},N,supplier_research\n" for e in leads))
    dripper("check")
    dripper("leads", "import", "many.csv", "--at", T0.isoformat())


def _workers(dripper: Dripper, at: datetime, n: int = 2) -> list[dict[str, int]]:
    """n `dripper tick` processes at the same instant, at the same time."""
    import json

    env = {**os.environ, "DRIPPER_DATABASE_URL": dripper.db_url, "DRIPPER_SECRET": "s"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dripper", "tick", "--at", at.isoformat(), "--json"],
            env=env,
            cwd=dripper.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e.decode() for _, e in outs]
    return [json.loads(o) for o, _ in outs]


def test_a_global_rate_holds_for_several_workers_together(dripper: Dripper, project: Path) -> None:
    _setup(dripper, project, 'limits:\n  rate: "10/min"\n', [f"lead{i}@x{i % 7}.example" for i in range(40)])
    first = _workers(dripper, T0 + timedelta(seconds=1))
    assert sum(c["sent"] for c in first) == 10  # not 10 per worker
    assert len(list(Path("outbox").glob("*.eml"))) == 10
    plan = dripper.json("plan", "lead39@x4.example", "--json")["touches"][0]
    if plan["state"] == "planned":
        assert plan["reason"] == "rate_limited: all 10/min"
        assert datetime.fromisoformat(plan["due"]) == datetime(2026, 1, 5, 15, 1, tzinfo=UTC)
    again = _workers(dripper, T0 + timedelta(seconds=20))  # the same minute: nothing more
    assert sum(c["sent"] for c in again) == 0
    later = _workers(dripper, T0 + timedelta(seconds=61))
    assert sum(c["sent"] for c in later) == 10
    assert len(list(Path("outbox").glob("*.eml"))) == 20


def test_per_domain_limits(dripper: Dripper, project: Path) -> None:
    leads = (
        [f"g{i}@gmail.example" for i in range(5)]
        + [f"y{i}@yahoo.example" for i in range(5)]
        + [f"o{i}@other.example" for i in range(5)]
    )
    _setup(dripper, project, 'limits:\n  per_domain:\n    gmail.example: "2/h"\n    default: ["3/min"]\n', leads)
    counts = dripper.json("tick", "--at", (T0 + timedelta(seconds=1)).isoformat(), "--json")
    sent = [p.name for p in Path("outbox").glob("*.eml")]
    assert sum("gmail.example" in n for n in sent) == 2
    assert sum("yahoo.example" in n for n in sent) == 3 and sum("other.example" in n for n in sent) == 3
    assert counts["sent"] == 8 and counts["deferred"] == 7
    gmail_waiting = [
        t
        for i in range(5)
        for t in dripper.json("plan", f"g{i}@gmail.example", "--json")["touches"]
        if t["state"] == "planned" and t["step"] == "thanks"
    ]
    assert len(gmail_waiting) == 3 and gmail_waiting[0]["reason"] == "rate_limited: domain:gmail.example 2/h"
    assert datetime.fromisoformat(gmail_waiting[0]["due"]) == datetime(2026, 1, 5, 16, 0, tzinfo=UTC)


def test_daily_cap_for_warm_up(dripper: Dripper, project: Path) -> None:
    _setup(dripper, project, "limits:\n  daily_cap: 4\n", [f"lead{i}@x.example" for i in range(10)])
    assert dripper.json("tick", "--at", (T0 + timedelta(seconds=1)).isoformat(), "--json")["sent"] == 4
    assert dripper.json("tick", "--at", (T0 + timedelta(hours=2)).isoformat(), "--json")["sent"] == 0
    assert dripper.json("tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json")["sent"] == 4


def test_bad_limits_are_located(dripper_sqlite: Dripper, project: Path) -> None:
    campaigns = project / "campaigns.yaml"
    campaigns.write_text('limits:\n  rate: "10/fortnight"\n  per_domian: {}\n' + campaigns.read_text())
    result = dripper_sqlite("check", ok=1)
    assert f"{campaigns.name}:2:9: rate: bad rate '10/fortnight'" in result.stderr.replace(str(project) + "/", "")
    assert "3:3: unknown key 'per_domian' (did you mean 'per_domain'?)" in result.stderr
