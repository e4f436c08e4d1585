"""`dripper check`: every problem in campaigns.yaml or a template it names is reported as
`FILE:LINE:COL: message` on stderr, exit 1; `tick` and `leads import` refuse the same file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dripper.cli import main

# Line numbers below are part of the tests: keep them in sync with GOOD.
GOOD = """\
sender:
  from: "Acme Sales <sales@acme.example>"
  reply_to: "reply@acme.example"
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
          channel: email
          kind: new_info
          subject: "Thanks, {{ lead.first_name }}"
          template: mail/thanks.html
        - id: reminder
          after: 2w
          channel: email
          subject: "Anything else for {{ lead.company or 'you' }}?"
          template: mail/reminder.html
        - id: letter
          after: 4w
          channel: letter
          template: letters/letter.html
"""
L_TIMEZONE, L_WINDOW, L_CAMPAIGNS, L_STAGE = 6, 7, 8, 11
L_ID1, L_AFTER1, L_CHANNEL1, L_SUBJECT1, L_TEMPLATE1 = 12, 13, 14, 16, 17
L_ID2, L_AFTER2, L_CHANNEL2, L_SUBJECT2, L_TEMPLATE2 = 18, 19, 20, 21, 22

TEMPLATES = {
    "mail/thanks.html": "<html><head><style>p { color: #222; }</style></head>\n<body>\n"
    "<p>Hello {{ lead.first_name or 'there' }},</p>\n<p>Thanks from {{ sender.from_name }}.</p>\n</body></html>\n",
    "mail/reminder.html": '{% extends "mail/base.html" %}\n{% block content %}\n<p>Anything else?</p>\n{% endblock %}\n',
    "mail/base.html": "<html>\n<body>\n<p>Hi {{ lead.first_name }}</p>\n{% block content %}{% endblock %}\n</body></html>\n",
    "letters/letter.html": "<p>{{ lead.full_name }}</p>\n<p>{{ lead.address_line1 }}</p>\n",
}

LEADS_CSV = (
    "email,first_name,last_name,company,stage,timezone,campaign\n"
    "ada@lovelace.example,Ada,Lovelace,Engines,supplier_research,,\n"
)


def line_of(text: str, n: int) -> str:
    return text.splitlines()[n - 1]


def replace_line(text: str, n: int, new: str) -> str:
    lines = text.splitlines()
    lines[n - 1] = new
    return "\n".join(lines) + "\n"


def delete_line(text: str, n: int) -> str:
    lines = text.splitlines()
    del lines[n - 1]
    return "\n".join(lines) + "\n"


def col_of(text: str, n: int, fragment: str) -> int:
    return line_of(text, n).index(fragment) + 1


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.campaigns = root / "campaigns.yaml"
        self.templates = root / "templates"
        self.db = root / "dripper.db"
        for name, source in TEMPLATES.items():
            self.template(name, source)
        self.write(GOOD)

    @property
    def file(self) -> str:
        """FILE as dripper prints it: the DRIPPER_CAMPAIGNS path."""
        return str(self.campaigns)

    def tfile(self, name: str) -> str:
        return str(self.templates / name)

    def write(self, text: str) -> None:
        self.campaigns.write_text(text, encoding="utf-8")

    def template(self, name: str, source: str) -> None:
        path = self.templates / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")

    def run(self, *args: str, campaigns: Path | None = None) -> Result:
        env = {
            "DRIPPER_CAMPAIGNS": str(campaigns or self.campaigns),
            "DRIPPER_DATABASE_URL": f"sqlite:///{self.db}",
            "DRIPPER_SECRET": "test-secret",
        }
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    def check(self) -> Result:
        return self.run("check")


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for var in list(os.environ):
        if var.startswith("DRIPPER_") and not var.startswith("DRIPPER_TEST"):
            monkeypatch.delenv(var)
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(tmp_path)
    return Project(root)


def problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("dripper:")]


def expect_success(result: Result) -> None:
    assert result.exit_code == 0, result.stderr


def expect_failure(result: Result) -> list[str]:
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    found = problems(result)
    assert found, result.stderr
    return found


def find(result: Result, prefix: str, *words: str) -> str:
    """The one reported problem that starts with `prefix` and contains every word."""
    found = expect_failure(result)
    hits = [p for p in found if p.startswith(prefix) and all(w in p for w in words)]
    assert hits, f"no problem starting {prefix!r} with {words!r} in:\n" + "\n".join(found)
    return hits[0]


# --- the happy paths ---------------------------------------------------------------------


def test_good_project_passes(proj: Project) -> None:
    # GOOD's one track is four weeks long: silenced, so not even the cadence lint warns (test_cadence.py)
    proj.write(GOOD.replace("    stages:\n", "    quiet: {cadence: [supplier_research]}\n    stages:\n", 1))
    result = proj.check()
    expect_success(result)
    assert problems(result) == []


def test_shipped_campaigns_yaml_passes(proj: Project) -> None:
    shipped = Path(__file__).resolve().parents[1] / "campaigns.yaml"
    assert shipped.is_file()
    result = proj.run("check", campaigns=shipped)
    assert result.exit_code == 0, result.stderr


def test_missing_campaigns_file(proj: Project) -> None:
    proj.campaigns.unlink()
    find(proj.check(), f"{proj.file}:1:1: ", "not found")


# --- YAML and unknown keys ----------------------------------------------------------------


def test_yaml_syntax_error_is_located(proj: Project) -> None:
    text = replace_line(GOOD, L_AFTER1, "          after: 0d: x")
    proj.write(text)
    result = proj.check()
    problem = find(result, f"{proj.file}:{L_AFTER1}:{col_of(text, L_AFTER1, ': x')}: ", "YAML syntax error")
    assert "mapping values" in problem
    assert len(problems(result)) == 1


def test_yaml_unclosed_quote_is_a_located_syntax_error(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_SUBJECT2, '          subject: "Anything else?'))
    found = expect_failure(proj.check())
    assert len(found) == 1
    file, line, col, message = found[0].split(":", 3)
    assert file == proj.file
    assert int(line) >= L_SUBJECT2 and int(col) >= 1
    assert "YAML syntax error" in message


def test_duplicate_yaml_key(proj: Project) -> None:
    text = GOOD.replace(
        line_of(GOOD, L_TEMPLATE1) + "\n", line_of(GOOD, L_TEMPLATE1) + "\n" + '          subject: "again"\n', 1
    )
    proj.write(text)
    find(proj.check(), f"{proj.file}:{L_TEMPLATE1 + 1}:11: ", "duplicate key", "subject")


@pytest.mark.parametrize(
    ("line", "new", "col", "bad", "suggestion"),
    [
        (L_CHANNEL1, "          chanel: email", 11, "chanel", "channel"),
        (L_SUBJECT1, '          subjet: "Thanks"', 11, "subjet", "subject"),
        (L_CAMPAIGNS, "campaign:", 1, "campaign", "campaigns"),
        (4, '  postal_adress: "Acme Inc."', 3, "postal_adress", "postal_address"),
        (L_WINDOW, '  send_windows: {days: mon-fri, hours: "09:00-17:00"}', 3, "send_windows", "send_window"),
        (L_WINDOW, '  send_window: {dayz: mon-fri, hours: "09:00-17:00"}', 17, "dayz", "days"),
        (L_TEMPLATE2, "          templates: mail/reminder.html", 11, "templates", "template"),
    ],
)
def test_unknown_key_with_did_you_mean(proj: Project, line: int, new: str, col: int, bad: str, suggestion: str) -> None:
    proj.write(replace_line(GOOD, line, new))
    problem = find(proj.check(), f"{proj.file}:{line}:{col}: ", f"unknown key '{bad}'")
    assert f"did you mean '{suggestion}'" in problem


def test_unknown_key_without_a_close_match_has_no_suggestion(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_CHANNEL1, "          zzzzzz: email"))
    problem = find(proj.check(), f"{proj.file}:{L_CHANNEL1}:11: ", "unknown key 'zzzzzz'")
    assert "did you mean" not in problem


# --- values ------------------------------------------------------------------------------


def test_bad_duration(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_AFTER2, "          after: 2x"))
    problem = find(proj.check(), f"{proj.file}:{L_AFTER2}:18: ", "after", "bad duration", "2x")
    assert "3mo" in problem  # says how to write one


def test_bad_duration_3m_suggests_mo_or_min(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_AFTER2, "          after: 3m"))
    problem = find(proj.check(), f"{proj.file}:{L_AFTER2}:18: ", "bad duration", "3m")
    assert "'mo'" in problem and "'min'" in problem


def test_unknown_stage_with_did_you_mean(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_STAGE, "      supplier_reserch:"))
    problem = find(proj.check(), f"{proj.file}:{L_STAGE}:7: ", "unknown funnel stage 'supplier_reserch'")
    assert "did you mean 'supplier_research'" in problem
    assert "extra_stages" in problem


def test_extra_stages_make_a_stage_valid(proj: Project) -> None:
    text = replace_line(GOOD, L_STAGE, "      trial_user:")
    proj.write(text)
    find(proj.check(), f"{proj.file}:{L_STAGE}:7: ", "unknown funnel stage 'trial_user'")
    proj.write("extra_stages: [trial_user]\n" + text)
    expect_success(proj.check())


def test_extra_stages_do_not_allow_other_unknown_stages(proj: Project) -> None:
    proj.write("extra_stages: [trial_user]\n" + replace_line(GOOD, L_STAGE, "      trial_usr:"))
    problem = find(proj.check(), f"{proj.file}:{L_STAGE + 1}:7: ", "unknown funnel stage 'trial_usr'")
    assert "did you mean 'trial_user'" in problem


def test_duplicate_step_id_reported_at_second_occurrence(proj: Project) -> None:
    text = replace_line(GOOD, L_ID2, "        - id: thanks")
    proj.write(text)
    result = proj.check()
    problem = find(result, f"{proj.file}:{L_ID2}:15: ", "duplicate step id 'thanks'")
    assert f"line {L_ID1}" in problem
    assert not any(p.startswith(f"{proj.file}:{L_ID1}:") for p in problems(result))


def test_duplicate_step_id_in_another_stage_of_the_same_campaign(proj: Project) -> None:
    text = GOOD + (
        "      customer:\n"
        "        - id: welcome\n"
        "          after: 0d\n"
        '          subject: "Welcome"\n'
        "          template: mail/thanks.html\n"
        "        - id: reminder\n"
        "          after: 1w\n"
        '          subject: "Again"\n'
        "          template: mail/thanks.html\n"
    )
    proj.write(text)
    dup_line = len(GOOD.splitlines()) + 6
    assert line_of(text, dup_line).strip() == "- id: reminder"
    result = proj.check()
    problem = find(result, f"{proj.file}:{dup_line}:15: ", "duplicate step id 'reminder'", "follow-up")
    assert f"line {L_ID2}" in problem
    assert len(problems(result)) == 1


def test_same_step_id_in_another_campaign_is_fine(proj: Project) -> None:
    proj.write(
        GOOD
        + (
            "  other:\n"
            "    stages:\n"
            "      customer:\n"
            "        - id: thanks\n"
            "          after: 0d\n"
            '          subject: "Welcome"\n'
            "          template: mail/thanks.html\n"
        )
    )
    expect_success(proj.check())


def test_email_step_without_subject(proj: Project) -> None:
    proj.write(delete_line(GOOD, L_SUBJECT2))
    find(proj.check(), f"{proj.file}:{L_ID2}:", "'reminder'", "subject")


def test_letter_step_needs_no_subject(proj: Project) -> None:
    assert "subject" not in GOOD.split("- id: letter")[1]
    assert proj.check().exit_code == 0


def test_channel_fax_is_rejected(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_CHANNEL2, "          channel: fax"))
    problem = find(proj.check(), f"{proj.file}:{L_CHANNEL2}:20: ", "channel")
    assert "email" in problem and "letter" in problem and "call" in problem


def test_missing_template_located_at_the_template_value(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_TEMPLATE2, "          template: mail/nope.html"))
    result = proj.check()
    find(result, f"{proj.file}:{L_TEMPLATE2}:21: ", "mail/nope.html", "not found")
    assert len(problems(result)) == 1


def test_bad_timezone_in_defaults(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_TIMEZONE, "  timezone: Mars/Olympus"))
    find(proj.check(), f"{proj.file}:{L_TIMEZONE}:13: ", "time zone", "Mars/Olympus")


@pytest.mark.parametrize(
    ("hours", "words"),
    [("17:00-09:00", "end after it starts"), ("25:00-26:00", "00:00 and 24:00"), ("nine-five", "09:00-17:00")],
)
def test_bad_send_window_hours(proj: Project, hours: str, words: str) -> None:
    text = replace_line(GOOD, L_WINDOW, f'  send_window: {{days: mon-fri, hours: "{hours}"}}')
    proj.write(text)
    col = col_of(text, L_WINDOW, f'"{hours}"')
    find(proj.check(), f"{proj.file}:{L_WINDOW}:{col}: ", "bad hours", hours, words)


def test_bad_send_window_days(proj: Project) -> None:
    text = replace_line(GOOD, L_WINDOW, '  send_window: {days: mon-frx, hours: "09:00-17:00"}')
    proj.write(text)
    find(proj.check(), f"{proj.file}:{L_WINDOW}:{col_of(text, L_WINDOW, 'mon-frx')}: ", "bad days", "mon-frx")


def test_several_schema_errors_are_all_reported(proj: Project) -> None:
    text = replace_line(GOOD, L_CHANNEL1, "          chanel: email")
    text = replace_line(text, L_AFTER2, "          after: 2x")
    text = replace_line(text, L_CHANNEL2, "          channel: fax")
    proj.write(text)
    result = proj.check()
    find(result, f"{proj.file}:{L_CHANNEL1}:11: ", "chanel", "channel")
    find(result, f"{proj.file}:{L_AFTER2}:18: ", "2x")
    find(result, f"{proj.file}:{L_CHANNEL2}:20: ", "channel")
    assert len(problems(result)) == 3


def test_several_semantic_errors_are_all_reported_in_file_order(proj: Project) -> None:
    text = replace_line(GOOD, L_TIMEZONE, "  timezone: Mars/Olympus")
    text = replace_line(text, L_STAGE, "      supplier_reserch:")
    text = replace_line(text, L_ID2, "        - id: thanks")
    text = delete_line(text, L_SUBJECT2)
    proj.write(text)
    result = proj.check()
    found = problems(result)
    assert [p.split(":")[1] for p in found] == [str(L_TIMEZONE), str(L_STAGE), str(L_ID2), str(L_ID2)]
    assert any("Mars/Olympus" in p for p in found)
    assert any("supplier_reserch" in p for p in found)
    assert any("duplicate step id 'thanks'" in p for p in found)
    assert any("subject" in p and "'thanks'" in p and "duplicate" not in p for p in found)


# --- templates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_line",
    [
        "<p>{% if lead.company %}never closed</p>",
        "<p>{% if %}x{% endif %}</p>",
        "<p>{{ lead.first_name </p>",
        "<p>{% for x in %}{% endfor %}</p>",
    ],
)
def test_template_syntax_error_located_in_the_template(proj: Project, bad_line: str) -> None:
    proj.template("mail/thanks.html", f"<html>\n<body>\n{bad_line}\n<p>more</p>\n</body></html>\n")
    result = proj.check()
    find(result, f"{proj.tfile('mail/thanks.html')}:3:", "syntax error")
    assert not any(p.startswith(proj.file) for p in problems(result))


@pytest.mark.parametrize(
    ("line", "said"),
    [("<p>{{ lead.first_name }</p>", "syntax error"), ("<p>{{ lead.frist_name }}</p>", "frist_name")],
    ids=["syntax_error", "undefined_variable"],
)
def test_an_error_in_an_extended_base_is_located_in_the_base(proj: Project, line: str, said: str) -> None:
    proj.template(
        "mail/base.html", "<html>\n<body>\n<p>Hi</p>\n" + line + "\n{% block content %}{% endblock %}\n</body></html>\n"
    )
    find(proj.check(), f"{proj.tfile('mail/base.html')}:4:", said)


def test_template_extending_a_missing_base(proj: Project) -> None:
    proj.template("mail/reminder.html", '{% extends "mail/gone.html" %}\n')
    find(proj.check(), f"{proj.file}:{L_TEMPLATE2}:", "mail/gone.html")


def test_subject_syntax_error_located_in_campaigns_yaml(proj: Project) -> None:
    text = replace_line(GOOD, L_SUBJECT1, '          subject: "Thanks {% if %}"')
    proj.write(text)
    find(proj.check(), f"{proj.file}:{L_SUBJECT1}:20: ", "syntax error", "subject")


def test_subject_unclosed_expression(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_SUBJECT2, '          subject: "Hi {{ lead.first_name"'))
    find(proj.check(), f"{proj.file}:{L_SUBJECT2}:20: ", "syntax error", "subject")


@pytest.mark.parametrize("subject", ['"Thanks {% if %}"', '"Thanks {{ lead.frist_name }}"'])
def test_subject_error_is_not_blamed_on_the_template(proj: Project, subject: str) -> None:
    proj.write(replace_line(GOOD, L_SUBJECT1, f"          subject: {subject}"))
    result = proj.check()
    found = expect_failure(result)
    assert not any(p.startswith(proj.tfile("mail/thanks.html")) for p in found), found
    assert len(found) == 1


def test_subject_error_does_not_hide_a_template_error(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_SUBJECT1, '          subject: "Thanks {{ lead.nope }}"'))
    proj.template("mail/thanks.html", "<html>\n<body>\n<p>{{ lead.frist_name }}</p>\n</body></html>\n")
    result = proj.check()
    find(result, f"{proj.file}:{L_SUBJECT1}:20: ", "nope")
    find(result, f"{proj.tfile('mail/thanks.html')}:3:", "frist_name")


def test_undefined_lead_attribute_in_template(proj: Project) -> None:
    proj.template("mail/thanks.html", "<html>\n<body>\n<p>Hello {{ lead.frist_name }}</p>\n</body></html>\n")
    result = proj.check()
    find(result, f"{proj.tfile('mail/thanks.html')}:3:", "frist_name")
    assert len(problems(result)) == 1


def test_undefined_variable_in_template(proj: Project) -> None:
    proj.template("mail/thanks.html", "<p>Hello</p>\n<p>{{ leed.name }}</p>\n")
    find(proj.check(), f"{proj.tfile('mail/thanks.html')}:2:", "leed")


def test_undefined_variable_inside_a_block_and_loop(proj: Project) -> None:
    proj.template(
        "mail/reminder.html",
        '{% extends "mail/base.html" %}\n{% block content %}\n'
        "{% for item in ['a', 'b'] %}\n<p>{{ item }}</p>\n<p>{{ lead.compnay }}</p>\n{% endfor %}\n"
        "{% endblock %}\n",
    )
    find(proj.check(), f"{proj.tfile('mail/reminder.html')}:5:", "compnay")


def test_undefined_variable_in_a_letter_template(proj: Project) -> None:
    proj.template("letters/letter.html", "<p>{{ lead.full_name }}</p>\n<p>{{ lead.adress_line1 }}</p>\n")
    find(proj.check(), f"{proj.tfile('letters/letter.html')}:2:", "adress_line1")


def test_undefined_variable_in_subject(proj: Project) -> None:
    proj.write(replace_line(GOOD, L_SUBJECT2, '          subject: "Hi {{ lead.frist_name }}"'))
    find(proj.check(), f"{proj.file}:{L_SUBJECT2}:20: ", "frist_name")


def test_lead_attrs_are_free_columns(proj: Project) -> None:
    # Any column name, as long as leads without that column get a fallback.
    proj.template(
        "mail/thanks.html",
        "<p>{{ lead.attrs.anything | default('') }}</p>\n<p>{{ lead.attrs.get('other') }}</p>\n"
        "{% if lead.attrs.product is defined %}<p>{{ lead.attrs.product | upper }}</p>{% endif %}\n",
    )
    proj.write(replace_line(GOOD, L_SUBJECT1, "          subject: \"About {{ lead.attrs.product | default('us') }}\""))
    expect_success(proj.check())


def test_an_attribute_without_fallback_in_a_subject_is_a_warning(proj: Project) -> None:
    # Leads that have the column get it; the others fail that touch only (render_error).
    proj.write(replace_line(GOOD, L_SUBJECT1, '          subject: "About {{ lead.attrs.product }}"'))
    result = proj.check()
    assert result.exit_code == 0, result.stderr
    assert f"{proj.file}:{L_SUBJECT1}:20: warning: lead.attrs.product is not a declared field" in result.stderr


def test_everything_templates_see_is_accepted(proj: Project) -> None:
    proj.template(
        "mail/thanks.html",
        (
            "<p>{{ lead.email }} {{ lead.first_name }} {{ lead.last_name }} {{ lead.company }} {{ lead.stage }}</p>\n"
            "<p>{{ lead.timezone }} {{ sender.from_name }} {{ sender.postal_address }}</p>\n"
            "<p>{{ campaign.name }} {{ step.id }} {{ step.kind }} {{ unsubscribe_url }} {{ today }}</p>\n"
        ),
    )
    expect_success(proj.check())


def test_several_template_errors_are_all_reported(proj: Project) -> None:
    proj.template("mail/thanks.html", "<p>one</p>\n<p>{{ lead.frist_name }}</p>\n")
    proj.template("mail/reminder.html", "<p>one</p>\n<p>two</p>\n<p>{% if %}</p>\n")
    proj.write(replace_line(GOOD, L_TEMPLATE1 + 9, "          template: letters/gone.html"))
    result = proj.check()
    find(result, f"{proj.tfile('mail/thanks.html')}:2:", "frist_name")
    find(result, f"{proj.tfile('mail/reminder.html')}:3:", "syntax error")
    find(result, f"{proj.file}:{L_TEMPLATE1 + 9}:21: ", "letters/gone.html", "not found")
    assert len(problems(result)) == 3


# --- other commands refuse a broken file, and change nothing ------------------------------

BROKEN = [
    pytest.param(lambda t: replace_line(t, L_CHANNEL1, "          chanel: email"), L_CHANNEL1, "chanel", id="schema"),
    pytest.param(lambda t: replace_line(t, L_ID2, "        - id: thanks"), L_ID2, "duplicate", id="semantic"),
]


@pytest.mark.parametrize(("breakage", "line", "word"), BROKEN)
def test_tick_refuses_a_broken_file_with_the_same_messages(proj: Project, breakage, line: int, word: str) -> None:
    proj.write(breakage(GOOD))
    checked = proj.check()
    find(checked, f"{proj.file}:{line}:", word)
    ticked = proj.run("tick", "--at", "2026-01-06T15:00:00Z")
    assert expect_failure(ticked) == problems(checked)
    assert not (proj.root / "outbox").exists() and not (Path.cwd() / "outbox").exists()


def test_tick_refuses_a_broken_template(proj: Project) -> None:
    proj.template("mail/thanks.html", "<p>one</p>\n<p>{% if %}</p>\n")
    ticked = proj.run("tick", "--at", "2026-01-06T15:00:00Z")
    find(ticked, f"{proj.tfile('mail/thanks.html')}:2:", "syntax error")


def leads_in_db(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        if "leads" not in tables:
            return []
        return [r[0] for r in conn.execute("select email from leads")]


def touches_in_db(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        return conn.execute("select count(*) from touches").fetchone()[0] if "touches" in tables else 0


def dump(db: Path) -> tuple[list, list]:
    with sqlite3.connect(db) as conn:
        return (
            sorted(conn.execute("select * from leads").fetchall(), key=repr),
            sorted(conn.execute("select * from touches").fetchall(), key=repr),
        )


def test_import_refuses_a_broken_file_and_writes_nothing(proj: Project) -> None:
    csv = proj.root / "leads.csv"
    csv.write_text(LEADS_CSV, encoding="utf-8")
    proj.write(replace_line(GOOD, L_AFTER2, "          after: 3m"))
    result = proj.run("leads", "import", str(csv), "--at", "2026-01-05T08:00:00Z")
    find(result, f"{proj.file}:{L_AFTER2}:18: ", "bad duration")
    assert leads_in_db(proj.db) == []
    assert touches_in_db(proj.db) == 0

    proj.write(GOOD)
    fixed = proj.run("leads", "import", str(csv), "--at", "2026-01-05T08:00:00Z")
    assert fixed.exit_code == 0, fixed.stderr
    assert leads_in_db(proj.db) == ["ada@lovelace.example"]
    assert touches_in_db(proj.db) == 1  # a track is planned one touch ahead


def test_add_and_tick_refuse_after_a_good_import_and_change_nothing(proj: Project) -> None:
    csv = proj.root / "leads.csv"
    csv.write_text(LEADS_CSV, encoding="utf-8")
    assert proj.run("leads", "import", str(csv), "--at", "2026-01-05T08:00:00Z").exit_code == 0
    before = dump(proj.db)
    proj.template("mail/thanks.html", "<p>{{ lead.frist_name }}</p>\n")
    add = proj.run("leads", "add", "new@x.example", "--at", "2026-01-05T09:00:00Z")
    find(add, f"{proj.tfile('mail/thanks.html')}:1:", "frist_name")
    tick = proj.run("tick", "--at", "2026-01-06T15:00:00Z")
    find(tick, f"{proj.tfile('mail/thanks.html')}:1:", "frist_name")
    assert leads_in_db(proj.db) == ["ada@lovelace.example"]
    assert dump(proj.db) == before


def _check_one_template(tmp_path: Path, text: str) -> Result:
    """`dripper check` of a campaign whose one step uses the template `text` (templates/t.html)."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns.yaml").write_text(
        'sender: {from: "A <a@b.example>", postal_address: "x"}\n'
        "campaigns:\n  c:\n    stages:\n      supplier_research:\n"
        '        - {id: a, after: 0d, subject: "hi", template: t.html}\n'
    )
    (tmp_path / "templates" / "t.html").write_text(text)
    return CliRunner().invoke(main, ["check"], env={"DRIPPER_CAMPAIGNS": str(tmp_path / "campaigns.yaml")})


def test_variables_on_branches_the_sample_lead_does_not_take_are_checked(tmp_path: Path) -> None:
    """The static check reads every branch: a typo inside an {% if %} is found too."""
    result = _check_one_template(
        tmp_path,
        "<p>Hello {{ lead.first_name }}</p>\n"
        '{% if lead.company == "never" %}\n'
        "  {{ lead.frist_name }} {{ leed.name }}\n"
        "  {% for i in [1] %}{{ loop.index }}{% endfor %}\n"
        "{% endif %}\n"
        "{{ sender.postal_adress }}\n",
    )
    assert result.exit_code == 1
    t = str(tmp_path / "templates" / "t.html")
    assert f"{t}:3:1: variable lead.frist_name that a lead does not have (did you mean 'first_name'?)" in result.stderr
    assert f"{t}:3:1: undefined variable 'leed'" in result.stderr
    assert f"{t}:6:1: variable sender.postal_adress" in result.stderr and "'postal_address'" in result.stderr
    assert "loop" not in result.stderr


def test_the_stores_bookkeeping_is_not_a_template_variable(tmp_path: Path) -> None:
    """A stored lead carries its status and time stamps; templates see only its own values."""
    result = _check_one_template(
        tmp_path,
        "<p>Hello {{ lead.full_name }} of {{ lead.company }} ({{ lead.id }})</p>\n"
        "{% if lead.country %}{{ lead.status }}{% endif %}\n"
        "{{ lead.paused_until }}\n",
    )
    assert result.exit_code == 1
    t = str(tmp_path / "templates" / "t.html")
    assert f"{t}:2:1: variable lead.status that a lead does not have" in result.stderr
    assert f"{t}:3:1: variable lead.paused_until that a lead does not have" in result.stderr
    assert "full_name" not in result.stderr and "company" not in result.stderr and "lead.id" not in result.stderr


def test_structure_and_schema_problems_are_reported_together(tmp_path: Path) -> None:
    """Duplicate ids and unknown stages show up in the same run as schema errors."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "a.html").write_text("<p>hi</p>\n")
    (tmp_path / "campaigns.yaml").write_text(
        'sender: {from: "A <a@b.example>", postal_address: "x"}\n'  # 1
        "campaigns:\n"  # 2
        "  lit:\n"  # 3
        "    stages:\n"  # 4
        "      supplier_research:\n"  # 5
        "        - {id: thanks, after: 0d, subject: hi, template: a.html}\n"  # 6
        "        - id: thanks\n"  # 7
        "          after: 2x\n"  # 8
        "          template: a.html\n"  # 9
        "      supplier_reserch:\n"  # 10
        "        - {id: z, after: 1w, channel: fax, template: a.html}\n"  # 11
    )
    from click.testing import CliRunner

    from dripper.cli import main

    result = CliRunner().invoke(main, ["check"], env={"DRIPPER_CAMPAIGNS": str(tmp_path / "campaigns.yaml")})
    assert result.exit_code == 1
    f = str(tmp_path / "campaigns.yaml")
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(f)]
    assert any(ln.startswith(f"{f}:7:15: duplicate step id 'thanks'") for ln in lines), lines
    assert any(ln.startswith(f"{f}:8:18: after: bad duration") for ln in lines), lines
    assert any(ln.startswith(f"{f}:10:7: unknown funnel stage 'supplier_reserch'") for ln in lines), lines
    assert any(":11:" in ln and "channel" in ln for ln in lines), lines
    assert [int(ln.split(":")[1]) for ln in lines] == sorted(int(ln.split(":")[1]) for ln in lines)


def test_an_attribute_without_fallback_is_a_listed_warning(proj: Project) -> None:
    # Renders for leads with a `phone` column, fails at send time for the others: a warning.
    proj.template(
        "letters/letter.html",
        "<p>{{ lead.full_name }}</p>\n<p>Call {{ lead.attrs.phone }}</p>\n<p>{{ lead.attrs.fax }}</p>\n",
    )
    result = proj.check()
    assert result.exit_code == 0, result.stderr
    # (the cadence check also warns about the short test track: not what this is about)
    warnings = [ln for ln in result.stderr.splitlines() if ": warning: lead.attrs." in ln]
    assert [ln.split(": warning: ")[0] for ln in warnings] == [
        f"{proj.tfile('letters/letter.html')}:2:1",
        f"{proj.tfile('letters/letter.html')}:3:1",
    ], warnings
    assert "lead.attrs.phone is not a declared field" in warnings[0]
    assert "lead.attrs.fax is not a declared field" in warnings[1]
    proj.template(
        "letters/letter.html",
        "<p>{{ lead.full_name }}</p>\n<p>Call {{ lead.attrs.phone | default('') }}</p>\n<p>{{ lead.attrs.fax }}</p>\n",
    )
    declared = GOOD.replace("campaigns:\n", "fields:\n  fax: {}\ncampaigns:\n", 1)  # declared: used freely
    proj.write(declared.replace("    stages:\n", "    quiet: {cadence: [supplier_research]}\n    stages:\n", 1))
    result = proj.check()
    assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr
