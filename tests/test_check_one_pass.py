"""`dripper check` in one pass (issue 17): every problem a file has is reported in one run,
located and sorted; YAML syntax errors carry a hint for the classic mistakes; time zones,
kinds and subjects on letters are checked; a stage event that changes nothing, or lands
where the campaign has no track, is recorded with a warning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import Dripper

from dripper.campaign.model import KINDS, parse_all
from dripper.cli import main

# Line numbers below are part of the tests: keep them in sync with GOOD.
GOOD = """\
sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
defaults:
  timezone: America/Chicago
  send_window: {days: mon-fri, hours: "09:00-17:00"}
campaigns:
  follow-up:
    stages:
      supplier_research:
        - id: thanks
          after: 0d
          kind: new_info
          subject: "Thanks, {{ lead.first_name or 'there' }}"
          template: mail/thanks.html
        - id: reminder
          after: 2w
          kind: reminder
          subject: "Anything else?"
          template: mail/reminder.html
        - id: letter
          after: 4w
          channel: letter
          kind: follow_up
          template: letters/letter.html
"""
L_TIMEZONE, L_WINDOW = 5, 6
L_AFTER1, L_KIND1, L_SUBJECT1 = 12, 13, 14
L_AFTER2, L_KIND2, L_SUBJECT2, L_TEMPLATE2 = 17, 18, 19, 20
L_ID3, L_CHANNEL3, L_KIND3 = 21, 23, 24

TEMPLATES = {
    "mail/thanks.html": "<p>Hello {{ lead.first_name or 'there' }}</p>\n",
    "mail/reminder.html": "<p>Anything else?</p>\n<p>Just ask.</p>\n",
    "letters/letter.html": "<p>{{ lead.full_name }}</p>\n",
}


def replace_line(text: str, n: int, new: str) -> str:
    lines = text.splitlines()
    lines[n - 1] = new
    return "\n".join(lines) + "\n"


def insert_after(text: str, n: int, new: str) -> str:
    lines = text.splitlines()
    lines.insert(n, new)
    return "\n".join(lines) + "\n"


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.campaigns = root / "campaigns.yaml"
        for name, source in TEMPLATES.items():
            self.template(name, source)
        self.write(GOOD)

    @property
    def file(self) -> str:
        return str(self.campaigns)

    def tfile(self, name: str) -> str:
        return str(self.root / "templates" / name)

    def write(self, text: str) -> None:
        self.campaigns.write_text(text, encoding="utf-8")

    def template(self, name: str, source: str) -> None:
        path = self.root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")

    def check(self) -> Result:
        env = {"DRIPPER_CAMPAIGNS": self.file, "DRIPPER_DATABASE_URL": f"sqlite:///{self.root / 'd.db'}"}
        return CliRunner().invoke(main, ["check"], env=env, catch_exceptions=False)


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for var in list(os.environ):
        if var.startswith("DRIPPER_") and not var.startswith("DRIPPER_TEST"):
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path)


def problems(result: Result) -> list[str]:
    assert result.exit_code == 1, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("dripper:")]


def test_the_good_file_passes(proj: Project) -> None:
    result = proj.check()
    assert result.exit_code == 0, result.stderr


# --- one pass ------------------------------------------------------------------------------


def test_structure_time_zone_hours_and_template_errors_come_in_one_run(proj: Project) -> None:
    """What took four runs: a schema error, a bad time zone, bad hours and a template
    syntax error, all reported at once, located, sorted by file and line."""
    text = replace_line(GOOD, L_TIMEZONE, "  timezone: Mars/Olympus")
    text = replace_line(text, L_WINDOW, '  send_window: {days: mon-fri, hours: "17:00-09:00"}')
    text = replace_line(text, L_AFTER1, "          after: 2x")
    proj.write(text)
    proj.template("mail/reminder.html", "<p>Anything else?</p>\n<p>{% if %}</p>\n")
    found = problems(proj.check())
    assert found == [
        f"{proj.file}:{L_TIMEZONE}:13: unknown time zone 'Mars/Olympus' (use an IANA name like America/Chicago)",
        f"{proj.file}:{L_WINDOW}:39: bad hours '17:00-09:00': the window must end after it starts",
        f"{proj.file}:{L_AFTER1}:18: after: bad duration '2x': write it like 0d, 36h, 2w or 3mo",
        f"{proj.tfile('mail/reminder.html')}:2:1: template syntax error: Expected an expression, got "
        "'end of statement block'",
    ]


def test_a_step_the_schema_rejects_is_left_out_and_the_next_ones_stay_located(proj: Project) -> None:
    """The first step is broken (its template is not checked); the second step's template
    problem is still located at the second step's line, not shifted onto the first's."""
    text = replace_line(GOOD, L_AFTER1, "          after: soon")
    text = replace_line(text, L_TEMPLATE2, "          template: mail/gone.html")
    proj.write(text)
    proj.template("mail/thanks.html", "<p>{% if %}</p>\n")  # belongs to the broken step: skipped
    found = problems(proj.check())
    assert [p.split(": ")[0] for p in found] == [f"{proj.file}:{L_AFTER1}:18", f"{proj.file}:{L_TEMPLATE2}:21"]
    assert "mail/gone.html' not found" in found[1]


def test_several_broken_steps_leave_the_rest_located(proj: Project) -> None:
    text = replace_line(GOOD, L_AFTER1, "          after: 2x")
    text = replace_line(text, L_AFTER2, "          aftr: 2w")
    text = replace_line(text, L_KIND3 + 1, "          template: letters/gone.html")
    proj.write(text)
    found = problems(proj.check())
    assert [p.split(": ")[0] for p in found] == [
        f"{proj.file}:{L_AFTER1}:18",
        f"{proj.file}:{L_AFTER2 - 1}:11",  # `after` is missing, at the step
        f"{proj.file}:{L_AFTER2}:11",  # ... and `aftr` is unknown
        f"{proj.file}:{L_KIND3 + 1}:21",
    ], found
    assert "'letters/gone.html' not found" in found[-1]


def test_a_duplicate_key_does_not_hide_the_rest(proj: Project) -> None:
    text = insert_after(GOOD, L_SUBJECT1, '          subject: "again"')
    text = replace_line(text, L_TIMEZONE, "  timezone: America/Chicgo")
    proj.write(text)
    found = problems(proj.check())
    assert [p.split(": ", 1)[1] for p in found] == [
        "unknown time zone 'America/Chicgo' (did you mean 'America/Chicago'?)",
        "duplicate key 'subject'",
    ]


def test_a_broken_sender_still_lets_the_templates_be_checked(proj: Project) -> None:
    text = GOOD.replace('  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"\n', "")
    proj.write(text)
    proj.template("mail/thanks.html", "<p>{{ lead.frist_name }}</p>\n")
    found = problems(proj.check())
    assert found[0].startswith(f"{proj.file}:2:3: missing required key 'postal_address'"), found
    assert found[1].startswith(f"{proj.tfile('mail/thanks.html')}:1:1: variable lead.frist_name"), found
    assert len(found) == 2


def test_a_broken_file_gives_no_model_to_run(proj: Project) -> None:
    """The model of the sound part is for checking only: parse refuses the file."""
    model, found = parse_all(replace_line(GOOD, L_AFTER1, "          after: 2x"), "c.yaml")
    assert model is not None and "thanks" not in {s.id for s in model.campaign("follow-up").track("supplier_research")}
    assert [p.location.line for p in found] == [L_AFTER1]


# --- YAML hints ----------------------------------------------------------------------------


def test_a_value_with_a_colon_is_told_to_be_quoted(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_SUBJECT2, "          subject: Re: your request"))
    found = problems(proj.check())
    assert found == [
        f"{proj.file}:{L_SUBJECT2}:22: YAML syntax error: mapping values are not allowed in this context; "
        "a value that contains ': ' must be in quotes: subject: \"Re: your request\""
    ]


def test_a_value_that_starts_with_a_placeholder_is_told_to_be_quoted(proj: Project) -> None:
    """`subject: {{ x }}` is a YAML mapping (one message, not a second one saying the
    subject is no string); with more after it, a syntax error with the line written out."""
    proj.write(replace_line(GOOD, L_SUBJECT2, "          subject: {{ lead.first_name }}"))
    assert problems(proj.check()) == [
        f"{proj.file}:{L_SUBJECT2}:20: a value that starts with a {{{{ placeholder }}}} is read by YAML as a "
        "mapping: put it in quotes"
    ]
    proj.write(replace_line(GOOD, L_SUBJECT2, "          subject: {{ lead.first_name }}, welcome"))
    (found,) = problems(proj.check())
    assert found.endswith(
        "; a value that starts with a {{ placeholder }} is read by YAML as a mapping: put it in quotes: "
        'subject: "{{ lead.first_name }}, welcome"'
    ), found


def test_a_tab_is_told_to_be_spaces(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_KIND2, "\t  kind: reminder"))
    (found,) = problems(proj.check())
    assert found.startswith(f"{proj.file}:{L_KIND2}:1: YAML syntax error: "), found
    assert "this line has a tab character: YAML indents with spaces only" in found


def test_an_unclosed_quote_is_located_where_it_opened(proj: Project) -> None:
    """YAML only notices lines further down (at the next quote); the report points at the
    quote that was never closed."""
    proj.write(replace_line(GOOD, L_SUBJECT1, "          subject: \"Thanks, {{ lead.first_name or 'there' }}"))
    (found,) = problems(proj.check())
    assert found.startswith(
        f"{proj.file}:{L_SUBJECT1}:20: YAML syntax error: the double quote opened here is not closed on its line"
    ), found
    assert f"it gave up at line {L_SUBJECT2}," in found  # where YAML stopped, for the record


def test_an_unclosed_quote_at_the_end_of_the_file(proj: Project) -> None:
    proj.write(GOOD + "kinds: ['webinar\n")
    (found,) = problems(proj.check())
    assert found.startswith(f"{proj.file}:{L_KIND3 + 2}:9: YAML syntax error: the single quote opened here"), found


def test_a_multi_line_quoted_value_is_not_blamed(proj: Project) -> None:
    """A quoted value may go on over several lines; when it swallows no key, it is not the
    culprit of a later error."""
    text = replace_line(GOOD, L_SUBJECT2, '          subject: "Anything')
    text = insert_after(text, L_SUBJECT2, '            else?"')
    text = replace_line(text, L_KIND3 + 1, "          kind: [")
    proj.write(text)
    (found,) = problems(proj.check())
    assert "quote opened here" not in found and "YAML syntax error" in found


# --- time zones, kinds, subjects ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "meant"),
    [("America/Chicgo", "America/Chicago"), ("america/chicago", "America/Chicago"), ("Chicago", "America/Chicago")],
)
def test_a_mistyped_time_zone_gets_did_you_mean(proj: Project, written: str, meant: str) -> None:
    proj.write(replace_line(GOOD, L_TIMEZONE, f"  timezone: {written}"))
    assert problems(proj.check()) == [
        f"{proj.file}:{L_TIMEZONE}:13: unknown time zone {written!r} (did you mean {meant!r}?)"
    ]


def test_an_unknown_kind_is_an_error_with_did_you_mean(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_KIND2, "          kind: remindr"))
    assert problems(proj.check()) == [
        f"{proj.file}:{L_KIND2}:17: unknown kind 'remindr' (did you mean 'reminder'?): use one of "
        "follow_up, new_info, reminder, special_offer (declare more under kinds:)"
    ]


def test_declared_kinds_are_known(proj: Project) -> None:
    text = replace_line(GOOD, L_KIND2, "          kind: webinar")
    proj.write(text)
    assert "unknown kind 'webinar'" in problems(proj.check())[0]
    proj.write("kinds: [webinar]\n" + text)
    result = proj.check()
    assert result.exit_code == 0, result.stderr


def test_the_shipped_kinds_are_the_known_ones() -> None:
    shipped = (Path(__file__).resolve().parents[1] / "campaigns.yaml").read_text(encoding="utf-8")
    used = {line.split(":", 1)[1].strip() for line in shipped.splitlines() if line.strip().startswith("kind:")}
    assert used == set(KINDS)


def test_a_subject_on_a_letter_is_an_error(proj: Project) -> None:
    proj.write(insert_after(GOOD, L_KIND3, '          subject: "Dear customer"'))
    assert problems(proj.check()) == [
        f"{proj.file}:{L_KIND3 + 1}:11: step 'letter': a letter has no subject, so subject: would be ignored; "
        "remove it (a reference line above the greeting goes in the template's {% block subject_line %})"
    ]


def test_a_subject_on_a_call_is_an_error(proj: Project) -> None:
    text = replace_line(GOOD, L_CHANNEL3, "          channel: call")
    proj.write(insert_after(text, L_KIND3, '          subject: "Ring them"'))
    (found,) = problems(proj.check())
    assert found.startswith(f"{proj.file}:{L_KIND3 + 1}:11: step 'letter': a call has no subject"), found


# --- stage events ------------------------------------------------------------------------------


def test_stage_events_that_change_nothing_or_land_without_a_track_warn(dripper_sqlite: Dripper) -> None:
    run = dripper_sqlite
    run("leads", "add", "ada@example.com", "--stage", "supplier_research", "--at", "2026-01-05T08:00:00Z")

    same = run("event", "ada@example.com", "stage", "--stage", "supplier_research", "--at", "2026-01-06T08:00:00Z")
    assert (
        "dripper: warning: ada@example.com is already in stage 'supplier_research': recorded, but nothing changes"
        in same.stderr
    )

    untracked = run("event", "ada@example.com", "stage", "--stage", "negotiation", "--at", "2026-01-07T08:00:00Z")
    assert "dripper: warning: campaign 'literature-follow-up' has no track for stage 'negotiation'" in untracked.stderr
    assert "stages with a track: supplier_research, lost_to_competitor, customer" in untracked.stderr
    assert "moved to stage negotiation" in untracked.stdout  # recorded all the same
    assert run.json("plan", "ada@example.com", "--json")["lead"]["stage"] == "negotiation"

    tracked = run("event", "ada@example.com", "stage", "--stage", "customer", "--at", "2026-01-08T08:00:00Z")
    assert "warning" not in tracked.stderr
