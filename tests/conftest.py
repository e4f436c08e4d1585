"""Shared fixtures: a project folder, both databases for real, the CLI, a real SMTP server,
a real IMAP server and a real browser (the last three from tests/support, which bench/ uses too).

PostgreSQL runs on every machine at 127.0.0.1:5432 (user postgres, trust auth). A fresh
database is created for the test session and dropped at the end; tests that need it fail
(not skip) when it is unreachable, unless DRIPPER_TEST_NO_POSTGRES=1 is set.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dripper.config import Loaded, load
from dripper.settings import Settings
from dripper.store import Store, open_store
from dripper.store.tables import metadata as _metadata
from tests.support.browser import Watched, browser_page
from tests.support.imap import DovecotMissing, ImapServer, dovecot
from tests.support.net import free_port, wait_for
from tests.support.smtp import Received, SmtpSink
from tests.support.smtp import smtp_sink as start_smtp_sink

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN = os.environ.get("DRIPPER_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")

TABLES = [t.name for t in _metadata.sorted_tables]  # every table, so no test sees another's rows


def _pg_enabled() -> bool:
    return os.environ.get("DRIPPER_TEST_NO_POSTGRES") != "1"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its SQLAlchemy URL."""
    if not _pg_enabled():
        pytest.skip("DRIPPER_TEST_NO_POSTGRES=1")
    import psycopg

    name = f"dripper_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(part.split("=", 1) for part in PG_ADMIN.split())
    url = f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{name}"
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_pg(url: str) -> None:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            present = [t for t in TABLES if inspect(conn).has_table(t)]
            if present:
                conn.execute(text(f"TRUNCATE {', '.join(present)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dripper.db'}"
    url = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dripper.db'}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of tests/fixtures/project as the working directory."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", target)
    monkeypatch.chdir(target)
    for var in list(os.environ):
        if var.startswith("DRIPPER_") and not var.startswith("DRIPPER_TEST"):
            monkeypatch.delenv(var)
    return target


@pytest.fixture
def store(project: Path, sqlite_url: str) -> Iterator[Store]:
    """The project's SQLite store, opened (and migrated) for the test."""
    opened = open_store(sqlite_url)
    yield opened
    opened.dispose()


@pytest.fixture
def loaded(project: Path) -> Loaded:
    """The project's campaigns.yaml and templates, loaded."""
    return load(Settings(campaigns_path=project / "campaigns.yaml"))


@dataclass
class Dripper:
    """Runs the `dripper` CLI in-process against one project and database."""

    root: Path
    db_url: str
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, ok: bool | int = True, **env: str) -> Result:
        from dripper.cli import main

        merged = {"DRIPPER_DATABASE_URL": self.db_url, "DRIPPER_SECRET": "test-secret", **self.env, **env}
        result = CliRunner().invoke(main, list(args), env=merged, catch_exceptions=False)
        expected = 0 if ok is True else ok
        if ok is not False and result.exit_code != expected:
            raise AssertionError(
                f"dripper {' '.join(args)} exited {result.exit_code}, expected {expected}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str, **env: str) -> Any:
        import json

        return json.loads(self(*args, **env).stdout)


@pytest.fixture
def dripper(project: Path, db_url: str) -> Dripper:
    return Dripper(project, db_url)


@pytest.fixture
def dripper_sqlite(project: Path, sqlite_url: str) -> Dripper:
    return Dripper(project, sqlite_url)


# --- a real `dripper serve` --------------------------------------------------------------


def dripper_env(**values: str) -> dict[str, str]:
    """This process's environment without its DRIPPER_ settings (the tests' own kept), plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPPER_") or k.startswith("DRIPPER_TEST")}
    return {**env, **values}


@dataclass
class Served:
    process: Any  # subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT
    log: Path  # what it wrote to stdout and stderr

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def start_serve(root: Path, env: dict[str, str], log: Path, *options: str, before: tuple[str, ...] = ()) -> Served:
    """`dripper [before…] serve --port P [options…]` in `root`, once it answers /healthz."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dripper", *before, "serve", "--port", str(port), *options],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)

    def up() -> bool:
        assert process.poll() is None, served.text()
        try:
            return httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, "dripper serve to answer")
    except BaseException:
        stop_serve(served)
        raise
    return served


def stop_serve(served: Served) -> None:
    import signal
    import subprocess

    served.process.send_signal(signal.SIGTERM)
    try:
        served.process.wait(10)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(5)


@contextlib.contextmanager
def serving(
    root: Path, env: dict[str, str], log: Path, *options: str, before: tuple[str, ...] = ()
) -> Iterator[Served]:
    served = start_serve(root, env, log, *options, before=before)
    try:
        yield served
    finally:
        stop_serve(served)


# --- real servers and a real browser on loopback (tests/support) -------------------------


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with start_smtp_sink() as sink:
        yield sink


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    """A private Dovecot instance (IMAPS, a passwd-file user, Maildir) started for one test."""
    pytest.importorskip("trustme")
    try:
        with dovecot() as server:
            yield server
    except DovecotMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def browser() -> Iterator[Watched]:
    """Debian's chromium with one fresh page, watched for errors (tests/support/browser.py)."""
    with browser_page() as watched:
        yield watched


__all__ = [  # what test modules import from here
    "FIXTURES",
    "PG_ADMIN",
    "Dripper",
    "ImapServer",
    "Received",
    "Served",
    "SmtpSink",
    "dripper_env",
    "free_port",
    "serving",
    "start_serve",
    "stop_serve",
    "wait_for",
]


# --- test groups: unit, integration, e2e; slow ---------------------------------------------
#
# Every test gets exactly one of unit / integration / e2e, from what it uses, and `slow` when
# it is one of the long runs, so that `pytest -m "not slow"` gives quick feedback while plain
# `pytest` still runs everything (markers are registered in pyproject.toml, strictly).

# Fixtures that mean a real program driven from outside, or a real database or server in
# this process; a test using one (directly or through another fixture) is in that group.
E2E_FIXTURES = frozenset({"browser", "imap_server"})
INTEGRATION_FIXTURES = frozenset(
    {"project", "dripper", "dripper_sqlite", "db_url", "sqlite_url", "pg_database", "smtp_sink"}
)
# A test that starts dripper (or another Python program) as a process of its own: in its
# body, a fixture of tests/ it uses, or a function of its module either of them calls.
STARTS_PROCESSES = re.compile(r"\bsys\.executable\b")  # `dripper serve` too: serving() calls start_serve()
E2E_MODULES = frozenset({"test_scale_out"})  # every test there drives worker processes (Setup)


# The long runs on their own (their SQLite variants; PostgreSQL variants and e2e tests are
# slow anyway): each took over a second on a full run (`pytest --durations=50`, or
# --junitxml for every test). A module name with None: all of its tests.
SLOW: dict[str, frozenset[str] | None] = {
    "test_shipped_run": None,  # six months of the shipped campaigns, every touch rendered
    "test_dashboard": None,  # each test seeds a database and the dashboard's data first
    "test_deliverability": frozenset(
        {
            "test_shipped_templates_score_low_with_spamassassin",
            "test_dkim_signature_verifies_and_covers_the_unsubscribe_headers",
        }
    ),
    "test_diff": frozenset(
        {
            "test_diff_tells_what_the_next_ticks_do",
            "test_no_change_is_an_empty_diff",
            "test_a_version_applied_before_definitions_were_kept",
        }
    ),
    "test_engine": frozenset(
        {
            "test_six_month_cadence_arrives_on_the_right_days",
            "test_live_edits_insert_delete_rename",
            "test_a_track_planned_in_full_by_an_earlier_version_goes_on_once",
            "test_stage_change_switches_tracks",
            "test_report_counts_what_plan_shows_for_every_lead",
            "test_nothing_goes_out_after_a_stop_event",
            "test_reimport_does_not_restart_or_duplicate",
            "test_deleting_the_pending_step_goes_on_with_the_next",
        }
    ),
    "test_postal": frozenset({"test_the_cached_check_agrees_with_the_full_check"}),
    "test_report": frozenset(
        {
            "test_html_report_is_a_self_contained_page_with_charts",
            "test_report_counts_what_came_of_each_step",
            "test_the_attribution_window_is_set_in_campaigns_yaml",
            "test_time_to_conversion_percentiles",
        }
    ),
    "test_letters": frozenset(  # PDFs rendered and read back
        {
            "test_a_mailed_batch_is_closed_and_later_letters_open_the_next",
            "test_call_tasks_are_listed_for_their_day_and_outcomes_act",
            "test_duplex_batches_start_every_letter_on_a_new_sheet",
            "test_a_batch_lost_in_a_crash_is_rebuilt",
            "test_the_address_lies_inside_the_envelope_window",
            "test_the_days_letters_become_one_batch_with_a_manifest",
            "test_a_print_service_takes_the_letters_over_http",
            "test_incomplete_addresses_are_reported_on_import_and_skipped",
        }
    ),
    "test_hostile_leads": frozenset(
        {
            "test_letters_fetch_nothing_from_the_network_or_outside_templates",
            "test_an_output_folder_that_is_a_file_stops_the_tick_with_a_clear_error",
        }
    ),
    "test_web_failures": frozenset({"test_bad_events_get_400_with_what_is_wrong"}),
    "test_inbound_trust": frozenset({"test_an_authenticated_sender_is_proof"}),
    "test_leads_csv": frozenset({"test_reimport_with_changed_stage_skips_old_track_and_plans_new"}),
    "test_metrics": frozenset({"test_metrics_token"}),
    "test_preview": frozenset(
        {
            "test_to_over_smtp_sends_a_marked_test_that_records_nothing",
            "test_to_through_the_file_outbox_writes_its_own_file_and_records_nothing",
        }
    ),
    "test_sending": frozenset(
        {"test_an_smtp_server_down_or_refusing_for_a_week_never_fails_a_touch", "test_smtp_delivers_each_touch_once"}
    ),
}


class Group(enum.Enum):
    UNIT = "unit"
    INTEGRATION = "integration"
    E2E = "e2e"


def _own_functions(item: pytest.Function) -> Iterator[Any]:
    """The test function, every fixture function of tests/ it uses, and the functions of
    their modules they call by name, transitively."""
    here = Path(__file__).parent
    roots = [item.function]
    for name in item.fixturenames:
        for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):
            if Path(inspect.getfile(fixturedef.func)).is_relative_to(here):
                roots.append(fixturedef.func)
    seen: set[Any] = set()
    while roots:
        function = inspect.unwrap(roots.pop())
        if function in seen or not inspect.isfunction(function):
            continue
        seen.add(function)
        yield function
        names = _names_used(function.__code__)
        roots.extend(v for k, v in function.__globals__.items() if k in names and inspect.isfunction(v))


def _names_used(code: Any) -> set[str]:
    """Global names a function (and the functions nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names_used(const)
    return names


@functools.cache
def _starts_processes(function: Any) -> bool:
    try:
        return bool(STARTS_PROCESSES.search(inspect.getsource(function)))
    except (OSError, TypeError):
        return False


def group_of(item: pytest.Function) -> Group:
    fixtures = set(item.fixturenames)
    if (
        fixtures & E2E_FIXTURES
        or item.module.__name__ in E2E_MODULES
        or any(_starts_processes(f) for f in _own_functions(item))
    ):
        return Group.E2E
    if fixtures & INTEGRATION_FIXTURES:
        return Group.INTEGRATION
    return Group.UNIT


def on_postgresql(item: pytest.Function) -> bool:
    """The PostgreSQL variant of a `db_url` test, or a test of PostgreSQL alone."""
    params = getattr(item, "callspec", None)
    return "pg_database" in item.fixturenames or (params is not None and params.params.get("db_url") == "postgresql")


def is_slow(item: pytest.Function, group: Group) -> bool:
    """e2e tests and PostgreSQL variants (the same tests run on SQLite in the quick run), and SLOW."""
    if group is Group.E2E or on_postgresql(item):
        return True
    module = item.module.__name__
    if module not in SLOW:
        return False
    names = SLOW[module]
    return names is None or item.originalname in names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        group = group_of(item)
        item.add_marker(group.value)
        if is_slow(item, group):
            item.add_marker("slow")
