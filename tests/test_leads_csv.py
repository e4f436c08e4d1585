"""`dripper leads import`: bad rows reported as FILE:LINE (physical line) and skipped, the
rest upserted; exit codes 0 / 2 / 1."""

from __future__ import annotations

from pathlib import Path

import pytest

HEADER = "email,first_name,last_name,company,stage,timezone,campaign,product"
CAMPAIGN = "literature-follow-up"
SUPPLIER_TRACK = ["thanks", "reminder-1", "letter-1", "news-1", "offer-1", "monthly-4", "monthly-6"]
T0 = "2026-01-05T08:00:00Z"  # Monday; 02:00 in Chicago, 09:00 in Berlin


def write(project: Path, name: str, text: str, *, newline: str = "\n") -> str:
    (project / name).write_bytes(text.replace("\n", newline).encode("utf-8"))
    return name


def reported(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def plan(dripper, email: str) -> dict:
    return dripper.json("plan", email, "--json")


def steps(data: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for touch in data["touches"]:
        assert touch["step"] not in out, f"duplicate touch {touch['step']}"
        out[touch["step"]] = touch
    return out


# --- bad rows ----------------------------------------------------------------------------

BAD_FILE = (
    HEADER + "\n"  # 1
    'ada@x.example,Ada,"Love\r\nlace",Engines,supplier_research,,,valves\n'  # 2-3: CR/LF in a name
    "bad-email,B,B,,supplier_research,,,\n"  # 4
    "c@x.example,C,C,,supplier_reserch,,,\n"  # 5
    "d@x.example,D,D,,supplier_research,,literature-folow-up,\n"  # 6
    "e@x.example,E,E,,supplier_research,Mars/Base,,\n"  # 7
    "f@x.example,F,F\n"  # 8
    'good@x.example,Good,One,"Smith, ""Jr"" & Sons",supplier_research,,,valves\n'  # 9
    'g@x.example,"Multi\nLine\nName",G,,supplier_research,,,\n'  # 10-12
    "GOOD@X.example,Again,Two,,supplier_research,,,\n"  # 13
    "h@x.example,H,H,,supplier_research,Europe/Berlin,,\n"  # 14
    "i@x.example,I,I,,supplier_research,,,,extra\n"  # 15
)
BAD_EXPECTED = [
    ("2", ["last_name", "line break"]),
    ("4", ["invalid e-mail", "bad-email"]),
    ("5", ["unknown stage 'supplier_reserch'", "did you mean 'supplier_research'"]),
    ("6", ["unknown campaign 'literature-folow-up'", f"did you mean '{CAMPAIGN}'"]),
    ("7", ["Mars/Base"]),
    ("8", ["expected 8 fields, found 3"]),
    ("10", ["first_name", "line break"]),
    ("13", ["duplicate of line 9"]),
    ("15", ["expected 8 fields, found 9"]),
]


def test_bad_rows_are_reported_with_physical_lines_and_skipped(dripper_sqlite, project: Path) -> None:
    name = write(project, "bad.csv", BAD_FILE)
    result = dripper_sqlite("leads", "import", name, "--at", T0, ok=2)
    lines = reported(result)
    assert len(lines) == len(BAD_EXPECTED), lines
    for line, (number, words) in zip(lines, BAD_EXPECTED, strict=False):
        assert line.startswith(f"bad.csv:{number}: "), (line, number)
        for word in words:
            assert word in line, (line, word)

    good = plan(dripper_sqlite, "good@x.example")["lead"]
    assert good["first_name"] == "Good"  # the later duplicate did not overwrite it
    assert good["company"] == 'Smith, "Jr" & Sons'
    assert plan(dripper_sqlite, "h@x.example")["lead"]["timezone"] == "Europe/Berlin"
    for skipped in (
        "ada@x.example",
        "c@x.example",
        "d@x.example",
        "e@x.example",
        "f@x.example",
        "g@x.example",
        "i@x.example",
    ):
        missing = dripper_sqlite("plan", skipped, "--json", ok=1)
        assert "no lead" in missing.stderr


def test_crlf_file_and_blank_lines_keep_physical_line_numbers(dripper_sqlite, project: Path) -> None:
    text = (
        HEADER + "\n"  # 1
        "a@x.example,A,A,,supplier_research,,,\n"  # 2
        "\n"  # 3 (blank: ignored, still a line)
        "b@x.example,B,B,,no_such_stage,,,\n"  # 4
        'c@x.example,"C\nC",C,,supplier_research,,,\n'  # 5-6
        "d@x.example,D,D,,supplier_research,,nope,\n"  # 7
        "A@x.example,A,A,,supplier_research,,,\n"  # 8
    )
    name = write(project, "crlf.csv", text, newline="\r\n")
    result = dripper_sqlite("leads", "import", name, "--at", T0, ok=2)
    assert [line.split(": ", 1)[0] for line in reported(result)] == [
        "crlf.csv:4",
        "crlf.csv:5",
        "crlf.csv:7",
        "crlf.csv:8",
    ]
    assert "duplicate of line 2" in reported(result)[-1]
    assert plan(dripper_sqlite, "a@x.example")["lead"]["first_name"] == "A"


def test_a_bom_and_header_case_are_accepted(dripper_sqlite, project: Path) -> None:
    name = write(project, "bom.csv", "\ufeffEmail,First_Name,Stage\nada@x.example,Ada,supplier_research\n")
    dripper_sqlite("leads", "import", name, "--at", T0)
    lead = plan(dripper_sqlite, "ada@x.example")["lead"]
    assert lead["first_name"] == "Ada"
    assert lead["stage"] == "supplier_research"


def test_an_empty_email_is_a_bad_row(dripper_sqlite, project: Path) -> None:
    name = write(project, "e.csv", HEADER + "\n,No,Mail,,supplier_research,,,\nok@x.example,O,K,,,,,\n")
    result = dripper_sqlite("leads", "import", name, "--at", T0, ok=2)
    assert reported(result)[0].startswith("e.csv:2: ")
    assert "e-mail" in reported(result)[0]


# --- exit codes --------------------------------------------------------------------------


def test_all_good_exits_0_and_plans_every_lead(dripper, project: Path) -> None:
    result = dripper("leads", "import", "leads.csv", "--at", T0)
    assert reported(result) == []
    for email in ("ada@lovelace.example", "zoe@mueller.example", "grace@hopper.example"):
        data = plan(dripper, email)
        assert data["lead"]["stage"] == "supplier_research"
        assert data["lead"]["campaign"] == CAMPAIGN  # zoe names none: the first campaign
        assert list(steps(data)) == SUPPLIER_TRACK
        assert all(t["state"] == "planned" for t in data["touches"])


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        (b"", "empty"),
        (b"mail,name\na@x.example,A\n", "'email'"),
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "Excel workbook"),
    ],
    ids=["missing", "empty", "no-email-column", "xlsx"],
)
def test_nothing_readable_exits_1(dripper_sqlite, project: Path, content: bytes | None, words: str) -> None:
    if content is not None:
        (project / "in.csv").write_bytes(content)
    result = dripper_sqlite("leads", "import", "in.csv", "--at", T0, ok=1)
    assert words in result.stderr
    assert "in.csv" in result.stderr


def test_a_directory_is_unreadable(dripper_sqlite, project: Path) -> None:
    (project / "dir.csv").mkdir()
    result = dripper_sqlite("leads", "import", "dir.csv", ok=1)
    assert "dir.csv" in result.stderr


# --- upsert ------------------------------------------------------------------------------


def test_reimport_upserts_without_duplicates(dripper, project: Path) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0)
    first = plan(dripper, "ada@lovelace.example")
    dripper("leads", "import", "leads.csv", "--at", "2026-01-20T08:00:00Z")
    again = plan(dripper, "ada@lovelace.example")
    assert len(again["touches"]) == len(first["touches"]) == len(SUPPLIER_TRACK)
    assert steps(again) == steps(first)  # same due times: the lead did not re-enter its stage
    report = dripper.json("report", "--json")
    for step in SUPPLIER_TRACK:
        assert report["campaigns"][CAMPAIGN]["steps"][step]["planned"] == 3


def test_email_matching_is_case_insensitive(dripper, project: Path) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0)
    name = write(
        project,
        "upper.csv",
        "email,first_name,last_name,company,stage,timezone,campaign,product\n"
        "ADA@LoveLace.EXAMPLE,Augusta,Lovelace,Analytical Engines,supplier_research,America/Chicago,"
        f"{CAMPAIGN},valves\n",
    )
    dripper("leads", "import", name, "--at", "2026-01-06T08:00:00Z")
    data = plan(dripper, "ada@lovelace.example")
    assert data["lead"]["email"] == "ada@lovelace.example"
    assert data["lead"]["first_name"] == "Augusta"
    assert len(data["touches"]) == len(SUPPLIER_TRACK)
    assert plan(dripper, "ADA@LOVELACE.EXAMPLE")["lead"]["first_name"] == "Augusta"
    dripper("leads", "add", "Ada@Lovelace.Example", "--company", "AE Ltd", "--at", "2026-01-07T08:00:00Z")
    data = plan(dripper, "ada@lovelace.example")
    assert data["lead"]["company"] == "AE Ltd"
    assert len(data["touches"]) == len(SUPPLIER_TRACK)
    report = dripper.json("report", "--json")
    assert report["campaigns"][CAMPAIGN]["steps"]["thanks"]["planned"] == 3  # still three leads


def test_empty_timezone_means_defaults_timezone(dripper, project: Path) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0)
    # 08:00 UTC is 02:00 in Chicago (defaults.timezone): 'thanks' waits for 09:00 Chicago = 15:00 UTC;
    # in Berlin it is 09:00 already.
    grace = steps(plan(dripper, "grace@hopper.example"))  # empty timezone column
    ada = steps(plan(dripper, "ada@lovelace.example"))  # America/Chicago
    zoe = steps(plan(dripper, "zoe@mueller.example"))  # Europe/Berlin
    assert grace["thanks"]["due"] == ada["thanks"]["due"] == "2026-01-05T15:00:00+00:00"
    assert zoe["thanks"]["due"] == "2026-01-05T08:00:00+00:00"
    assert [t["due"] for t in grace.values()] == [t["due"] for t in ada.values()]


def test_empty_timezone_follows_a_different_defaults_timezone(dripper, project: Path) -> None:
    config = project / "campaigns.yaml"
    config.write_text(config.read_text().replace("timezone: America/Chicago", "timezone: Asia/Tokyo"))
    dripper("leads", "import", "leads.csv", "--at", T0)
    # 08:00 UTC Monday is 17:00 Monday in Tokyo: closed -> Tuesday 09:00 JST = Tuesday 00:00 UTC
    assert steps(plan(dripper, "grace@hopper.example"))["thanks"]["due"] == "2026-01-06T00:00:00+00:00"
    assert steps(plan(dripper, "ada@lovelace.example"))["thanks"]["due"] == "2026-01-05T15:00:00+00:00"


def test_extra_columns_become_attrs(dripper, project: Path) -> None:
    name = write(
        project,
        "extra.csv",
        "email,first_name,stage,industry,Lead_Source,address_line1,city,postal_code,country\n"
        "ada@x.example,Ada,supplier_research,Machining,trade fair,1 Way,Springfield,62701,us\n",
    )
    dripper("leads", "import", name, "--at", T0)
    lead = plan(dripper, "ada@x.example")["lead"]
    assert lead["attrs"] == {"industry": "Machining", "lead_source": "trade fair"}
    assert lead["address_line1"] == "1 Way" and lead["city"] == "Springfield" and lead["postal_code"] == "62701"
    assert lead["country"] == "US"
    dripper("leads", "import", "leads.csv", "--at", T0)
    assert plan(dripper, "ada@lovelace.example")["lead"]["attrs"] == {"product": "valves"}
    assert plan(dripper, "grace@hopper.example")["lead"]["attrs"]["product"] == "flow meters"


def test_reimport_with_changed_stage_skips_old_track_and_plans_new(dripper, project: Path) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0)
    assert dripper.json("tick", "--at", "2026-01-06T15:00:00Z", "--json")["sent"] == 3  # inside the window
    moved = (
        (project / "leads.csv")
        .read_text()
        .replace(
            "ada@lovelace.example,Ada,Lovelace,Analytical Engines,supplier_research",
            "ada@lovelace.example,Ada,Lovelace,Analytical Engines,lost_to_competitor",
        )
    )
    assert moved != (project / "leads.csv").read_text()
    name = write(project, "moved.csv", moved)
    dripper("leads", "import", name, "--at", "2026-02-02T16:00:00Z")  # Monday 10:00 Chicago

    data = plan(dripper, "ada@lovelace.example")
    assert data["lead"]["stage"] == "lost_to_competitor"
    touches = steps(data)
    assert touches["thanks"]["state"] == "sent"  # history stays
    assert touches["thanks"]["reason"] is None
    # the old track's next touch is skipped; the rest of it was never planned (one touch ahead)
    assert (touches["reminder-1"]["state"], touches["reminder-1"]["reason"]) == ("skipped", "stage_changed")
    assert not set(SUPPLIER_TRACK[2:]) & set(touches)
    # the new stage's track starts at the import instant: +3mo = Sat 2 May -> Monday 4 May 09:00 CDT
    assert touches["lost-1"]["state"] == "planned"
    assert touches["lost-1"]["due"] == "2026-05-04T14:00:00+00:00"
    # the others did not move
    assert all(t["state"] in ("sent", "planned") for t in plan(dripper, "zoe@mueller.example")["touches"])

    counts = dripper.json("tick", "--at", "2026-03-02T15:00:00Z", "--json")  # a Monday, inside the window
    assert counts["sent"] >= 1
    touches = steps(plan(dripper, "ada@lovelace.example"))
    assert {s: t["state"] for s, t in touches.items() if s in SUPPLIER_TRACK[1:]} == {"reminder-1": "skipped"}


# --- the set-based merge: batches, duplicates across them, what a re-import changes -------


def test_a_duplicate_in_a_later_batch_is_reported_in_line_order(dripper, project: Path) -> None:
    rows = [f"lead{i}@batch.example,L{i},X,Co,supplier_research,,{CAMPAIGN},valves" for i in range(7)]
    rows.insert(5, "LEAD1@batch.example,Again,X,Co,supplier_research,,,valves")  # line 7 repeats line 3
    rows.insert(2, "not-an-email,,,,,,,")  # line 4
    name = write(project, "batches.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    result = dripper("leads", "import", name, "--at", T0, "--batch-size", "2", ok=2)
    assert reported(result) == [
        "batches.csv:4: invalid e-mail address 'not-an-email': expected local-part@domain",
        "batches.csv:8: duplicate of line 3 (lead1@batch.example)",
    ]
    assert "7 lead(s) imported (7 new" in result.stdout and "2 row(s) skipped" in result.stdout
    assert plan(dripper, "lead1@batch.example")["lead"]["first_name"] == "L1"  # the first row won
    for i in range(7):
        assert [t["step"] for t in plan(dripper, f"lead{i}@batch.example")["touches"]] == SUPPLIER_TRACK


def test_reimport_moves_due_times_with_a_new_time_zone_and_keeps_history(dripper, project: Path) -> None:
    line = "tz@lead.example,Tim,Zone,Co,supplier_research,America/Chicago,literature-follow-up,valves"
    dripper("leads", "import", write(project, "a.csv", f"{HEADER}\n{line}\n"), "--at", T0)
    dripper("tick", "--at", "2026-01-06T15:00:00Z")  # 09:00 in Chicago: inside the send window
    before = steps(plan(dripper, "tz@lead.example"))
    moved = line.replace("America/Chicago", "Europe/Berlin")
    result = dripper("leads", "import", write(project, "b.csv", f"{HEADER}\n{moved}\n"), "--at", "2026-01-07T08:00:00Z")
    assert "1 updated" in result.stdout and "0 changed stage" in result.stdout
    after = steps(plan(dripper, "tz@lead.example"))
    assert after["thanks"] == before["thanks"] and after["thanks"]["state"] == "sent"
    # still counted from the original entry, now inside Berlin's 09:00-17:00 window (08:00 UTC in winter)
    assert before["reminder-1"]["due"] == "2026-01-19T15:00:00+00:00"
    assert after["reminder-1"]["due"] == "2026-01-19T08:00:00+00:00"
    assert after["reminder-1"]["state"] == "planned"


@pytest.mark.parametrize("kind, reason", [("unsubscribed", "unsubscribed"), ("bounced", "bounced")])
def test_a_stopped_lead_moved_by_import_gets_a_suppressed_track(dripper, project: Path, kind: str, reason: str) -> None:
    line = "stop@lead.example,S,T,Co,supplier_research,,literature-follow-up,valves"
    dripper("leads", "import", write(project, "a.csv", f"{HEADER}\n{line}\n"), "--at", T0)
    dripper("event", "stop@lead.example", kind, "--at", "2026-01-06T08:00:00Z")
    moved = line.replace("supplier_research", "lost_to_competitor")
    dripper("leads", "import", write(project, "b.csv", f"{HEADER}\n{moved}\n"), "--at", "2026-01-07T08:00:00Z")
    touches = steps(plan(dripper, "stop@lead.example"))
    assert (touches["lost-1"]["state"], touches["lost-1"]["reason"]) == ("suppressed", reason)


# --- one touch row a lead; the reader process ----------------------------------------------


def _count(db_url: str, table: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def test_an_import_writes_one_touch_a_lead_and_the_whole_track_still_shows(dripper, project: Path) -> None:
    rows = [f"lead{i}@many.example,L{i},X,Co,supplier_research,,{CAMPAIGN},valves" for i in range(2500)]
    name = write(project, "many.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    dripper("leads", "import", name, "--at", T0, "--batch-size", "1000")
    assert _count(dripper.db_url, "leads") == 2500
    assert _count(dripper.db_url, "touches") == 2500  # the next touch of each track, nothing further yet
    report = dripper.json("report", "--json")["campaigns"][CAMPAIGN]["steps"]
    assert all(report[step]["planned"] == 2500 for step in SUPPLIER_TRACK)  # the rest of the track, to come
    assert [t["step"] for t in plan(dripper, "lead7@many.example")["touches"]] == SUPPLIER_TRACK


def test_a_reader_that_breaks_stops_the_import_and_keeps_the_batches_before(
    dripper, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read in a forked process: its failure reaches the importer, with its cause."""
    from dripper.leads import postal

    def unreadable(lead):
        if lead.email == "lead5@many.example":
            raise OSError("address data unreadable")
        return None

    working = postal.import_warning
    monkeypatch.setattr(postal, "import_warning", unreadable)
    rows = [f"lead{i}@many.example,L{i},X,Co,supplier_research,,{CAMPAIGN},valves" for i in range(9)]
    name = write(project, "many.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(RuntimeError, match=r"(?s)reading the file failed.*address data unreadable"):
        dripper("leads", "import", name, "--at", T0, "--batch-size", "2")
    assert _count(dripper.db_url, "leads") == 4  # the two batches read before it broke
    monkeypatch.setattr(postal, "import_warning", working)
    dripper("leads", "import", name, "--at", T0, "--batch-size", "2")  # importing again finishes the job
    assert _count(dripper.db_url, "leads") == _count(dripper.db_url, "touches") == 9
