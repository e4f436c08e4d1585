"""Six months of the shipped campaigns.yaml, templates and example leads, one tick a day
on the simulated clock: daily print batches, call lists, and letters that fit their
windows (on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import Dripper
from test_letters import inside, pages, review_png, words

from dripper.channels.letters.layout import FRAMES

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago
OFFICE = ZoneInfo("America/Chicago")  # defaults.timezone of the shipped file: the business day


@pytest.fixture
def shipped(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Dripper:
    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copy(ROOT / "campaigns.yaml", root)
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copy(ROOT / "examples" / "leads.csv", root)
    monkeypatch.chdir(root)
    return Dripper(root, db_url)


def test_six_months_of_the_shipped_campaigns(shipped: Dripper) -> None:
    shipped("leads", "import", "leads.csv", "--at", T0.isoformat())
    for n in range(184):
        # Twice a day, as the send windows are open on the leads' clocks: while they are
        # open in Chicago, New York, London and Berlin alike (15:30 UTC, 14:30 once the
        # United States are on summer time, 8 March), then at noon in Tokyo.
        shipped("tick", "--at", (T0 + timedelta(days=n, hours=0.5 if n < 62 else -0.5)).isoformat())
        shipped("tick", "--at", (T0 + timedelta(days=n, hours=12)).isoformat())
    emails = [row["email"] for row in csv.DictReader(open("leads.csv", encoding="utf-8"))]
    plans = {email: shipped.json("plan", email, "--json") for email in emails}

    letters_by_day: Counter[str] = Counter()
    calls_by_day: Counter[str] = Counter()
    for email, plan in plans.items():
        for touch in plan["touches"]:
            if touch["state"] != "sent" or touch["channel"] == "email":
                continue
            day = datetime.fromisoformat(touch["sent_at"]).astimezone(OFFICE).date().isoformat()
            if touch["channel"] == "letter":
                letters_by_day[day] += 1
                assert touch["batch"] == day, (email, touch)
            else:
                calls_by_day[day] += 1
                assert touch["call"]["day"] == day and touch["call"]["owner"] == "Sales desk"
        # The lead without a postal address gets no letter, and the rest of its track goes on.
        if not plan["lead"]["postal_address"]["complete"]:
            letters = [t for t in plan["touches"] if t["channel"] == "letter" and t["state"] != "planned"]
            assert letters and all(t["state"] == "skipped" and t["reason"] == "no_postal_address" for t in letters)
    # Every track that has letters and calls produced some within six months.
    assert sum(letters_by_day.values()) >= 15 and sum(calls_by_day.values()) >= 8

    batches = {b["batch"]: b for b in shipped.json("letters", "list", "--json")}
    assert set(batches) == set(letters_by_day)  # one batch per day with letters, none without
    checked = 0
    for day, count in letters_by_day.items():
        folder = Path("letters") / day
        with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == count == batches[day]["letters"]
        assert pages(folder / "batch.pdf") == sum(int(r["pages"]) for r in rows) == batches[day]["pages"]
        for row in rows:  # each letter's recipient block lies inside its format's window
            window = FRAMES[row["format"]].window
            shown = [t for t, b in words(Path("letters") / row["file"]) if inside(b, window)]
            assert " ".join(shown) == " ".join(row["address"].split()), (row["file"], shown)
            checked += 1
    assert checked == sum(letters_by_day.values())
    first = next(iter(sorted(letters_by_day)))
    review_png(Path("letters") / first / "batch.pdf", f"shipped-batch-{first}")

    for day, count in calls_by_day.items():
        listed = shipped.json("calls", "--date", day, "--json")
        assert len(listed) == count and all(t["talking_points"].startswith("Call ") for t in listed)
        assert (
            Path("calls", f"{day}.csv").read_text(encoding="utf-8") == shipped("calls", "--date", day, "--csv").stdout
        )
    for day in sorted(batches):
        shipped("letters", "mark-mailed", day)
    assert all(b["mailed_by"] == "manual" for b in shipped.json("letters", "list", "--json"))
