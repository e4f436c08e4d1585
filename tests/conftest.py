"""Shared fixtures: a project folder, both databases for real, the CLI, a real SMTP server.

PostgreSQL runs on every machine at 127.0.0.1:5432 (user postgres, trust auth). A fresh
database is created for the test session and dropped at the end; tests that need it fail
(not skip) when it is unreachable, unless DRIPPER_TEST_NO_POSTGRES=1 is set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dripper.store.tables import metadata as _metadata

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


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail the test saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


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


# --- a real SMTP server on loopback ------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that records what it accepts and can be told to refuse."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Received] = []
        self.rcpt_reply: dict[str, str] = {}  # address -> SMTP reply for RCPT TO
        self.data_reply: str | None = None  # e.g. "451 4.3.0 try later"
        sink = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                reply = sink.rcpt_reply.get(address.lower())
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.data_reply:
                    return sink.data_reply
                sink.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
                return "250 Message accepted for delivery"

        self.handler = Handler()
        self.port = free_port()
        self._controller_class = Controller
        self.controller: Any = None

    def start(self) -> None:
        """Start (or restart, on the same port) the server."""
        self.controller = self._controller_class(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


# --- a real IMAP server (Dovecot) on loopback --------------------------------------------


@dataclass
class ImapServer:
    port: int
    user: str
    password: str
    process: Any

    @property
    def url(self) -> str:
        return f"imaps://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX?verify=false"

    def client(self):
        import imaplib
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context)
        client.login(self.user, self.password)
        return client

    def deliver(self, raw: bytes, mailbox: str = "INBOX") -> None:
        client = self.client()
        try:
            status, _ = client.append(mailbox, None, None, raw)
            assert status == "OK"
        finally:
            client.logout()

    def count(self, mailbox: str) -> int:
        client = self.client()
        try:
            status, data = client.select(mailbox)
            return int(data[0]) if status == "OK" else -1
        finally:
            client.logout()


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    """A private Dovecot instance (IMAPS, a passwd-file user, Maildir) started for one test."""
    import grp
    import imaplib
    import pwd
    import socket
    import subprocess
    import tempfile
    import time

    dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(dovecot).exists():
        pytest.fail("dovecot is missing: run scripts/test (it installs it) or apt-get install dovecot-imapd")
    trustme = pytest.importorskip("trustme")
    root = Path(tempfile.mkdtemp(prefix="dripper-imap-", dir="/tmp"))
    root.chmod(0o755)
    user = pwd.getpwnam("dovecot")
    home = root / "home"
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid)
    cert = trustme.CA().issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    port = free_port()
    (root / "users").write_text("drip:{PLAIN}s3cret\n")
    (root / "dovecot.conf").write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {user.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={user.pw_uid} gid={grp.getgrgid(user.pw_gid).gr_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
""")
    process = subprocess.Popen(
        [dovecot, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(
                f"dovecot did not start: {process.stderr.read().decode() if process.stderr else ''}{log}"
            )
        time.sleep(0.1)
    server = ImapServer(port, "drip", "s3cret", process)
    # Listening is not serving: on a machine where Dovecot has just been installed its auth
    # process can take a while to answer, and logins meanwhile get "[UNAVAILABLE] Temporary
    # authentication failure". A test starts once a login works.
    while True:
        try:
            server.client().logout()
            break
        except imaplib.IMAP4.error as exc:
            if "UNAVAILABLE" not in str(exc) or time.monotonic() > deadline + 20:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                process.terminate()
                process.wait(10)
                raise RuntimeError(f"dovecot does not let its user log in: {exc}\n{log}") from None
            time.sleep(0.5)
    yield server
    process.terminate()
    process.wait(10)
    shutil.rmtree(root, ignore_errors=True)
