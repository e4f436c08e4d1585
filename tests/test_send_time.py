"""Issue 17, at send time: send windows checked again when a touch goes out, what the
catch-up rule does to calls, call tasks of leads that stopped, and what the tick counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

IMPORTED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday: 13:00 in Madrid, inside 09:00-17:00
HEADER = "email,first_name,last_name,company,stage,timezone,campaign,country"


def iso(t: datetime) -> str:
    return t.isoformat()


def plan(dripper, email: str) -> dict[str, dict]:
    return {t["step"]: t for t in dripper.json("plan", email, "--json")["touches"]}


def test_a_late_tick_defers_to_the_next_opening_of_the_leads_window(dripper, project: Path) -> None:
    """Imported at noon, but the first tick runs at 23:00 UTC, midnight in Madrid: the
    e-mail waits for 09:00 Madrid time, and goes out then."""
    (project / "madrid.csv").write_text(
        f"{HEADER}\nlola@madrid.example,Lola,Flores,Co,supplier_research,Europe/Madrid,,ES\n", encoding="utf-8"
    )
    dripper("leads", "import", "madrid.csv", "--at", iso(IMPORTED))
    late = dripper.json("tick", "--at", "2026-03-02T23:00:00Z", "--json")
    assert (late["sent"], late["deferred"]) == (0, 1)
    assert not list(Path("outbox").glob("*.eml"))
    thanks = plan(dripper, "lola@madrid.example")["thanks"]
    assert thanks["state"] == "planned"
    assert thanks["reason"] == "outside_window: opens 2026-03-03 09:00 Europe/Madrid"
    assert thanks["due"] == "2026-03-03T08:00:00+00:00"  # 09:00 in Madrid (CET)
    assert thanks["attempts"] == 0  # a deferral is no attempt
    assert dripper.json("tick", "--at", "2026-03-03T07:59:00Z", "--json")["sent"] == 0
    assert dripper.json("tick", "--at", "2026-03-03T08:00:00Z", "--json")["sent"] == 1
    [sent] = Path("outbox").glob("*.eml")
    message = message_from_bytes(sent.read_bytes(), policy=policy.default)
    assert message["Date"].datetime == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert plan(dripper, "lola@madrid.example")["thanks"]["reason"] is None


def test_the_deferral_skips_weekends_and_the_leads_holidays(dripper_sqlite, project: Path) -> None:
    """With `holidays: true` the next opening is the lead's next working day: Friday
    1 January 2027 is New Year's Day in Spain, then comes the weekend."""
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(
        campaigns.read_text().replace(
            'send_window: {days: mon-fri, hours: "09:00-17:00"}',
            'send_window: {days: mon-fri, hours: "09:00-17:00", holidays: true}',
        )
    )
    (project / "madrid.csv").write_text(
        f"{HEADER}\nlola@madrid.example,Lola,Flores,Co,supplier_research,Europe/Madrid,,ES\n", encoding="utf-8"
    )
    dripper_sqlite("leads", "import", "madrid.csv", "--at", "2026-12-31T12:00:00Z")  # Thursday, 13:00 in Madrid
    late = dripper_sqlite.json("tick", "--at", "2026-12-31T22:30:00Z", "--json")
    assert late["deferred"] == 1
    thanks = plan(dripper_sqlite, "lola@madrid.example")["thanks"]
    assert thanks["reason"] == "outside_window: opens 2027-01-04 09:00 Europe/Madrid"
    assert dripper_sqlite.json("tick", "--at", "2027-01-01T10:00:00Z", "--json")["sent"] == 0
    assert dripper_sqlite.json("tick", "--at", "2027-01-04T08:00:00Z", "--json")["sent"] == 1
