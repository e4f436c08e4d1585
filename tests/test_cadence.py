"""The cadence lint (dripper/campaign/cadence.py): `dripper check` warns, exit 0, about a
track that ends before six months or falls silent for more than 45 days within them; the
thresholds are set under defaults.cadence, a track is silenced with the campaign's
`quiet: {cadence: [STAGE]}`. The shipped campaigns.yaml follows the brief in every stage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dripper.campaign import cadence
from dripper.campaign.cadence import CadenceSpec
from dripper.campaign.model import load
from dripper.campaign.timing import Duration
from dripper.cli import main

ROOT = Path(__file__).resolve().parents[1]
D = Duration.parse


def afters(*texts: str) -> list[Duration]:
    return [D(t) for t in texts]


# --- the rule, on its own -------------------------------------------------------------


def test_the_brief_itself_passes() -> None:
    """Every other week for six weeks, then monthly to six months."""
    ends, gaps = cadence.track_problems(
        afters("0d", "2w", "4w", "6w", "10w", "14w", "4mo", "5mo", "6mo"), CadenceSpec()
    )
    assert (ends, gaps) == (None, [])


def test_a_track_that_stops_at_four_weeks_ends_early() -> None:
    ends, gaps = cadence.track_problems(afters("0d", "3d", "1w", "2w", "4w"), CadenceSpec())
    assert ends == D("4w") and gaps == []


def test_an_empty_track_ends_at_its_start() -> None:
    assert cadence.track_problems([], CadenceSpec()) == (Duration(), [])


def test_a_gap_over_45_days_within_six_months_is_found_once() -> None:
    ends, gaps = cadence.track_problems(afters("0d", "2w", "4w", "6w", "3mo", "4mo", "5mo", "6mo"), CadenceSpec())
    assert ends is None
    assert [(g.start, g.step, g.end, g.days) for g in gaps] == [(D("6w"), 4, D("3mo"), 48)]


def test_a_late_first_touch_is_a_gap_from_the_start() -> None:
    _, gaps = cadence.track_problems(afters("2mo", "3mo", "4mo", "5mo", "6mo"), CadenceSpec())
    assert [(g.start, g.step, g.days) for g in gaps] == [(None, 0, 60)]


def test_exactly_45_days_is_allowed() -> None:
    assert cadence.track_problems(afters("0d", "45d", "90d", "135d", "180d"), CadenceSpec())[1] == []
    assert len(cadence.track_problems(afters("0d", "46d", "91d", "136d", "181d"), CadenceSpec())[1]) == 1


def test_after_six_months_a_track_may_thin_out() -> None:
    """Quarterly touches in the second half-year are no gap: the brief asks for six months."""
    track = afters("0d", "2w", "4w", "6w", "10w", "14w", "4mo", "5mo", "6mo", "9mo", "12mo")
    assert cadence.track_problems(track, CadenceSpec()) == (None, [])


def test_a_gap_that_starts_before_six_months_and_runs_past_is_found() -> None:
    ends, gaps = cadence.track_problems(afters("0d", "2w", "4w", "6w", "10w", "14w", "4mo", "9mo"), CadenceSpec())
    assert ends is None and [g.end for g in gaps] == [D("9mo")]


def test_weeks_and_days_reach_six_months_as_months_do() -> None:
    """A month counts as 30 days: 26 weeks and 180 days are six months too."""
    for last in ("6mo", "26w", "180d"):
        assert cadence.track_problems(afters("0d", "6w", "12w", "18w", "24w", last), CadenceSpec())[0] is None
    assert cadence.track_problems(afters("0d", "6w", "12w", "18w", "24w", "179d"), CadenceSpec())[0] == D("179d")


def test_steps_out_of_order_are_measured_in_time_order() -> None:
    ends, gaps = cadence.track_problems(afters("6mo", "0d", "5mo", "1mo", "4mo", "2mo", "3mo"), CadenceSpec())
    assert (ends, gaps) == (None, [])


def test_thresholds_are_settings() -> None:
    spec = CadenceSpec(max_gap=D("3w"), min_span=D("3mo"))
    ends, gaps = cadence.track_problems(afters("0d", "2w", "6w", "8w"), spec)
    assert ends == D("8w") and [g.end for g in gaps] == [D("6w")]


# --- in `dripper check` ---------------------------------------------------------------

HEAD = """\
sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
"""

# Line numbers below are part of the tests: keep them in sync with CAMPAIGNS.
CAMPAIGNS = """\
campaigns:
  follow-up:
    stages:
      negotiation:
        - {id: n0, after: 0d, subject: "Hi", template: t.html}
        - {id: n1, after: 2w, subject: "Hi", template: t.html}
        - {id: n2, after: 4w, subject: "Hi", template: t.html}
      customer:
        - {id: c0, after: 0d, subject: "Hi", template: t.html}
        - {id: c1, after: 6w, subject: "Hi", template: t.html}
        - id: c2
          after: 3mo
          subject: "Hi"
          template: t.html
        - {id: c3, after: 4mo, subject: "Hi", template: t.html}
        - {id: c4, after: 5mo, subject: "Hi", template: t.html}
        - {id: c5, after: 6mo, subject: "Hi", template: t.html}
"""
L_NEGOTIATION, L_CUSTOMER, L_C2_AFTER = 4, 8, 12


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in list(os.environ):
        if var.startswith("DRIPPER_") and not var.startswith("DRIPPER_TEST"):
            monkeypatch.delenv(var)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.html").write_text("<p>Hello {{ lead.first_name or 'there' }}</p>\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(folder: Path, text: str) -> Result:
    (folder / "campaigns.yaml").write_text(text, encoding="utf-8")
    env = {"DRIPPER_CAMPAIGNS": "campaigns.yaml", "DRIPPER_DATABASE_URL": f"sqlite:///{folder / 'dripper.db'}"}
    return CliRunner().invoke(main, ["check"], env=env, catch_exceptions=False)


def lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_check_warns_at_the_track_and_at_the_step_after_the_gap(folder: Path) -> None:
    result = check(folder, HEAD + CAMPAIGNS)
    assert result.exit_code == 0, result.stderr
    head = len(HEAD.splitlines())
    assert lines(result) == [
        f"campaigns.yaml:{head + L_NEGOTIATION}:7: warning: campaign 'follow-up', stage 'negotiation': the track "
        "ends at 4w (28 days), before min_span 6mo; add steps up to 6mo, "
        "or quiet: {cadence: [negotiation]} on the campaign",
        f"campaigns.yaml:{head + L_C2_AFTER}:18: warning: campaign 'follow-up', stage 'customer': 48 days without a "
        "touch between 6w and 'c2' at 3mo (max_gap 45d); add a step in between, "
        "or quiet: {cadence: [customer]} on the campaign",
    ]
    assert "OK" in result.stdout


def test_thresholds_come_from_defaults_cadence(folder: Path) -> None:
    result = check(folder, HEAD + "defaults:\n  cadence: {max_gap: 7w, min_span: 4w}\n" + CAMPAIGNS)
    assert result.exit_code == 0 and lines(result) == []
    result = check(folder, HEAD + "defaults:\n  cadence: {max_gap: 2w}\n" + CAMPAIGNS)
    found = lines(result)
    assert any("stage 'negotiation': the track ends at 4w" in line for line in found)  # min_span still 6mo
    assert sum("(max_gap 2w)" in line for line in found) == 5  # c1 (six weeks) and c2-c5: a month is over two weeks


def test_quiet_silences_one_track_and_no_other(folder: Path) -> None:
    text = CAMPAIGNS.replace("    stages:\n", "    quiet: {cadence: [negotiation]}\n    stages:\n", 1)
    found = lines(check(folder, HEAD + text))
    assert len(found) == 1 and "stage 'customer'" in found[0]
    text = CAMPAIGNS.replace("    stages:\n", "    quiet:\n      cadence: [negotiation, customer]\n    stages:\n", 1)
    assert lines(check(folder, HEAD + text)) == []


def test_quiet_naming_a_stage_the_campaign_lacks_is_warned_where_it_is_named(folder: Path) -> None:
    text = CAMPAIGNS.replace("    stages:\n", "    quiet: {cadence: [negotiation, custommer]}\n    stages:\n", 1)
    result = check(folder, HEAD + text)
    assert result.exit_code == 0
    line = len(HEAD.splitlines()) + 3
    assert (
        f"campaigns.yaml:{line}:36: warning: quiet: campaign 'follow-up' has no stage 'custommer'" in lines(result)[0]
    )


def test_a_misspelt_cadence_setting_is_an_error_with_a_hint(folder: Path) -> None:
    result = check(folder, HEAD + "defaults:\n  cadence: {max_gaps: 7w}\n" + CAMPAIGNS)
    assert result.exit_code == 1
    assert "campaigns.yaml:5:13: unknown key 'max_gaps' (did you mean 'max_gap'?)" in result.stderr
    result = check(folder, HEAD + "defaults:\n  cadence: {min_span: six months}\n" + CAMPAIGNS)
    assert result.exit_code == 1 and "campaigns.yaml:5:23: min_span: bad duration 'six months'" in result.stderr
    text = CAMPAIGNS.replace("    stages:\n", "    quiet: {cadense: [negotiation]}\n    stages:\n", 1)
    result = check(folder, HEAD + text)
    assert result.exit_code == 1 and "unknown key 'cadense' (did you mean 'cadence'?)" in result.stderr


# --- the shipped campaign against its brief --------------------------------------------


def test_every_shipped_track_follows_the_brief() -> None:
    """The brief: a touch every other week for six weeks, then about monthly, for at least
    six months, whatever the stage. Every stage of every shipped campaign, with the same
    function `check` uses, at its default thresholds (45 days, six months)."""
    config = load(ROOT / "campaigns.yaml")
    assert config.defaults.cadence == CadenceSpec()
    stages = set()
    for campaign in config.campaigns.values():
        assert campaign.quiet.cadence == []  # nothing shipped is silenced
        for stage, steps in campaign.stages.items():
            assert cadence.track_problems([s.after for s in steps], CadenceSpec()) == (None, []), stage
            # ... and the first six weeks: at the start, then every other week (2w, 4w, 6w) or
            # closer, `1mo` standing in for 4w (16 days); a lost lead is left alone for a
            # month first (it has just said no), then hears monthly.
            first = sorted(cadence.nominal_days(s.after) for s in steps if cadence.nominal_days(s.after) <= 42)
            if stage != "lost_to_competitor":
                assert first[0] == 0 and all(b - a <= 16 for a, b in zip(first, [*first[1:], 42], strict=True)), stage
            stages.add(stage)
    assert stages == set(config.stages)  # every funnel stage has a track
    assert cadence.warnings(config) == []


def test_shipped_project_checks_without_warnings(folder: Path) -> None:
    env = {"DRIPPER_CAMPAIGNS": str(ROOT / "campaigns.yaml"), "DRIPPER_DATABASE_URL": f"sqlite:///{folder / 'd.db'}"}
    result = CliRunner().invoke(main, ["check"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "warning" in line and "campaigns.yaml" in line] == []
