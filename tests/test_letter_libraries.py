"""A machine without Pango: letters say what they need, once, and wait; e-mails and calls go on.

The missing libraries are real, not mocked: a folder holds files named like GObject's and
Pango's libraries that are not libraries, and it comes first on LD_LIBRARY_PATH of a
`python -m dripper …` subprocess. The dynamic loader finds those files first and refuses
them, so WeasyPrint's import raises the very OSError a machine without Pango gives
(`cannot load library 'libgobject-2.0-0'`, checked below). Without that path the same
project prints its letters: it recovers by itself on a later tick.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Dripper, dripper_env, wait_for

from dripper.channels.letters import libraries as letter_libraries
from dripper.channels.letters.libraries import INSTALL, Missing, Platform, detect, install_command
from tests.support.campaigns import ACME_SENDER
from tests.support.cli import run_dripper

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday
T1 = T0 + timedelta(hours=1)
REASON = "letters_unavailable: cannot load libgobject-2.0-0"
NOT_A_LIBRARY = ("libgobject-2.0.so.0", "libgobject-2.0.so", "libpango-1.0.so.0", "libpango-1.0.so")

# A letter track and, in another stage, an e-mail then a call on the same day.
HEADER = f"""
{ACME_SENDER}  cadence: {{min_span: 0d}}   # one-step tracks on purpose: no cadence warnings
campaigns:
  literature-follow-up:
    stages:
"""
LETTER_TRACK = """      supplier_research:
        - id: letter-now
          after: 0d
          channel: letter
          kind: follow_up
          template: letters/follow_up.html
"""
EMAIL_AND_CALL_TRACK = """      supplier_preference:
        - id: hello
          after: 0d
          channel: email
          kind: new_info
          subject: "Hello {{ lead.first_name }}"
          template: mail/thanks.html
        - id: call-now
          after: 0d
          channel: call
          kind: follow_up
          template: letters/call.html
"""
CAMPAIGNS = HEADER + LETTER_TRACK + EMAIL_AND_CALL_TRACK
LEADS = """email,first_name,last_name,company,stage,timezone,address_line1,city,region,postal_code,country
ada@lovelace.example,Ada,Lovelace,Analytical Engines,supplier_research,America/Chicago,1 Engine Way,Springfield,IL,62701,US
zoe@mueller.example,Zoë,Müller,Müller Anlagenbau,supplier_research,Europe/Berlin,Hauptstr. 5,Stuttgart,,70173,DE
grace@hopper.example,Grace,Hopper,Hopper Foods,supplier_preference,America/Chicago,,,,,
"""


@pytest.fixture(scope="module")
def nolibs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nolibs")
    for name in NOT_A_LIBRARY:
        (folder / name).write_text("not a library\n")
    return folder


def poisoned(nolibs: Path, **values: str) -> dict[str, str]:
    """The environment of a machine whose loader cannot load GObject or Pango."""
    path = os.environ.get("LD_LIBRARY_PATH")
    return dripper_env(LD_LIBRARY_PATH=f"{nolibs}:{path}" if path else str(nolibs), DRIPPER_NO_BROWSER="1", **values)


def run(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_dripper(root, env, *args)


def expected_line() -> str:
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    command = install_command(letter_libraries.this_platform(), root)
    return f"letters need Pango: {command} (WeasyPrint cannot load libgobject-2.0-0)"


def told_once(stderr: str) -> None:
    """Exactly one line on stderr, the actionable one; no traceback, no WeasyPrint banner."""
    lines = stderr.splitlines()
    assert "Traceback" not in stderr and "-----" not in stderr, stderr
    assert len(lines) == 1 and lines[0].endswith(expected_line()), stderr


def test_the_simulation_fails_as_a_machine_without_pango(nolibs: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import weasyprint"],
        env=poisoned(nolibs),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "OSError: cannot load library 'libgobject-2.0-0': libgobject-2.0-0: cannot open shared object file"
        in result.stderr
    )
    assert "WeasyPrint could not import some external libraries" in result.stdout  # what dripper keeps out


@pytest.fixture
def letter_project(dripper: Dripper) -> Dripper:
    (dripper.root / "campaigns.yaml").write_text(CAMPAIGNS)
    (dripper.root / "templates" / "letters" / "call.html").write_text("<p>Call {{ lead.first_name }}.</p>")
    (dripper.root / "leads.csv").write_text(LEADS)
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    return dripper


def touch(dripper: Dripper, email: str, step: str) -> dict[str, Any]:
    touches: list[dict[str, Any]] = dripper.json("plan", email, "--json")["touches"]
    [found] = [t for t in touches if t["step"] == step]
    return found


def test_letters_wait_with_one_line_while_emails_and_calls_go_on(letter_project: Dripper, nolibs: Path) -> None:
    dripper = letter_project
    env = poisoned(nolibs, DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret")

    ticked = run(dripper.root, env, "tick", "--at", T1.isoformat(), "--json")
    assert ticked.returncode == 0, ticked.stderr
    told_once(ticked.stderr)  # two letters met, one line
    counts = json.loads(ticked.stdout)  # nothing of WeasyPrint's in the JSON
    assert (counts["sent"], counts["deferred"], counts["failed"]) == (2, 2, 0)
    [sent] = (dripper.root / "outbox").glob("*.eml")
    assert "grace@hopper.example" in sent.name
    with (dripper.root / "calls" / "2026-03-02.csv").open(newline="") as f:
        assert [row["email"] for row in csv.DictReader(f)] == ["grace@hopper.example"]
    assert not list((dripper.root / "letters").glob("*.pdf"))

    # The touches wait with the reason, due again an hour on; no attempt is counted.
    for email in ("ada@lovelace.example", "zoe@mueller.example"):
        letter = touch(dripper, email, "letter-now")
        assert (letter["state"], letter["reason"], letter["attempts"]) == ("planned", REASON, 0)
        assert letter["due"] == (T1 + letter_libraries.WAIT).isoformat()
    step = dripper.json("report", "--json")["campaigns"]["literature-follow-up"]["steps"]["letter-now"]
    assert (step["planned"], step["failed"], step["reasons"]) == (2, 0, {REASON: 2})
    assert REASON in dripper("report").stdout

    # Before they are due again, a tick does not touch them (nor WeasyPrint): no hot loop.
    quiet = run(dripper.root, env, "tick", "--at", (T1 + timedelta(minutes=30)).isoformat(), "--json")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert json.loads(quiet.stdout)["deferred"] == 0

    # Six days on (past the five days after which retries give up), they still wait: never failed.
    later = T1 + timedelta(days=6)
    again = run(dripper.root, env, "tick", "--at", later.isoformat(), "--json")
    told_once(again.stderr)
    assert (json.loads(again.stdout)["deferred"], json.loads(again.stdout)["failed"]) == (2, 0)
    letter = touch(dripper, "ada@lovelace.example", "letter-now")
    assert (letter["state"], letter["reason"], letter["due"]) == (
        "planned",
        REASON,
        (later + letter_libraries.WAIT).isoformat(),
    )

    # `check` warns and passes; previews of a letter say the line and exit 1.
    checked = run(dripper.root, env, "check")
    assert checked.returncode == 0 and "OK" in checked.stdout
    assert checked.stderr == f"dripper: warning: {expected_line()}; letter touches wait until then\n"
    for args in (("--open",), ("--format", "pdf", "--out", "letter.pdf")):
        previewed = run(dripper.root, env, "preview", "literature-follow-up", "letter-now", *args)
        assert (previewed.returncode, previewed.stderr) == (1, f"dripper: {expected_line()}\n")
    assert not (dripper.root / "previews").exists() and not (dripper.root / "letter.pdf").exists()

    # The same project without the poisoned path prints them on its next tick.
    done = run(
        dripper.root,
        dripper_env(DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret"),
        "tick",
        "--at",
        (later + timedelta(hours=2)).isoformat(),
        "--json",
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["sent"] == 2
    letter = touch(dripper, "ada@lovelace.example", "letter-now")
    assert (letter["state"], letter["reason"]) == ("sent", None)
    assert len(list((dripper.root / "letters").glob("*.pdf"))) == 2
    step = dripper.json("report", "--json")["campaigns"]["literature-follow-up"]["steps"]["letter-now"]
    assert (step["sent"], step["reasons"]) == (2, {})

    # Merging a batch takes pypdf only: `letters build` works without Pango.
    batch = dripper.json("letters", "list", "--json")[0]["batch"]
    built = run(dripper.root, env, "letters", "build", batch)
    assert built.returncode == 0 and built.stderr == "", built.stderr
    assert (dripper.root / "letters" / batch / "batch.pdf").stat().st_size > 0


def test_the_dashboard_says_why_a_letter_waits(letter_project: Dripper, nolibs: Path) -> None:
    from test_dashboard import TOKEN, make_client

    from dripper.clock import FrozenClock

    dripper = letter_project
    env = poisoned(nolibs, DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret")
    assert run(dripper.root, env, "tick", "--at", T1.isoformat()).returncode == 0
    client, store = make_client(dripper, TOKEN, FrozenClock(T1 + timedelta(minutes=5)))
    try:
        with client:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            found = client.get("/dashboard/leads", params={"q": "ada@"}, headers=headers).text
            lead = found.split("/dashboard/leads/")[1].split("'")[0]
            page = client.get(f"/dashboard/leads/{lead}", headers=headers).text
            assert REASON in page and "this machine cannot print letters yet" in page
            assert REASON in client.get("/dashboard", headers=headers).text
    finally:
        store.dispose()


def test_a_worker_says_it_once_for_all_its_ticks(dripper_sqlite: Dripper, nolibs: Path, tmp_path: Path) -> None:
    dripper = dripper_sqlite
    (dripper.root / "campaigns.yaml").write_text(CAMPAIGNS)
    (dripper.root / "templates" / "letters" / "call.html").write_text("<p>Call {{ lead.first_name }}.</p>")
    header, ada, zoe, _ = LEADS.splitlines()
    env = poisoned(nolibs, DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dripper", "run", "--interval", "1"],
            cwd=dripper.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Two leads whose letters fall due now (the real clock), each met by a tick of its own.
        for row in (ada, zoe):
            (dripper.root / "one.csv").write_text(f"{header}\n{row}\n")
            dripper("leads", "import", "one.csv")
            email = row.split(",")[0]

            def waits(email: str = email) -> bool:
                return bool(touch(dripper, email, "letter-now")["reason"] == REASON)

            wait_for(waits, 30, f"{email}'s letter to wait")
        time.sleep(2.5)  # more ticks
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    text = log.read_text()
    assert text.count("letters need Pango") == 1 and "Traceback" not in text, text


RECOVERS = """
import logging, os, sys
from datetime import timedelta
from dripper.clock import FrozenClock
from dripper.channels.letters.libraries import RECHECK, Libraries

logging.basicConfig(level=logging.WARNING, format="%(message)s")
logging.getLogger("dripper.letters").setLevel(logging.INFO)
clock = FrozenClock()
libraries = Libraries(clock)
print(libraries.missing() is not None, libraries.missing() is not None)
for name in os.listdir(sys.argv[1]):  # someone installs the libraries
    os.remove(os.path.join(sys.argv[1], name))
clock.advance(RECHECK - timedelta(seconds=1))
print(libraries.missing() is not None)  # not tried again yet
clock.advance(timedelta(seconds=1))
print(libraries.missing() is None)
"""


def test_a_long_running_process_finds_libraries_installed_later(tmp_path: Path) -> None:
    for name in NOT_A_LIBRARY:
        (tmp_path / name).write_text("not a library\n")
    result = subprocess.run(
        [sys.executable, "-c", RECOVERS, str(tmp_path)],
        env=poisoned(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 4
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == expected_line(), result.stderr
    assert lines[1].startswith("letters can be printed again")


def test_no_letter_due_means_weasyprint_is_not_loaded(dripper_sqlite: Dripper, nolibs: Path) -> None:
    dripper = dripper_sqlite
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())  # the fixture campaign: e-mails first
    env = poisoned(nolibs, DRIPPER_DATABASE_URL=dripper.db_url, DRIPPER_SECRET="test-secret")
    ticked = run(dripper.root, env, "tick", "--at", T1.isoformat(), "--json")
    assert (ticked.returncode, ticked.stderr) == (0, "")
    assert json.loads(ticked.stdout)["sent"] == 3
    # `check` of a file without letter steps does not load it either.
    (dripper.root / "campaigns.yaml").write_text(HEADER + EMAIL_AND_CALL_TRACK)
    (dripper.root / "templates" / "letters" / "call.html").write_text("<p>Call {{ lead.first_name }}.</p>")
    checked = run(dripper.root, env, "check")
    assert (checked.returncode, checked.stderr) == (0, "")


def _ubuntu_like(os_id: str, id_like: str, codename: str, ubuntu_codename: str) -> dict[str, str]:
    """os-release of Ubuntu or a distribution built on it."""
    return {"ID": os_id, "ID_LIKE": id_like, "VERSION_CODENAME": codename, "UBUNTU_CODENAME": ubuntu_codename}


@pytest.mark.parametrize(
    ("system", "release", "found"),
    [
        ("linux", {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}, Platform.DEBIAN),
        ("linux", {"ID": "debian", "VERSION_ID": "13", "VERSION_CODENAME": "trixie"}, Platform.DEBIAN),
        ("linux", {"ID": "debian", "VERSION_ID": "11", "VERSION_CODENAME": "bullseye"}, Platform.DEBIAN_OLD),
        ("linux", _ubuntu_like("ubuntu", "debian", "noble", "noble"), Platform.DEBIAN),
        ("linux", _ubuntu_like("ubuntu", "debian", "jammy", "jammy"), Platform.DEBIAN_OLD),
        ("linux", _ubuntu_like("linuxmint", "ubuntu debian", "virginia", "jammy"), Platform.DEBIAN_OLD),
        ("linux", _ubuntu_like("linuxmint", "ubuntu debian", "wilma", "noble"), Platform.DEBIAN),
        ("linux", {"ID": "debian"}, Platform.DEBIAN),  # no codename: the current package names
        ("linux", {"ID": "fedora", "VERSION_ID": "40"}, Platform.FEDORA),
        ("linux", {"ID": "rocky", "ID_LIKE": "rhel centos fedora"}, Platform.FEDORA),
        ("linux", {"ID": "alpine"}, Platform.OTHER),
        ("linux", {}, Platform.OTHER),
        ("darwin", {}, Platform.MACOS),
    ],
)
def test_the_hint_fits_the_platform(system: str, release: dict[str, str], found: Platform) -> None:
    assert detect(system, release) is found


def test_install_commands() -> None:
    assert install_command(Platform.DEBIAN, root=True) == (
        "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"
    )
    assert install_command(Platform.DEBIAN, root=False) == f"sudo {INSTALL[Platform.DEBIAN]}"
    assert install_command(Platform.DEBIAN_OLD, root=True) == "apt-get install libpango-1.0-0 libpangoft2-1.0-0"
    assert install_command(Platform.FEDORA, root=False) == "sudo dnf install pango"
    assert install_command(Platform.MACOS, root=False).startswith("brew install pango (")  # never sudo
    assert "DYLD_FALLBACK_LIBRARY_PATH=$(brew --prefix)/lib" in INSTALL[Platform.MACOS]
    missing = Missing("libgobject-2.0-0", "dnf install pango")
    assert missing.reason == REASON
    assert missing.line == "letters need Pango: dnf install pango (WeasyPrint cannot load libgobject-2.0-0)"
