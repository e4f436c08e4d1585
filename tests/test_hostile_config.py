"""Operator mistakes and hostile files in campaigns.yaml and templates/: a located error
(`FILE:LINE:COL: message`) within bounded time and memory, never a traceback; and
`dripper run` keeps the last good version whatever a broken edit raises."""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from conftest import FIXTURES, dripper_env, wait_for

from tests.support.cli import run_dripper


def bomb(levels: int) -> str:
    """A billion laughs: each level stands for nine of the one before."""
    return "".join(
        [f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"]
        + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, levels)]
    )


# Ten levels stand for 9**9 (387 million) strings; seven took 17 s and 1.8 GB before aliases
# were bounded.
BOMB = bomb(10)
CPU_SECONDS = 20  # the process is killed beyond this: a test that cannot hang
ADDRESS_SPACE = 1 << 30  # and allocations fail beyond 1 GiB (dripper check needs ~75 MB)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def check(project: Path) -> subprocess.CompletedProcess[str]:
    """`dripper check` as a process with its CPU time and memory capped."""
    return run_dripper(project, dripper_env(), "check", preexec_fn=_limits)


def located(stderr: str, file: str) -> list[str]:
    """The `FILE:LINE:COL: message` lines about `file`."""
    return [line for line in stderr.splitlines() if line.startswith(f"{file}:") and line.count(":") >= 3]


def with_campaigns_prefix(project: Path, text: str) -> None:
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(text + campaigns.read_text())


# --- 1. aliases: bounded, cycles refused ----------------------------------------------------


def test_an_alias_bomb_is_a_located_error_in_bounded_time_and_memory(project: Path):
    with_campaigns_prefix(project, BOMB)
    result = check(project)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    errors = located(result.stderr, "campaigns.yaml")
    assert errors and "aliases expand to more than" in errors[0], result.stderr
    # the alias that crosses the bound, at its own line and column: the sixth *l3 of l4
    # (aliases add 90 + 819 + 7,380 values on lines 2-4, then 7,381 for each *l3)
    assert errors[0].startswith("campaigns.yaml:5:35: "), errors[0]


def test_an_alias_bomb_costs_a_few_megabytes_in_the_loader():
    from dripper.campaign import model as campaigns
    from dripper.errors import ConfigError

    tracemalloc.start()
    try:  # six levels (531,441 strings): bounded in this process even where aliases are not
        with pytest.raises(ConfigError) as caught:
            campaigns.parse(bomb(6), "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "aliases expand" in str(caught.value)
    assert peak < 5_000_000, peak


@pytest.mark.parametrize(
    "text, where",
    [
        ("loop: &loop\n  - *loop\n", "campaigns.yaml:2:5"),
        ("loop: &loop\n  again: *loop\n", "campaigns.yaml:2:10"),
    ],
)
def test_a_recursive_alias_is_a_located_error(project: Path, text: str, where: str):
    with_campaigns_prefix(project, text)
    result = check(project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = located(result.stderr, "campaigns.yaml")
    assert errors[0].startswith(where + ": the alias *loop is inside the value &loop names"), errors


def test_nesting_without_end_is_a_located_error(project: Path):
    (project / "campaigns.yaml").write_text("x: " + "[" * 50_000 + "]" * 50_000 + "\n")
    result = check(project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    first = located(result.stderr, "campaigns.yaml")[0]
    # Ours at the 64th level; PyYAML 6.0.4's libyaml scanner, reading ahead, may stop first at its own limit.
    assert first.startswith("campaigns.yaml:1:67: nested more than 64 levels") or (
        first.startswith("campaigns.yaml:1:") and "exceeded maximum nesting depth" in first
    ), first


def test_anchors_aliases_and_merge_keys_work():
    from dripper.campaign import model as campaigns

    def steps(text: str) -> dict[str, campaigns.Step]:
        model = campaigns.parse(text, "campaigns.yaml")
        return {s.id: s for c in model.campaigns.values() for track in c.stages.values() for s in track}

    text = (FIXTURES / "project" / "campaigns.yaml").read_text()
    window = '  send_window: {days: mon-fri, hours: "09:00-17:00"}\n'
    email_reminder = "          channel: email\n          kind: reminder\n"
    assert text.count(window) == 1 and text.count(email_reminder) == 3
    # An anchor on the first reminder's fields, merged into the others; an alias of the window.
    first = text.index(email_reminder)
    shared = (
        text[:first]
        + "          <<: &reminder {channel: email, kind: reminder}\n          send_window: *window\n"
        + text[first + len(email_reminder) :].replace(email_reminder, "          <<: *reminder\n")
    )
    shared = shared.replace(window, window.replace("send_window: ", "send_window: &window "))
    plain, merged = steps(text), steps(shared)
    assert merged.keys() == plain.keys()
    for step_id in ("reminder-1", "monthly-4", "lost-1"):
        assert (merged[step_id].channel, merged[step_id].kind) == ("email", "reminder")
        assert merged[step_id].subject == plain[step_id].subject
    assert merged["reminder-1"].send_window is not None and plain["reminder-1"].send_window is None
    # keys written in the mapping win over merged ones
    override = shared.replace("          <<: *reminder\n", "          <<: *reminder\n          kind: new_info\n", 1)
    assert steps(override)["monthly-4"].kind == "new_info"


@pytest.mark.parametrize(
    "value, message",
    [
        (
            '!!python/object/apply:os.system ["touch pwned"]',
            "the tag tag:yaml.org,2002:python/object/apply:os.system is not supported here",
        ),
        (
            "!!python/object/apply:os.system touch pwned",
            "cannot read this value as tag:yaml.org,2002:python/object/apply:os.system",
        ),
        ("!!int twelve", "cannot read this value as tag:yaml.org,2002:int"),
    ],
)
def test_tags_that_construct_objects_are_refused_with_a_location(project: Path, value: str, message: str):
    campaigns = project / "campaigns.yaml"
    text = campaigns.read_text().replace('subject: "New application notes"', f"subject: {value}")
    campaigns.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if value in ln)
    result = check(project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"campaigns.yaml:{line}:20: {message}" in result.stderr, result.stderr
    assert not (project / "pwned").exists()


# --- 2. files that are not UTF-8 ---------------------------------------------------------------


def test_a_latin1_template_is_a_located_error_from_every_command(project: Path, sqlite_url: str):
    template = project / "templates" / "mail" / "thanks.html"
    lines = template.read_text().splitlines(keepends=True)
    lines[2] = "<p>Caf\u00e9 cr\u00e8me for {{ lead.first_name }}</p>\n"
    template.write_bytes("".join(lines).encode("latin-1"))
    result = check(project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [error] = located(result.stderr, str(Path("templates") / "mail" / "thanks.html"))
    assert error.startswith("templates/mail/thanks.html:3:7: not UTF-8 text: byte 0xE9"), error
    assert "'é'" in error and "save the file as UTF-8" in error
    env = {**os.environ, "DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "s"}
    for command in (
        ["tick"],
        ["leads", "import", "leads.csv"],
        ["preview", "literature-follow-up", "thanks"],
        ["serve", "--port", "1"],
    ):
        done = run_dripper(project, env, *command, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (command, done.stderr[-2000:])
        assert "templates/mail/thanks.html:3:7: not UTF-8 text" in done.stderr, (command, done.stderr)


def test_a_latin1_campaigns_file_is_located_at_its_first_bad_byte(project: Path):
    campaigns = project / "campaigns.yaml"
    text = campaigns.read_text().replace('subject: "New application notes"', 'subject: "Nouveaut\u00e9s"')
    campaigns.write_bytes(text.encode("cp1252"))
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "Nouveaut" in ln)
    result = check(project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [error] = located(result.stderr, "campaigns.yaml")
    assert error.startswith(f"campaigns.yaml:{line}:29: not UTF-8 text: byte 0xE9"), error


def test_files_saved_with_a_byte_order_mark_are_read_without_it(project: Path):
    # What Windows Notepad calls UTF-8; the mark made the file's first key unreadable.
    for name in ("campaigns.yaml", "templates/mail/thanks.html"):
        path = project / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = check(project)
    assert result.returncode == 0, result.stderr
    from dripper.campaign.templates import TemplateSet

    assert not TemplateSet.load(project / "templates").sources["mail/thanks.html"].startswith("\ufeff")


def test_a_campaigns_path_that_is_a_folder_is_a_located_error(project: Path):
    (project / "campaigns.yaml").unlink()
    (project / "campaigns.yaml").mkdir()
    result = check(project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert located(result.stderr, "campaigns.yaml")[0].startswith("campaigns.yaml:1:1: cannot read this file")


# --- 3. `dripper run` keeps the last good version, whatever the load raises ------------------

# Edits that raised something other than ConfigError out of the loader, and so out of
# Watcher.refresh: each now says where the problem is.
BROKEN_EDITS = {
    "a template saved as Latin-1": (
        "templates/mail/thanks.html",
        lambda text: (text + "<p>Caf\u00e9</p>\n").encode("latin-1"),
        "templates/mail/thanks.html:",
    ),
    "a subject whose expression fails": (
        "campaigns.yaml",
        lambda text: text.replace('"New application notes"', '"{{ 1 // 0 }}"').encode(),
        "failed to render: integer division or modulo by zero",
    ),
    "a template nested deeper than the parser goes": (
        "templates/mail/news.html",
        lambda text: (text + "{% if 1 %}" * 3000 + "{% endif %}" * 3000).encode(),
        "nests blocks or brackets too deeply",
    ),
    "a file name that is not UTF-8": ("templates/mail/caf\udce9.html", lambda text: b"<p>unused</p>\n", None),
}


@pytest.mark.parametrize("edit", list(BROKEN_EDITS), ids=lambda name: name.replace(" ", "-"))
def test_the_watcher_keeps_the_last_good_version_whatever_an_edit_raises(
    project: Path, edit: str, caplog: pytest.LogCaptureFixture
):
    from dripper.config import Watcher
    from dripper.settings import Settings

    settings = Settings(campaigns_path=project / "campaigns.yaml")
    watcher = Watcher(settings)
    good = watcher.current
    name, change, message = BROKEN_EDITS[edit]
    target = project / name
    original = target.read_text() if target.exists() else ""
    target.write_bytes(change(original))
    os.utime(target, ns=(1, 1))  # a different stamp, however coarse the file system's clock
    with caplog.at_level(logging.INFO, logger="dripper.config"):
        current = watcher.refresh()
    if message is None:  # not an error at all: the new file is simply part of the templates
        assert current is not good and watcher.last_error is None
        return
    assert current is good
    assert watcher.last_error is not None and message in watcher.last_error, watcher.last_error
    assert "keeping the last good version" in caplog.text
    assert watcher.refresh() is good  # the same broken files: not reloaded, not reported again


def test_the_watcher_survives_an_unexpected_error_and_reloads_after_the_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from dripper import config as config_mod
    from dripper.settings import Settings

    settings = Settings(campaigns_path=project / "campaigns.yaml")
    watcher = config_mod.Watcher(settings)
    good = watcher.current
    real_load = config_mod.load

    def broken(settings: Settings) -> config_mod.Loaded:
        raise RuntimeError("a bug in the loader")

    monkeypatch.setattr(config_mod, "load", broken)
    campaigns = project / "campaigns.yaml"
    campaigns.write_text(campaigns.read_text() + "\n")
    with caplog.at_level(logging.INFO, logger="dripper.config"):
        assert watcher.refresh() is good
    assert watcher.last_error == "RuntimeError: a bug in the loader"
    assert "Traceback" in caplog.text and "keeping the last good version" in caplog.text
    monkeypatch.setattr(config_mod, "load", real_load)
    campaigns.write_text(campaigns.read_text() + "\n")
    assert watcher.refresh() is not good and watcher.last_error is None


def test_dripper_run_reports_a_latin1_edit_and_goes_on_ticking(project: Path, sqlite_url: str, tmp_path: Path):
    env = {**os.environ, "DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "s", "DRIPPER_TICK_INTERVAL": "0.3"}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dripper", "run"], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: b"tick at=" in log_path.read_bytes(), 30, "the first tick")
            template = project / "templates" / "mail" / "thanks.html"
            template.write_bytes(template.read_bytes() + "<p>Caf\u00e9</p>\n".encode("latin-1"))
            wait_for(lambda: b"keeping the last good version" in log_path.read_bytes(), 15, "the rejected edit")
            ticks = log_path.read_bytes().count(b"tick at=")
            wait_for(lambda: log_path.read_bytes().count(b"tick at=") >= ticks + 2, 15, "ticks after the edit")
            assert worker.poll() is None
        finally:
            worker.terminate()
            worker.wait(15)
    text = log_path.read_text()
    assert "Traceback" not in text and "raised an exception" not in text, text[-3000:]
    assert "templates/mail/thanks.html:" in text and "not UTF-8 text" in text
