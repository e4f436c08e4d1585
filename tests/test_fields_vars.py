"""Declared lead fields (`fields:`), campaign variables (`vars:`) and send-relative dates
(`send_date`, `offer_until`, the `date` filter) in campaigns.yaml and templates."""

from __future__ import annotations

import email
import shutil
from datetime import datetime
from email import policy
from pathlib import Path

import pytest

from dripper.campaign import templates as render
from dripper.campaign.model import parse
from dripper.campaign.templates import Renderer, TemplateSet
from dripper.errors import ConfigError
from dripper.leads.records import Lead
from tests.conftest import Dripper

CAMPAIGNS = """\
sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
defaults:
  timezone: America/Chicago
vars:
  booth: "Hall 4, booth 4112"
  offer_days: 21
  product_line: "HX compact"
fields:
  size: {type: choice, choices: [small, large], default: small}
  budget: {type: number}
  visit: {type: date}
campaigns:
  fair:
    vars: {booth: "Hall 7, booth 7001"}
    stages:
      supplier_research:
        - id: hello
          after: 0d
          subject: "See the {{ vars.product_line }} at {{ vars.booth }}"
          template: mail/hello.html
        - id: offer
          after: 1w
          subject: "Until {{ offer_until(days=vars.offer_days) }}: {{ lead.attrs.product }}"
          template: mail/offer.html
"""
HELLO = "<p>{{ vars.product_line }} at {{ vars.booth }}, size {{ lead.attrs.size }}.</p>\n"
OFFER = (
    "<p>Sent {{ send_date | date('yyyy-MM-dd HH:mm') }}; valid until {{ offer_until(days=vars.offer_days) }}"
    " ({{ offer_until('3w') | date('short') }}).</p>\n"
)
HEADER = "email,first_name,country,timezone,product,size,budget,visit\n"


@pytest.fixture
def fair(project: Path, sqlite_url: str) -> Dripper:
    """The test project with the campaign above in place of its own."""
    (project / "campaigns.yaml").write_text(CAMPAIGNS, encoding="utf-8")
    shutil.rmtree(project / "templates")
    write(project, "mail/hello.html", HELLO)
    write(project, "mail/offer.html", OFFER)
    return Dripper(project, sqlite_url)


def write(project: Path, name: str, text: str) -> None:
    path = project / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def sent_mail(project: Path, step: str) -> dict[str, tuple[str, str]]:
    """recipient -> (subject, text part) of each e-mail of `step` in the outbox."""
    found = {}
    for path in sorted((project / "outbox").glob(f"*_{step}_*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        found[str(message["To"].addresses[0].addr_spec)] = (str(message["Subject"]), text.get_content())
    return found


def touches(dripper: Dripper, address: str) -> dict[str, tuple[str, str]]:
    plan = dripper.json("plan", address, "--json")
    return {t["step"]: (t["state"], t["reason"] or "") for t in plan["touches"]}


# --- an undeclared attribute: a warning, then one failed touch --------------------------------
def test_an_undeclared_attribute_fails_only_the_lead_without_it(fair: Dripper) -> None:
    check = fair("check")
    assert "warning: lead.attrs.product is not a declared field" in check.stderr
    (fair.root / "leads.csv").write_text(
        HEADER + "with@example.com,Ann,US,,valves,,,\nwithout@example.com,Bob,US,,,,,\n", encoding="utf-8"
    )
    fair("leads", "import", "leads.csv", "--at", "2026-03-02T15:00:00+00:00")
    assert fair.json("tick", "--json", "--at", "2026-03-02T16:00:00+00:00")["sent"] == 2
    assert fair.json("tick", "--json", "--at", "2026-03-09T16:00:00+00:00") | {"recovered": 0} == {
        "sent": 1,
        "failed": 1,
        "suppressed": 0,
        "skipped": 0,
        "deferred": 0,
        "recovered": 0,
    }
    assert touches(fair, "without@example.com")["offer"][0] == "failed"
    assert touches(fair, "without@example.com")["offer"][1].startswith("render_error")
    assert "product" in touches(fair, "without@example.com")["offer"][1]
    assert touches(fair, "without@example.com")["hello"][0] == "sent"
    assert touches(fair, "with@example.com")["offer"][0] == "sent"
    assert set(sent_mail(fair.root, "offer")) == {"with@example.com"}


def test_simulate_shows_a_subject_the_sample_lead_cannot_render(fair: Dripper) -> None:
    rows = fair.json("simulate", "--days", "10", "--json", "--at", "2026-03-02T15:00:00+00:00")
    subjects = {row["step"]: row["subject"] for row in rows}
    assert subjects["hello"] == "See the HX compact at Hall 7, booth 7001"
    assert subjects["offer"].startswith("(not rendered for the sample lead: ")


def test_a_tick_dates_each_message_on_its_leads_clock(fair: Dripper) -> None:
    write(fair.root, "mail/hello.html", "<p>{{ send_date | date('yyyy-MM-dd') }} / {{ offer_until(days=21) }}</p>\n")
    (fair.root / "leads.csv").write_text(
        HEADER
        + "chicago@example.com,Chi,US,America/Chicago,valves,,,\n"
        + "auckland@example.com,Akl,NZ,Pacific/Auckland,valves,,,\n"
        + "berlin@example.com,Ber,DE,Europe/Berlin,valves,,,\n",
        encoding="utf-8",
    )
    fair("leads", "import", "leads.csv", "--at", "2026-01-31T02:00:00+00:00")
    fair("tick", "--at", "2026-01-31T02:30:00+00:00")  # Jan 30 in Chicago, Jan 31 in Auckland and Berlin
    texts = {to: text for to, (_subject, text) in sent_mail(fair.root, "hello").items()}
    assert "2026-01-30 / February 20, 2026" in texts["chicago@example.com"]
    assert "2026-01-31 / 21 February 2026" in texts["auckland@example.com"]
    assert "2026-01-31 / 21. Februar 2026" in texts["berlin@example.com"]


# --- declared fields checked at import ---------------------------------------------------
def test_declared_fields_are_checked_per_row_with_their_line(fair: Dripper) -> None:
    text = CAMPAIGNS.replace("  budget: {type: number}", "  budget: {type: number}\n  product: {required: true}")
    (fair.root / "campaigns.yaml").write_text(text, encoding="utf-8")
    (fair.root / "leads.csv").write_text(
        HEADER
        + "ok@example.com,Ok,US,,valves,LARGE,1200.50,2026-04-01\n"  # 2
        + "noproduct@example.com,No,US,,,,,\n"  # 3
        + "badsize@example.com,Bad,US,,pumps,huge,,\n"  # 4
        + 'badnumber@example.com,Bad,US,,pumps,,"1,200",\n'  # 5
        + "baddate@example.com,Bad,US,,pumps,,,01/04/2026\n"  # 6
        + "twice@example.com,Two,US,,,,abc,\n"  # 7
        + "fine@example.com,Fine,US,,meters,,,\n",  # 8
        encoding="utf-8",
    )
    result = fair("leads", "import", "leads.csv", ok=2)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("leads.csv:") and "warning" not in ln]
    assert lines == [
        "leads.csv:3: missing required field 'product'",
        "leads.csv:4: field 'size': 'huge' is not one of small, large",
        "leads.csv:5: field 'budget': '1,200' is not a number (write it like 1200 or 3.5)",
        "leads.csv:6: field 'visit': '01/04/2026' is not a date (write it as YYYY-MM-DD, e.g. 2026-03-31)",
        "leads.csv:7: field 'budget': 'abc' is not a number (write it like 1200 or 3.5); missing required field 'product'",
    ], result.stderr
    stored = fair.json("plan", "ok@example.com", "--json")["lead"]
    assert stored["attrs"] == {"product": "valves", "size": "large", "budget": "1200.50", "visit": "2026-04-01"}
    fair("plan", "fine@example.com", "--json")
    assert fair("plan", "noproduct@example.com", ok=False).exit_code != 0


def test_leads_add_checks_declared_fields(fair: Dripper) -> None:
    result = fair("leads", "add", "one@example.com", "--attr", "visit=tomorrow", ok=False)
    assert result.exit_code != 0
    assert "field 'visit': 'tomorrow' is not a date" in result.stderr
    fair("leads", "add", "one@example.com", "--attr", "visit=2026-05-01")


# --- defaults: filled in at render time -------------------------------------------------------
def test_a_default_fills_missing_values_when_rendering_and_a_changed_default_applies_later(
    fair: Dripper,
) -> None:
    (fair.root / "leads.csv").write_text(
        HEADER + "own@example.com,Own,US,,valves,large,,\nnone@example.com,None,US,,valves,,,\n", encoding="utf-8"
    )
    fair("leads", "import", "leads.csv", "--at", "2026-03-02T15:00:00+00:00")
    assert fair.json("plan", "none@example.com", "--json")["lead"]["attrs"] == {"product": "valves"}  # not stored
    fair("tick", "--at", "2026-03-02T16:00:00+00:00")
    hello = sent_mail(fair.root, "hello")
    assert "size large." in hello["own@example.com"][1]
    assert "size small." in hello["none@example.com"][1]
    # The marketer changes the default: a later render uses the new one.
    (fair.root / "campaigns.yaml").write_text(CAMPAIGNS.replace("default: small", "default: large"), encoding="utf-8")
    preview = fair("preview", "fair", "hello", "--lead", "none@example.com")
    assert "size large." in preview.stdout


# --- vars ----------------------------------------------------------------------------------
def test_vars_reach_subjects_and_templates_and_a_campaign_wins_over_the_file(fair: Dripper) -> None:
    fair("leads", "add", "ann@example.com", "--attr", "product=valves", "--at", "2026-03-02T15:00:00+00:00")
    fair("tick", "--at", "2026-03-02T16:00:00+00:00")
    subject, text = sent_mail(fair.root, "hello")["ann@example.com"]
    assert subject == "See the HX compact at Hall 7, booth 7001"
    assert "HX compact at Hall 7, booth 7001, size small." in text


def test_an_unknown_var_is_a_check_error_with_did_you_mean(fair: Dripper) -> None:
    write(fair.root, "mail/base.html", "<p>{% block x %}{% endblock %}</p>\n<p>{{ vars.prodcut_line }}</p>\n")
    write(fair.root, "mail/hello.html", '{% extends "mail/base.html" %}\n{% block x %}{{ vars.booth }}{% endblock %}\n')
    text = CAMPAIGNS.replace('{{ vars.booth }}"', "{{ vars['boot'] }}\"")
    (fair.root / "campaigns.yaml").write_text(text, encoding="utf-8")
    result = fair("check", ok=1)
    base = "templates/mail/base.html"
    assert (
        f"{base}:2:1: vars.prodcut_line is not defined for campaign 'fair' (did you mean 'product_line'?)"
        in result.stderr
    ), result.stderr
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "vars['boot']" in ln)
    assert f"campaigns.yaml:{line}:20: vars.boot is not defined for campaign 'fair' (did you mean 'booth'?)" in (
        result.stderr
    ), result.stderr
    # `tick` refuses the file as `check` does: such a template can never render.
    assert fair("tick", ok=1).exit_code == 1


def test_a_var_named_like_a_dict_method_is_that_var() -> None:
    renderer = _renderer({"mail/hello.html": "{{ vars.items }} {{ vars['keys'] }}"}, vars_="  items: 3\n  keys: 4\n")
    assert _body(renderer, "hello", _lead()) == "3 4"


# --- check: bad fields: and vars: entries, located ----------------------------------------------
@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        ("  size: {type: choice}", "choice", "field 'size': type choice needs a list of choices"),
        ("  size: {type: text, choices: [a]}", "[a]", "field 'size': choices are for type choice, not text"),
        ("  size: {type: number, default: many}", "many", "field 'size': default 'many' is not a number"),
        ("  size: {type: date, default: 31.12.2026}", "31.12.2026", "default '31.12.2026' is not a date"),
        ("  size: {type: choice, choices: [a, b], default: c}", " c}", "default 'c' is not one of a, b"),
        ("  size: {requird: true}", "requird", "unknown key 'requird' (did you mean 'required'?)"),
        ("  size: {type: colour}", "colour", "type:"),
        ("  email: {required: true}", "email", "'email' is a lead column, not an extra field"),
        ("  Size: {}", "Size", "bad field name 'Size': use lower-case letters"),
    ],
)
def test_bad_field_declarations_are_located(entry: str, where: str, message: str) -> None:
    text = CAMPAIGNS.replace("  size: {type: choice, choices: [small, large], default: small}", entry)
    with pytest.raises(ConfigError) as caught:
        parse(text, "campaigns.yaml")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln == entry)
    column = entry.index(where.strip()) + 1
    found = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"campaigns.yaml:{line}:{column}: ") and message in p for p in found), found


@pytest.mark.parametrize(
    ("entry", "column", "message"),
    [
        ('  "two words": 1', 3, "bad variable name 'two words'"),
        ("  deadline:", 12, "variable 'deadline' has no value"),
    ],
)
def test_bad_vars_are_located(entry: str, column: int, message: str) -> None:
    text = CAMPAIGNS.replace('  booth: "Hall 4, booth 4112"', entry)
    with pytest.raises(ConfigError) as caught:
        parse(text, "campaigns.yaml")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln == entry)
    found = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"campaigns.yaml:{line}:{column}: ") and message in p for p in found), found


# --- dates relative to the send day, on the lead's clock, in its language ------------------------
def _lead(attrs: dict[str, str] | None = None, **values: str) -> Lead:
    base: dict[str, str] = {"email": "a@example.com", "stage": "supplier_research", "campaign": "fair"}
    lead = Lead(**{**base, **values}, attrs=attrs or {"product": "valves"})  # type: ignore[arg-type]
    return lead.for_templates("America/Chicago")


def _renderer(sources: dict[str, str] | None = None, vars_: str = "") -> Renderer:
    """A renderer of CAMPAIGNS (`vars_`: more file-level variables) and these templates."""
    config = parse(CAMPAIGNS.replace("vars:\n", "vars:\n" + vars_, 1), "campaigns.yaml")
    templates = TemplateSet(Path("/t"), {"mail/hello.html": HELLO, "mail/offer.html": OFFER, **(sources or {})}, "x")
    return Renderer(config, templates)


def _body(renderer: Renderer, step_id: str, lead: Lead, now: str = "2026-01-31T18:00:00+00:00") -> str:
    campaign = renderer.config.campaigns["fair"]
    found = campaign.step(step_id)
    assert found is not None
    ctx = renderer.context(lead, campaign, found[1], "https://u", datetime.fromisoformat(now))
    return renderer.body_html(found[1], ctx)


def test_send_date_and_offer_until_are_on_the_leads_clock_near_a_month_end() -> None:
    renderer = _renderer()
    assert render.check_templates(renderer.config, renderer.templates) == []
    config = renderer.config
    campaign = config.campaigns["fair"]
    step = campaign.stages["supplier_research"][1]
    now = datetime.fromisoformat("2026-01-31T02:30:00+00:00")  # Jan 30 in Chicago, Jan 31 in Auckland and Berlin

    chicago = renderer.email(campaign, step, renderer.context(_lead(country="US"), campaign, step, "https://u", now))
    assert "Sent 2026-01-30 20:30; valid until February 20, 2026 (2/20/26)." in chicago.text
    assert chicago.subject == "Until February 20, 2026: valves"

    auckland = _lead(country="NZ", timezone="Pacific/Auckland")
    nz = renderer.email(campaign, step, renderer.context(auckland, campaign, step, "https://u", now))
    assert "Sent 2026-01-31 15:30; valid until 21 February 2026 (21/02/2026)." in nz.text

    berlin = _lead(country="DE", timezone="Europe/Berlin")
    de = renderer.email(campaign, step, renderer.context(berlin, campaign, step, "https://u", now))
    assert "valid until 21. Februar 2026 (21.02.26)." in de.text
    assert de.subject == "Until 21. Februar 2026: valves"


def test_offer_until_in_months_is_calendar_months_and_date_reads_iso_fields() -> None:
    renderer = _renderer(
        {
            "mail/offer.html": "{{ offer_until(months=1) | date('yyyy-MM-dd') }} {{ lead.attrs.visit | date('d MMM y') }}"
            " {{ send_date | date('EEEE', locale='fr_FR') }} {{ offer_until(weeks=vars.offer_days) | date('yyyy-MM-dd') }}"
        },
    )
    lead = _lead(attrs={"product": "x", "visit": "2026-04-01"})
    assert _body(renderer, "offer", lead) == "2026-02-28 1 Apr 2026 samedi 2026-06-27"


@pytest.mark.parametrize(
    "source",
    [
        "{{ lead.attrs.visit | date }}",
        "{{ offer_until(days=-1) }}",
        "{{ offer_until() }}",
        "{{ offer_until('soon') }}",
        "{{ offer_until(days='many') }}",
        "{{ 'x' | date }}",
        "{{ 12 | date }}",
    ],
)
def test_a_date_that_cannot_be_written_fails_that_render_only(source: str) -> None:
    """A TemplateError: the touch fails with render_error (not retried for days)."""
    import jinja2

    renderer = _renderer({"mail/offer.html": source})
    with pytest.raises(jinja2.TemplateError):
        _body(renderer, "offer", _lead(attrs={"product": "x", "visit": "next week"}))


def test_a_var_missing_at_render_is_named_as_campaigns_yaml_writes_it() -> None:
    """A name made at render time escapes the static check: the touch's reason names it."""
    import jinja2

    renderer = _renderer({"mail/offer.html": "{{ vars['offer_' ~ 'weeks'] }}"})
    assert render.check_templates(renderer.config, renderer.templates) != []  # the sample render finds it
    with pytest.raises(jinja2.UndefinedError, match=r"^vars\.offer_weeks is not defined in campaigns\.yaml"):
        _body(renderer, "offer", _lead())


def test_check_and_preview_give_declared_fields_a_value_of_their_type(fair: Dripper) -> None:
    write(
        fair.root, "mail/hello.html", "<p>{{ lead.attrs.visit | date('long') }}, {{ lead.attrs.budget | float }}</p>\n"
    )
    check = fair("check")
    assert "warning: lead.attrs.visit" not in check.stderr
    assert "February 27, 2026, 12.0" in fair("preview", "fair", "hello").stdout


def test_preview_of_a_step_the_sample_lead_cannot_render_says_why(fair: Dripper) -> None:
    result = fair("preview", "fair", "offer", ok=1)
    assert "'offer' cannot be rendered for sample.lead@example.com" in result.stderr
    assert "product" in result.stderr
