"""Step conditions (`when:`): the docs page's campaign run end to end, `check`'s located
errors, evaluation at send time, and what plan/simulate/diff/report show."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from dripper.campaign import conditions
from dripper.campaign.model import parse
from dripper.errors import ConfigError
from dripper.leads.records import Lead
from tests.conftest import Dripper

DOCS = Path(__file__).parent.parent / "docs" / "marketers" / "conditions.md"
T0 = "2026-01-05T10:00:00-06:00"  # a Monday


def docs_campaigns() -> str:
    """The first YAML block of docs/marketers/conditions.md: the file the page explains."""
    match = re.search(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert match is not None
    return match.group(1)


TEMPLATES = {
    "mail/thanks.html": "<p>Thanks, {{ lead.first_name }}.</p>",
    "mail/case_study_de.html": "<p>Die Fallstudie.</p>",
    "mail/case_study.html": "<p>The case study.</p>",
    "mail/after_call.html": "<p>As promised.</p>",
    "mail/switch_offer.html": "<p>We pay the switch from {{ lead.attrs.competitor }}.</p>",
    "mail/win_back.html": "<p>Still happy?</p>",
    "letters/follow_up.html": "<p>Dear {{ lead.first_name }}, a letter.</p>",
    "calls/check_in.html": "Ask how the evaluation goes.",
}
LEADS = """\
email,first_name,stage,country,language,competitor,address_line1,city,region,postal_code
anna@example.de,Anna,supplier_research,DE,de-AT,,Ring 1,Wien,,1010
bob@example.com,Bob,supplier_research,US,en,,1 Elm St,Springfield,IL,62701
carla@example.ca,Carla,supplier_research,CA,,,,,,
dan@example.com,Dan,lost_to_competitor,US,en,Globex,,,,
eve@example.com,Eve,lost_to_competitor,US,en,Umbrella,,,,
fay@example.com,Fay,lost_to_competitor,US,en,,,,,
"""


def conditions_project(project: Path) -> None:
    (project / "campaigns.yaml").write_text(docs_campaigns(), encoding="utf-8")
    shutil.rmtree(project / "templates")
    for name, text in TEMPLATES.items():
        path = project / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    (project / "leads.csv").write_text(LEADS, encoding="utf-8")


@pytest.fixture
def docs_project(project: Path, dripper: Dripper) -> Dripper:
    conditions_project(project)
    return dripper


def states(dripper: Dripper, email: str) -> dict[str, tuple[str, str | None]]:
    plan = dripper.json("plan", email, "--json")
    return {t["step"]: (t["state"], t["reason"]) for t in plan["touches"]}


def at(days: float, hours: float = 0) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(T0) + timedelta(days=days, hours=hours)).isoformat()


def test_the_docs_examples_skip_exactly_the_leads_they_should(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("check")
    dripper("leads", "import", "leads.csv", "--at", T0)
    for day in (0, 7, 14, 21, 35):
        dripper("tick", "--at", at(day))
    # the day of the calls: Anna asks to be called back, Carla is not reached
    dripper("event", "anna@example.de", "called", "--outcome", "call_back", "--at", at(35, 2))
    dripper("event", "carla@example.ca", "called", "--outcome", "voicemail", "--at", at(35, 3))
    dripper("tick", "--at", at(37))

    anna, bob, carla = (states(dripper, e) for e in ("anna@example.de", "bob@example.com", "carla@example.ca"))
    skipped = ("skipped", "condition")
    # 1. the German-speaking lead gets the German case study, the others the English one
    assert anna["case-study-de"][0] == "sent" and anna["case-study"] == skipped
    assert bob["case-study-de"] == skipped and bob["case-study"][0] == "sent"
    assert carla["case-study-de"] == skipped and carla["case-study"][0] == "sent"
    # 2. no letter outside the countries we print for; Carla's country is one, her address is not
    assert anna["letter-1"] == skipped
    assert bob["letter-1"][0] == "sent", bob
    assert carla["letter-1"] == ("skipped", "no_postal_address")
    # 3. the follow-up two days after the call, only after `call_back`
    assert all(s["call-1"][0] == "sent" for s in (anna, bob, carla))
    assert anna["after-call-back"][0] == "sent"
    assert bob["after-call-back"] == skipped and carla["after-call-back"] == skipped
    # 4. lost to a competitor: the offer against the ones we beat, the other for the rest
    dan, eve, fay = (states(dripper, e) for e in ("dan@example.com", "eve@example.com", "fay@example.com"))
    assert dan["switch-offer"][0] == "sent" and dan["win-back"] == skipped
    assert eve["switch-offer"] == skipped and eve["win-back"][0] == "sent"
    assert fay["switch-offer"] == skipped and fay["win-back"][0] == "sent"  # no competitor: not one we beat

    outbox = sorted(p.name for p in (dripper.root / "outbox").glob("*.eml"))
    assert len([n for n in outbox if "_switch-offer_" in n]) == 1
    assert len([n for n in outbox if "_after-call-back_" in n]) == 1
    assert len([n for n in outbox if "_case-study-de_" in n]) == 1


def test_the_docs_call_back_command_is_accepted(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("leads", "add", "ada@example.com", "--at", T0)
    page = DOCS.read_text(encoding="utf-8")
    command = re.search(r"```sh\n(dripper event .*?)\n```", page)
    assert command is not None
    args = command.group(1).split()[1:]
    result = dripper(*args, "--at", at(1))
    assert "recorded as call_back" in result.stdout


# --- check -------------------------------------------------------------------------------

BASE = """\
sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
fields:
  competitor: {type: text}
vars:
  print_countries: [US, CA]
campaigns:
  c:
    stages:
      supplier_research:
        - id: call-1
          after: 0d
          channel: call
          template: t.html
        - id: mail-1
          after: 1d
          subject: "s"
          template: t.html
          when: {when}
"""


def problems_for(expression: str) -> list[str]:
    try:
        parse(BASE.replace("{when}", expression), "campaigns.yaml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("lead.langauge == 'de'", "20:22: when: a lead has no 'langauge' (did you mean 'language'?)"),
        ("leed.country == 'DE'", "20:17: when: unknown name 'leed' (did you mean 'lead'?)"),
        (
            "lead.country in vars.print_country",
            "20:38: when: no variable 'print_country' (did you mean 'print_countries'?)",
        ),
        (
            "lead.attrs.competitr == 'Globex'",
            "20:28: when: lead.attrs.competitr is not a declared field (did you mean 'competitor'?)",
        ),
        ("call_outcome('call-1') == 'callback'", "20:44: when: no call outcome 'callback' (did you mean 'call_back'?)"),
        (
            "call_outcome('cal-1') == 'call_back'",
            "20:31: when: no step 'cal-1' in campaign 'c' (did you mean 'call-1'?)",
        ),
        ("call_outcome('mail-1') == 'call_back'", "20:31: when: step 'mail-1' is not a call step"),
        ("clicked('mail-2')", "20:26: when: no step 'mail-2' in campaign 'c' (did you mean 'mail-1'?)"),
        ("was_in_stage('negotation')", "20:31: when: unknown funnel stage 'negotation' (did you mean 'negotiation'?)"),
        ("was_in_stage()", "20:17: when: was_in_stage() needs a stage"),
        ("clicked(lead.email)", "20:17: when: clicked() takes at most one quoted argument"),
        ('"lead.country =="', "20:17: when: syntax error"),
        ("\"lead.country == 'US' lead\"", "20:17: when: unexpected 'lead'"),
        ('"lead.__class__"', "20:23: when: a lead has no '__class__'"),
        ('""', "20:17: when: is empty"),
        ("lead.attrs.employees | integer > 5", "20:17: when: No filter named 'integer'"),
    ],
)
def test_check_locates_every_mistake_in_a_condition(expression: str, expected: str) -> None:
    found = problems_for(expression)
    assert any(p.startswith(f"campaigns.yaml:{expected}") for p in found), found


@pytest.mark.parametrize(
    "expression",
    [
        "lead.language.startswith('de')",
        "lead.country in vars.print_countries and not replied()",
        "call_outcome('call-1') in ['call_back', 'voicemail']",
        "lead.attrs.anything_else == 'x' or clicked('mail-1') or clicked()",
        "was_in_stage('negotiation') and lead.owner == 'ann'",
    ],
)
def test_check_accepts_good_conditions(expression: str) -> None:
    assert problems_for(expression) == []


# --- evaluation ---------------------------------------------------------------------------


def subject(language: str = "", owner: str = "", **attrs: str) -> conditions.Subject:
    config = parse(BASE.replace("{when}", "'true'"), "campaigns.yaml")
    lead = Lead(
        email="a@example.com",
        stage="supplier_research",
        campaign="c",
        country="DE",
        language=language,
        owner=owner,
        attrs=dict(attrs),
    )
    return conditions.subject_for(config, "c", lead)


def test_a_missing_column_is_false_not_an_error() -> None:
    assert not conditions.holds("lead.attrs.competitor == 'Globex'", subject())
    assert not conditions.holds("lead.attrs.competitor in ['Globex']", subject())
    assert conditions.holds("not lead.attrs.competitor", subject())
    assert conditions.holds("lead.language.startswith('de')", subject(language="de-CH"))
    # language and owner are the lead's columns (migration 0013), not attributes
    assert not conditions.holds("lead.language.startswith('de')", subject(locale="de-CH"))
    assert conditions.holds("lead.owner == 'ann'", subject(owner="ann"))
    assert conditions.holds("lead.country in vars.print_countries", subject()) is False


def test_the_sandbox_refuses_to_reach_into_the_program() -> None:
    with pytest.raises(conditions.ConditionError):
        conditions.holds("lead.__class__.__mro__", subject())
    with pytest.raises(conditions.ConditionError):
        conditions.holds("vars.__init__.__globals__", subject())
    assert not conditions.holds("lead.attrs.__class__", subject())  # unsafe: undefined


def test_history_reads_clicks_calls_and_stages() -> None:
    history = conditions.History.of(
        [
            {"kind": "clicked", "detail": {"step": "mail-1"}},
            {"kind": "called", "detail": {"step": "call-1", "outcome": "voicemail"}},
            {"kind": "called", "detail": {"step": "call-1", "outcome": "call_back"}},
            {"kind": "stage", "detail": {"from": "negotiation", "to": "supplier_research"}},
            {"kind": "replied", "detail": None},
        ]
    )
    base = subject()
    seen = conditions.Subject(base.lead, history, base.vars)
    for text in (
        "clicked('mail-1')",
        "clicked()",
        "call_outcome('call-1') == 'call_back'",
        "call_outcome() == 'call_back'",
        "was_in_stage('negotiation')",
        "replied()",
    ):
        assert conditions.holds(text, seen), text
    assert not conditions.holds("clicked('call-1') or call_outcome('mail-1')", seen)
    assert not conditions.holds("replied() or was_in_stage('customer')", base)


# --- six months: conditions skip exactly the leads they should -----------------------------

SIX_MONTHS = """\
sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
defaults:
  timezone: UTC
fields:
  size: {type: choice, choices: [small, large]}
vars:
  home: [US, CA]
campaigns:
  c:
    stages:
      supplier_research:
        - {id: m0, after: 0d, subject: "s", template: t.html}
        - {id: de-1, after: 2w, subject: "s", template: t.html, when: "lead.language.startswith('de')"}
        - {id: en-1, after: 2w, subject: "s", template: t.html, when: "not lead.language.startswith('de')"}
        - {id: home-1, after: 1mo, subject: "s", template: t.html, when: "lead.country in vars.home"}
        - {id: large-2, after: 2mo, subject: "s", template: t.html, when: "lead.attrs.size == 'large'"}
        - {id: m3, after: 3mo, subject: "s", template: t.html}
        - {id: mixed-4, after: 4mo, subject: "s", template: t.html, when: "lead.attrs.size != 'small' and lead.country != 'DE'"}
        - {id: seg-6, after: 6mo, subject: "s", template: t.html, when: "lead.attrs.segment in ['a', 'b']"}
"""
LANGUAGES, COUNTRIES, SIZES, SEGMENTS = (
    ("de", "de-AT", "en", ""),
    ("US", "CA", "DE", "FR"),
    ("large", "small", ""),
    ("a", "b", "c"),
)


def six_month_leads() -> list[dict[str, str]]:
    return [
        {
            "email": f"lead{i}@example.com",
            "language": LANGUAGES[i % 4],
            "country": COUNTRIES[(i // 4) % 4],
            "size": SIZES[i % 3],
            "segment": SEGMENTS[(i // 3) % 3],
        }
        for i in range(72)
    ]


def csv_of(rows: list[dict[str, str]]) -> str:
    header = "email,stage,country,language,size,segment\n"
    return header + "".join(
        f"{r['email']},supplier_research,{r['country']},{r['language']},{r['size']},{r['segment']}\n" for r in rows
    )


def test_six_months_of_conditions_skip_exactly_the_leads_they_should(project: Path, dripper: Dripper) -> None:
    from datetime import datetime, timedelta

    (project / "campaigns.yaml").write_text(SIX_MONTHS, encoding="utf-8")
    (project / "templates" / "t.html").write_text("<p>Hello.</p>\n", encoding="utf-8")
    rows = six_month_leads()
    (project / "leads.csv").write_text(csv_of(rows), encoding="utf-8")
    start = datetime.fromisoformat("2026-01-05T09:00:00+00:00")
    dripper("leads", "import", "leads.csv", "--at", start.isoformat())
    changed: list[dict[str, str]] = []
    for day in range(190):
        if day == 40:  # after large-2 was planned (day 30): the size at send time counts
            changed = [{**r, "size": "large"} for r in rows if r["size"] != "large"][:7]
            (project / "changed.csv").write_text(csv_of(changed), encoding="utf-8")
            dripper("leads", "import", "changed.csv", "--at", (start + timedelta(days=day)).isoformat())
        dripper("tick", "--at", (start + timedelta(days=day, hours=1)).isoformat())

    final = {r["email"]: r for r in rows} | {r["email"]: r for r in changed}
    rules = {
        "m0": lambda r: True,
        "de-1": lambda r: r["language"].startswith("de"),
        "en-1": lambda r: not r["language"].startswith("de"),
        "home-1": lambda r: r["country"] in ("US", "CA"),
        "large-2": lambda r: r["size"] == "large",
        "m3": lambda r: True,
        "mixed-4": lambda r: r["size"] != "small" and r["country"] != "DE",
        "seg-6": lambda r: r["segment"] in ("a", "b"),
    }
    report = dripper.json("report", "--json")["campaigns"]["c"]["steps"]
    for step, rule in rules.items():
        applies = sum(1 for r in final.values() if rule(r))
        row = report[step]
        assert (row["sent"], row["skipped"], row["reasons"].get("condition", 0)) == (
            applies,
            72 - applies,
            72 - applies,
        ), step
        assert row["planned"] == row["failed"] == row["suppressed"] == 0, step
    assert report["large-2"]["sent"] == 24 + 7  # a third of them large at import, 7 made large later
    assert report["de-1"]["when"] == "lead.language.startswith('de')" and "when" not in report["m0"]


# --- plan, simulate, diff: what conditions say before a touch falls due ----------------------


def test_plan_shows_whether_each_condition_holds_now(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("leads", "import", "leads.csv", "--at", T0)
    dripper("tick", "--at", at(0))
    touches = {t["step"]: t for t in dripper.json("plan", "anna@example.de", "--json")["touches"]}
    assert touches["case-study-de"]["when"] == "lead.language.startswith('de')"
    assert touches["case-study-de"]["applies"] is True
    assert touches["case-study"]["applies"] is False
    assert touches["letter-1"]["applies"] is False
    assert touches["after-call-back"]["applies"] is False
    assert "when" not in touches["thanks"] and "applies" not in touches["call-1"]
    text = dripper("plan", "anna@example.de").stdout
    assert "false now: would be skipped" in text and "holds now" in text
    # decided touches keep their condition but no verdict
    dripper("tick", "--at", at(7))
    touches = {t["step"]: t for t in dripper.json("plan", "anna@example.de", "--json")["touches"]}
    assert touches["case-study"]["state"] == "skipped" and touches["case-study"]["reason"] == "condition"
    assert "applies" not in touches["case-study"] and touches["case-study"]["when"]
    # the call's outcome recorded, the follow-up applies
    for day in (21, 35):
        dripper("tick", "--at", at(day))
    dripper("event", "anna@example.de", "called", "--outcome", "call_back", "--at", at(35, 2))
    touches = {t["step"]: t for t in dripper.json("plan", "anna@example.de", "--json")["touches"]}
    assert touches["after-call-back"]["applies"] is True


def test_simulate_shows_which_steps_apply(docs_project: Dripper) -> None:
    dripper = docs_project
    rows = dripper.json(
        "simulate", "--stage", "supplier_research", "--attr", "language=de", "--country", "DE", "--json"
    )
    verdicts = {r["step"]: r.get("applies") for r in rows}
    assert verdicts == {
        "thanks": None,
        "case-study-de": True,
        "case-study": False,
        "letter-1": False,
        "call-1": None,
        "after-call-back": False,
    }
    rows = dripper.json("simulate", "--stage", "lost_to_competitor", "--attr", "competitor=Globex", "--json")
    assert {r["step"]: r["applies"] for r in rows} == {"switch-offer": True, "win-back": False}
    assert (
        "skipped (condition)"
        in dripper("simulate", "--stage", "lost_to_competitor", "--attr", "competitor=Globex").stdout
    )
    # a lead from the database, with its events
    dripper("leads", "import", "leads.csv", "--at", T0)
    for day in (0, 7, 21, 35):
        dripper("tick", "--at", at(day))
    dripper("event", "bob@example.com", "called", "--outcome", "call_back", "--at", at(35, 1))
    rows = dripper.json("simulate", "--lead", "bob@example.com", "--json")
    assert {r["step"]: r.get("applies") for r in rows} == {
        "thanks": None,
        "case-study-de": False,
        "case-study": True,
        "letter-1": True,
        "call-1": None,
        "after-call-back": True,
    }
    assert dripper("simulate", "--attr", "oops", ok=1).exit_code == 1


def test_a_condition_is_evaluated_at_send_time_on_the_lead_as_it_is_then(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("leads", "add", "zoe@example.com", "--attr", "language=en", "--at", T0)
    dripper("tick", "--at", at(0))
    plan = {t["step"]: t for t in dripper.json("plan", "zoe@example.com", "--json")["touches"]}
    assert plan["case-study-de"]["state"] == "planned" and plan["case-study-de"]["applies"] is False
    # she tells us she prefers German after the touch was planned
    dripper("leads", "add", "zoe@example.com", "--attr", "language=de", "--at", at(3))
    dripper("tick", "--at", at(7))
    states_now = states(dripper, "zoe@example.com")
    assert states_now["case-study-de"][0] == "sent" and states_now["case-study"] == ("skipped", "condition")


def test_editing_a_condition_needs_no_replanning_and_diff_shows_it(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("leads", "import", "leads.csv", "--at", T0)
    dripper("tick", "--at", at(0))
    before = dripper.json("plan", "bob@example.com", "--json")["touches"]
    path = dripper.root / "campaigns.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("when: lead.country in vars.print_countries", "when: lead.country == 'DE'"))
    diff = dripper.json("diff", "--json", "--at", at(1))["campaigns"]["literature"]
    assert diff["steps"]["conditions"] == [
        {
            "step": "letter-1",
            "stage": "supplier_research",
            "from": "lead.country in vars.print_countries",
            "to": "lead.country == 'DE'",
            "applies": 1,  # Anna, of the three leads in supplier_research
            "leads": 3,
            "cannot_evaluate": 0,
        }
    ]
    assert diff["leads"]["affected"] == 0  # no due time moves
    assert "applies to 1 of the 3 lead(s)" in dripper("diff", "--at", at(1)).stdout.replace("\n", " ")
    assert dripper("diff", "--exit-code", "--at", at(1), ok=1).exit_code == 1
    dripper("tick", "--at", at(1))  # applies the edit: nothing re-planned, the definition kept
    after = dripper.json("plan", "bob@example.com", "--json")["touches"]
    assert [(t["step"], t["due"]) for t in after] == [(t["step"], t["due"]) for t in before]
    assert dripper.json("diff", "--json", "--at", at(1))["campaigns"] == {}
    dripper("tick", "--at", at(21))
    assert states(dripper, "bob@example.com")["letter-1"] == ("skipped", "condition")
    assert states(dripper, "anna@example.de")["letter-1"][0] == "sent"


def test_the_condition_is_no_part_of_the_schedule_fingerprint() -> None:
    config = parse(BASE.replace("{when}", "lead.country == 'US'"), "campaigns.yaml")
    edited = parse(BASE.replace("{when}", "lead.country == 'DE'"), "campaigns.yaml")
    without = parse(BASE.replace("          when: {when}\n", ""), "campaigns.yaml")
    assert config.schedule_fingerprint("c") == edited.schedule_fingerprint("c") == without.schedule_fingerprint("c")
    assert config.schedule_definition("c") != edited.schedule_definition("c")
    assert "when" not in without.schedule_definition("c")["stages"]["supplier_research"][1]


# --- the tick: no cost without conditions ----------------------------------------------------


def event_queries(dripper: Dripper, *args: str) -> list[str]:
    """The SELECTs on the events table that `dripper ARGS` runs."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM events" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", spy)
    try:
        dripper(*args)
    finally:
        event.remove(Engine, "before_cursor_execute", spy)
    return seen


def test_a_tick_reads_events_only_for_conditions_that_need_them(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("leads", "import", "leads.csv", "--at", T0)
    dripper("tick", "--at", at(0))
    # case-study(-de): conditions on the lead's columns only: no event is read
    assert event_queries(dripper, "tick", "--at", at(7)) == []
    for day in (21, 35):
        dripper("tick", "--at", at(day))
    # after-call-back reads the call outcomes: one query for the batch, whatever its size
    assert len(event_queries(dripper, "tick", "--at", at(37))) == 1


def test_the_readme_conditions_are_the_ones_the_docs_example_runs() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"`when: ([^`]+)`", readme.replace("\n  ", " "))
    assert len(shown) == 4
    campaigns = docs_campaigns()
    for expression in shown:
        assert f"when: {expression}\n" in campaigns, expression


def test_the_docs_check_output_is_what_check_prints(docs_project: Dripper) -> None:
    path = docs_project.root / "campaigns.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("lead.language.startswith('de')", "lead.langauge.startswith('de')", 1)
    path.write_text(text.replace("== 'call_back'", "== 'callback'"), encoding="utf-8")
    result = docs_project("check", ok=1)
    page = DOCS.read_text(encoding="utf-8")
    shown = re.search(r"```text\n(.*?)```", page, re.S)
    assert shown is not None
    assert result.stderr.replace("\n", " ").split() == shown.group(1).replace("\n", " ").split()


@pytest.mark.parametrize("text", ["'x' * 1000000000 == ''", "10 ** 10 ** 10 > 1"])
def test_a_condition_cannot_build_a_huge_value(text: str) -> None:
    with pytest.raises(conditions.ConditionError):
        conditions.holds(text, subject())
    assert conditions.holds("2 * 3 == 6", subject())


@pytest.mark.parametrize("text", ["range(10) | list", "lipsum()", "dict(a=1)", "namespace()"])
def test_jinjas_global_functions_are_not_there(text: str) -> None:
    # undefined, so nothing is called: the condition is false, whichever way it is put
    assert not conditions.holds(text, subject()) and not conditions.holds(f"not ({text})", subject())
    assert problems_for(f'"{text}"')


def test_a_condition_that_cannot_be_evaluated_fails_that_touch_only(project: Path, dripper: Dripper) -> None:
    campaigns = SIX_MONTHS.replace("lead.attrs.size == 'large'", "lead.attrs.segment > 3")
    assert campaigns != SIX_MONTHS
    (project / "campaigns.yaml").write_text(campaigns, encoding="utf-8")
    (project / "templates" / "t.html").write_text("<p>Hello.</p>\n", encoding="utf-8")
    (project / "leads.csv").write_text(csv_of(six_month_leads()[:3]), encoding="utf-8")
    dripper("leads", "import", "leads.csv", "--at", T0)
    for day in (0, 14, 31, 62, 93):
        dripper("tick", "--at", at(day))
    steps = states(dripper, "lead0@example.com")
    assert steps["large-2"][0] == "failed" and (steps["large-2"][1] or "").startswith("render_error: when:")
    assert steps["m3"][0] == "sent"  # the track went on


def test_an_outcome_recorded_without_an_open_call_task_counts_for_no_step() -> None:
    history = conditions.History.of([{"kind": "called", "detail": {"outcome": "call_back"}}])
    base = subject()
    seen = conditions.Subject(base.lead, history, base.vars)
    assert conditions.holds("call_outcome() == 'call_back'", seen)
    assert conditions.holds("call_outcome('call-1') == ''", seen)


def test_the_docs_number_comparison_works() -> None:
    assert conditions.holds("lead.attrs.employees | int > 50", subject(employees="120"))
    assert not conditions.holds("lead.attrs.employees | int > 50", subject())
    with pytest.raises(conditions.ConditionError):
        conditions.holds("lead.attrs.employees > 50", subject(employees="120"))


def test_a_step_skipped_by_its_condition_stays_skipped_when_the_lead_comes_back(docs_project: Dripper) -> None:
    dripper = docs_project
    dripper("leads", "add", "zoe@example.com", "--attr", "language=en", "--at", T0)
    dripper("tick", "--at", at(0))
    dripper("tick", "--at", at(7))
    dripper("event", "zoe@example.com", "stage", "--stage", "negotiation", "--at", at(8))
    dripper("leads", "add", "zoe@example.com", "--attr", "language=de", "--at", at(9))
    dripper("event", "zoe@example.com", "stage", "--stage", "supplier_research", "--at", at(9, 1))
    dripper("tick", "--at", at(16, 2))
    steps = states(dripper, "zoe@example.com")
    assert steps["case-study-de"] == ("skipped", "condition") and steps["case-study"][0] == "sent"
    assert len(list((dripper.root / "outbox").glob("*_case-study*"))) == 1
