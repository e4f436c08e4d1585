"""`dripper init [DIR]`: a small working project (dripper/project/skeleton/, package data)
that passes `check` without a warning and runs with the README's commands; it never
overwrites a file unless told to."""

from __future__ import annotations

import fnmatch
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dripper.campaign import cadence
from dripper.campaign.model import FUNNEL_STAGES, load
from dripper.cli import main
from dripper.project import skeleton

ROOT = Path(__file__).resolve().parents[1]
IMPORT_AT, TICK_AT = "2026-01-05T15:00:00Z", "2026-01-06T15:00:00Z"  # the README's instants


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as the working directory, no DRIPPER_ settings: a marketer's first day."""
    for var in list(os.environ):
        if var.startswith("DRIPPER_") and not var.startswith("DRIPPER_TEST"):
            monkeypatch.delenv(var)
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_init_then_the_readme_commands_send_mail(here: Path, sqlite_url: str) -> None:
    result = run("init", "shop")
    assert result.exit_code == 0, result.stderr
    assert "dripper check" in result.stdout
    project = here / "shop"
    os.chdir(project)
    checked = run("check", DRIPPER_DATABASE_URL=sqlite_url)
    assert checked.exit_code == 0, checked.stderr
    assert checked.stderr == ""  # not even a warning: the skeleton follows the cadence brief
    assert "1 campaign(s), 81 step(s), 7 template file(s)" in checked.stdout
    imported = run("leads", "import", "leads.csv", "--at", IMPORT_AT, DRIPPER_DATABASE_URL=sqlite_url)
    assert imported.exit_code == 0, imported.stderr
    ticked = run("tick", "--at", TICK_AT, "--json", DRIPPER_DATABASE_URL=sqlite_url)
    assert ticked.exit_code == 0, ticked.stderr
    emails = sorted((project / "outbox").glob("*.eml"))
    leads = (project / "leads.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(emails) == len(leads) == 4  # every example lead got its stage's first e-mail
    assert '"sent": 4' in ticked.stdout
    text = emails[0].read_bytes().decode("ascii", "replace")
    assert 'From: "Example Co. Sales" <sales@example.com>' in text and "List-Unsubscribe:" in text


def test_init_writes_here_by_default(here: Path) -> None:
    result = run("init")
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(here)) for p in here.rglob("*") if p.is_file())
    assert written == sorted(str(f.path) for f in skeleton.skeleton_files())
    assert {"campaigns.yaml", "leads.csv", "templates/email/base.html", "templates/letters/follow-up.html"} <= set(
        written
    )
    assert "cd " not in result.stdout  # already there


def test_init_refuses_to_overwrite_and_names_what_exists(here: Path) -> None:
    assert run("init").exit_code == 0
    (here / "campaigns.yaml").write_text("# mine\n", encoding="utf-8")
    result = run("init")
    assert result.exit_code == 1
    assert f"dripper: {Path('.') / 'campaigns.yaml'} exists" in result.stderr
    assert f"{len(skeleton.skeleton_files())} file(s) exist already; nothing was written" in result.stderr
    assert (here / "campaigns.yaml").read_text(encoding="utf-8") == "# mine\n"


def test_one_existing_file_stops_init_before_it_writes_anything(here: Path) -> None:
    (here / "leads.csv").write_text("email\nme@example.com\n", encoding="utf-8")
    result = run("init")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"dripper: {Path('.') / 'leads.csv'} exists"
    assert sorted(p.name for p in here.iterdir()) == ["leads.csv"]  # no campaigns.yaml, no templates/


def test_force_overwrites_the_skeletons_files_only(here: Path) -> None:
    assert run("init").exit_code == 0
    (here / "campaigns.yaml").write_text("# mine\n", encoding="utf-8")
    (here / "templates" / "email" / "mine.html").write_text("<p>mine</p>\n", encoding="utf-8")
    result = run("init", "--force")
    assert result.exit_code == 0, result.stderr
    assert (here / "campaigns.yaml").read_bytes() == (skeleton_dir() / "campaigns.yaml").read_bytes()
    assert (here / "templates" / "email" / "mine.html").read_text(encoding="utf-8") == "<p>mine</p>\n"


def test_init_into_a_file_is_refused(here: Path) -> None:
    (here / "notes.txt").write_text("x", encoding="utf-8")
    result = run("init", "notes.txt")
    assert result.exit_code == 1 and "notes.txt is not a folder" in result.stderr


def skeleton_dir() -> Path:
    return ROOT / "dripper" / "project" / "skeleton"


def test_the_skeleton_covers_every_stage_and_follows_the_brief() -> None:
    config = load(skeleton_dir() / "campaigns.yaml")
    assert len(config.campaigns) == 1
    (campaign,) = config.campaigns.values()
    assert tuple(campaign.stages) == FUNNEL_STAGES
    assert campaign.quiet.cadence == []
    assert cadence.warnings(config) == []
    templates = {step.template for steps in campaign.stages.values() for step in steps}
    assert len(templates) <= 8  # a handful, shared by the steps


def test_the_wheel_carries_every_skeleton_file() -> None:
    """pyproject's package-data globs for dripper.project match every file of the skeleton,
    so an installed dripper (not only a checkout) can write it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["dripper.project"]
    files = [f.path for f in skeleton.skeleton_files()]
    assert len(files) == 9
    for path in files:
        relative = str(Path("skeleton") / path)
        assert any(fnmatch.fnmatch(relative, g) and g.count("/") == relative.count("/") for g in globs), relative


def test_a_preview_shows_what_the_steps_stage_receives(here: Path) -> None:
    """The skeleton's welcome.html words itself by lead.stage; `preview` puts its sample lead
    in the step's stage, so each stage's first e-mail previews as its leads get it."""
    assert run("init").exit_code == 0
    shown = {
        step: run("preview", "follow-up", step, "--format", "text").stdout
        for step in ("research-welcome", "customer-welcome", "lost-welcome")
    }
    assert "Here is the information you asked for" in shown["research-welcome"]
    assert "Thank you for your order. It means" in shown["customer-welcome"]
    assert "sorry not to be working together" in shown["lost-welcome"]
