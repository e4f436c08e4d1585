"""Secrets: the SQLite file (which holds the generated secret) is private from its creation;
a rotated-out secret listed in DRIPPER_SECRET_OLD still verifies what it signed (unsubscribe
and preference links, test tokens, VERP bounce addresses), however old; the secret a project
ran on before it set DRIPPER_SECRET too. Real processes: `dripper serve`, `dripper ingest`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import Dripper, dripper_env
from conftest import serving as serve_process
from starlette.testclient import TestClient

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
THIRTEEN_MONTHS_ON = datetime(2027, 2, 6, 10, 0, tzinfo=UTC)
CAMPAIGN = "literature-follow-up"
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the database file ---------------------------------------------------------------------------


def test_the_sqlite_database_and_its_companions_are_created_private(tmp_path: Path) -> None:
    from dripper.store import open_store

    old_umask = os.umask(0o022)  # the usual one: without care, files come out 0644
    try:
        store = open_store(f"sqlite:///{tmp_path / 'dripper.db'}")
        secret = store.secret()  # generated and written into the file
        with store.begin() as conn:  # a connection in WAL mode keeps -wal and -shm while open
            conn.exec_driver_sql("SELECT 1")
            files = {p.name: mode(p) for p in tmp_path.iterdir()}
        store.dispose()
    finally:
        os.umask(old_umask)
    assert secret and {"dripper.db", "dripper.db-wal", "dripper.db-shm", "dripper.db.migrate-lock"} <= files.keys()
    assert files == dict.fromkeys(files, 384), {name: oct(m) for name, m in files.items()}


def test_an_empty_kept_secret_is_replaced_never_signed_with(tmp_path: Path) -> None:
    from dripper.store import open_store
    from dripper.store.tables import meta

    store = open_store(f"sqlite:///{tmp_path / 'dripper.db'}")
    with store.begin() as conn:  # a row left empty (by hand, or a restore gone wrong)
        conn.execute(meta.insert().values(key="secret", value=""))
    secret = store.secret()
    again = store.secret()
    kept = store.kept_secret()
    store.dispose()
    assert len(secret) >= 32 and again == secret and kept == secret


def test_a_database_file_others_can_read_gets_a_warning_and_is_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dripper.store import open_store

    path = tmp_path / "dripper.db"
    open_store(f"sqlite:///{path}").dispose()
    path.chmod(0o644)  # as dripper made it before
    with caplog.at_level(logging.WARNING, logger="dripper.store"):
        store = open_store(f"sqlite:///{path}")
        assert store.secret()  # it still runs: a lint is a warning
        store.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "dripper.store"]
    assert any(f"{path} has mode 0644" in w and f"chmod 600 {path}" in w for w in warnings), warnings
    assert mode(path) == 0o644  # not tightened behind the owner's back (a group may read it on purpose)
    path.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dripper.store"):
        open_store(f"sqlite:///{path}").dispose()
    assert not [r for r in caplog.records if r.name == "dripper.store"]


def test_secret_status_says_where_the_secret_lives_and_prints_none(dripper_sqlite: Dripper) -> None:
    from dripper.store import open_store

    dripper = dripper_sqlite
    generated = dripper.json("secret", "status", "--json", DRIPPER_SECRET=None)  # type: ignore[arg-type]
    assert generated == {
        "signing": "database",
        "verifying_old": 0,
        "database_secret_verifies": False,
        "database_file": {"path": dripper.db_url.removeprefix("sqlite:///"), "private": True},
    }
    kept = open_store(dripper.db_url).kept_secret()
    assert kept
    chosen = dripper("secret", "status", DRIPPER_SECRET="chosen-secret", DRIPPER_SECRET_OLD="a, b\nc")
    assert "signing with: DRIPPER_SECRET" in chosen.stdout
    assert "retired secrets that still verify: 4 (one of them the secret kept in the database)" in chosen.stdout
    assert "readable by its owner only" in chosen.stdout
    assert kept not in chosen.stdout + chosen.stderr and "chosen-secret" not in chosen.stdout + chosen.stderr


# --- rotation: Tokens ------------------------------------------------------------------------------


def test_tokens_sign_with_the_current_secret_and_verify_with_the_old_ones_too() -> None:
    from dripper.tokens import Tokens

    before = Tokens("first-secret")
    token, test_token = before.make(42, CAMPAIGN), before.make_test(42, CAMPAIGN)
    verp = before.bounce_address(7, "bounces@acme.example")
    rotated = Tokens("second-secret", old=("zeroth-secret", "first-secret"))
    assert rotated.read(token) is not None and (rotated.read(token).lead_id, rotated.read(token).campaign) == (
        42,
        CAMPAIGN,
    )
    assert rotated.read_test(test_token) is not None and rotated.read(test_token) is None  # kinds stay apart
    assert rotated.read_bounce_address(verp) == 7
    # Everything new is signed with the current secret only.
    assert Tokens("second-secret").read(rotated.make(42, CAMPAIGN)) is not None
    assert before.read(rotated.make(42, CAMPAIGN)) is None
    assert before.read_bounce_address(rotated.bounce_address(7, "bounces@acme.example")) is None
    assert rotated.message_id("a@b.example", CAMPAIGN, "thanks", "acme.example") == Tokens("second-secret").message_id(
        "a@b.example", CAMPAIGN, "thanks", "acme.example"
    )
    # A secret nobody listed verifies nothing; nor does a rotation that forgot the old one.
    stranger = Tokens("unknown-secret")
    for forged in (stranger.make(42, CAMPAIGN), stranger.make_test(42, CAMPAIGN)):
        assert rotated.read(forged) is None and rotated.read_test(forged) is None
    assert rotated.read_bounce_address(stranger.bounce_address(7, "bounces@acme.example")) is None
    assert Tokens("second-secret").read(token) is None
    assert Tokens("second-secret", old=()).read_bounce_address(verp) is None
    with pytest.raises(TypeError):
        Tokens("second-secret", old="first-secret")


def test_old_secrets_from_the_environment_and_the_command_line() -> None:
    from dripper.cli import main
    from dripper.settings import from_env, secret_list

    assert from_env({"DRIPPER_SECRET_OLD": " a, b\n\tc,,d "}).secret_old == ("a", "b", "c", "d")
    assert from_env({}).secret_old == () and secret_list("") == ()
    seen: list[Any] = []

    @main.command(name="show-old-secrets")
    def show() -> None:
        import click

        seen.append(click.get_current_context().find_object(object).settings.secret_old)  # type: ignore[union-attr]

    try:
        runner = CliRunner()
        runner.invoke(
            main, ["--secret-old", "a,b", "--secret-old", "c", "show-old-secrets"], env={}, catch_exceptions=False
        )
        runner.invoke(main, ["show-old-secrets"], env={"DRIPPER_SECRET_OLD": "x y,z"}, catch_exceptions=False)
    finally:
        main.commands.pop("show-old-secrets")
    assert seen == [("a", "b", "c"), ("x", "y", "z")]


# --- rotation through a real `dripper serve` --------------------------------------------------------


@contextlib.contextmanager
def serving(dripper: Dripper, at: datetime, log: Path, **env: str) -> Iterator[str]:
    """A real `dripper serve` on the project, its clock frozen at `at`."""
    with serve_process(
        dripper.root, dripper_env(DRIPPER_DATABASE_URL=dripper.db_url, **env), log, "--at", at.isoformat()
    ) as server:
        yield server.base


def sent_to(root: Path, email: str) -> Any:
    """The e-mail in the outbox addressed to `email` (whatever the file is called)."""
    for path in sorted((root / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if email in str(message["To"]):
            return message
    raise AssertionError(f"no e-mail to {email} in the outbox")


def unsubscribe_path(root: Path, email: str) -> str:
    url = str(sent_to(root, email)["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    assert url.startswith("http://127.0.0.1:8000/u/"), url
    return url.removeprefix("http://127.0.0.1:8000")


def lead(dripper: Dripper, email: str) -> dict[str, Any]:
    return dripper.json("plan", email, "--json")["lead"]


def lead_id(dripper: Dripper, email: str) -> int:
    from dripper.store import open_store
    from dripper.store.queries import leadrows

    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            return int(leadrows.by_email(conn, email).id)
    finally:
        store.dispose()


def test_a_link_sent_13_months_ago_under_a_rotated_out_secret_still_unsubscribes(
    dripper: Dripper, tmp_path: Path
) -> None:
    from dripper.tokens import Tokens

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), DRIPPER_SECRET="first-secret")
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat(), DRIPPER_SECRET="first-secret")
    ada, grace = (
        unsubscribe_path(dripper.root, "ada@lovelace.example"),
        unsubscribe_path(dripper.root, "grace@hopper.example"),
    )
    forged = "/u/" + Tokens("unknown-secret").make(lead_id(dripper, "zoe@mueller.example"), CAMPAIGN)

    # 13 months later the secret has been rotated; the first one is listed as old.
    with serving(
        dripper,
        THIRTEEN_MONTHS_ON,
        tmp_path / "serve.log",
        DRIPPER_SECRET="second-secret",
        DRIPPER_SECRET_OLD="zeroth-secret, first-secret",
    ) as base:
        page = httpx.get(base + ada)
        assert page.status_code == 200 and "<form method='post'>" in page.text
        assert httpx.get(base + grace.replace("/u/", "/p/", 1)).status_code == 200  # the preference page too
        done = httpx.post(base + ada, **ONE_CLICK)  # type: ignore[arg-type]
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        for method in ("GET", "POST"):
            assert httpx.request(method, base + forged, **ONE_CLICK).status_code == 404  # type: ignore[arg-type]
    unsubscribed = lead(dripper, "ada@lovelace.example")
    assert unsubscribed["status"] == "unsubscribed"
    assert unsubscribed["unsubscribed_at"] == THIRTEEN_MONTHS_ON.isoformat()  # on the server's (injected) clock
    assert lead(dripper, "zoe@mueller.example")["status"] == "active"
    assert " 500 " not in (tmp_path / "serve.log").read_text()


def test_rotation_without_listing_the_old_secret_ends_its_links(dripper: Dripper) -> None:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import tokens_for
    from dripper.web.app import WebContext, create_app

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), DRIPPER_SECRET="first-secret")
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat(), DRIPPER_SECRET="first-secret")
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    for settings, expected in (
        (Settings(secret="second-secret"), 404),
        (Settings(secret="second-secret", secret_old=("first-secret",)), 200),
    ):
        app = create_app(WebContext(store, loaded, tokens_for(settings, store), FrozenClock(THIRTEEN_MONTHS_ON), None))
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get(unsubscribe_path(dripper.root, "ada@lovelace.example")).status_code == expected
    store.dispose()


def test_links_signed_with_the_database_kept_secret_keep_working_once_DRIPPER_SECRET_is_set(
    dripper: Dripper, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from dripper.store import meta, open_store
    from dripper.tokens import Tokens

    unset: Any = None  # CliRunner removes a variable given as None
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), DRIPPER_SECRET=unset)
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat(), DRIPPER_SECRET=unset)
    store = open_store(dripper.db_url)
    with store.begin() as conn:
        kept = conn.execute(select(meta.c.value).where(meta.c.key == "secret")).scalar()
    store.dispose()
    ada, grace = (
        unsubscribe_path(dripper.root, "ada@lovelace.example"),
        unsubscribe_path(dripper.root, "grace@hopper.example"),
    )
    assert kept and Tokens(kept).read(ada.removeprefix("/u/")) is not None  # signed with the generated secret

    with serving(dripper, THIRTEEN_MONTHS_ON, tmp_path / "serve.log", DRIPPER_SECRET="chosen-secret") as base:
        assert httpx.post(base + ada, **ONE_CLICK).status_code == 200  # type: ignore[arg-type]
    assert lead(dripper, "ada@lovelace.example")["status"] == "unsubscribed"
    status = dripper.json("secret", "status", "--json", DRIPPER_SECRET="chosen-secret")
    assert (status["signing"], status["database_secret_verifies"]) == ("DRIPPER_SECRET", True)

    # Retiring it (say it leaked) ends what it signed; it is refused while it is the one that signs.
    assert dripper("secret", "retire-kept", DRIPPER_SECRET=unset, ok=1).stderr.count("set DRIPPER_SECRET first") == 1
    assert "deleted the secret kept" in dripper("secret", "retire-kept", DRIPPER_SECRET="chosen-secret").stdout
    with serving(dripper, THIRTEEN_MONTHS_ON, tmp_path / "serve2.log", DRIPPER_SECRET="chosen-secret") as base:
        assert httpx.post(base + grace, **ONE_CLICK).status_code == 404  # type: ignore[arg-type]
    assert lead(dripper, "grace@hopper.example")["status"] == "active"


# --- rotation: test tokens and VERP bounce addresses ------------------------------------------------


def test_a_test_send_link_of_a_rotated_out_secret_is_still_a_test(dripper: Dripper) -> None:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens, tokens_for
    from dripper.web.app import WebContext, create_app

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    tokens = tokens_for(Settings(secret="second-secret", secret_old=("first-secret",)), store)
    app = create_app(WebContext(store, loaded, tokens, FrozenClock(THIRTEEN_MONTHS_ON), None))
    ada = lead_id(dripper, "ada@lovelace.example")
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/u/", "/p/"):
            page = client.post(
                path + Tokens("first-secret").make_test(ada, CAMPAIGN), data={"List-Unsubscribe": "One-Click"}
            )
            assert page.status_code == 200 and "This was a test message" in page.text
            assert client.get(path + Tokens("unknown-secret").make_test(ada, CAMPAIGN)).status_code == 404
    store.dispose()
    assert lead(dripper, "ada@lovelace.example")["status"] == "active"


def bounce_to(return_path: str, recipient: str, n: int) -> bytes:
    """A delivery status notification (RFC 3464) sent to `return_path`, about `recipient`."""
    return (
        f"From: MAILER-DAEMON@mx.lovelace.example\nTo: <{return_path}>\n"
        f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn.{n}@mx.lovelace.example>\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.lovelace.example\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n--b--\n"
    ).encode()


def test_a_bounce_to_a_verp_address_of_a_rotated_out_secret_is_matched_by_it(dripper: Dripper, tmp_path: Path) -> None:
    from dripper.tokens import Tokens

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat(), DRIPPER_SECRET="first-secret")
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat(), DRIPPER_SECRET="first-secret")
    return_path = str(sent_to(dripper.root, "ada@lovelace.example")["Return-Path"]).strip("<>")
    touch = Tokens("first-secret").read_bounce_address(return_path)
    local, _, domain = return_path.partition("@")
    stranger = Tokens("unknown-secret").bounce_address(touch or 0, f"{local.partition('+')[0]}@{domain}")
    (tmp_path / "ours.eml").write_bytes(bounce_to(return_path, "ada@lovelace.example", 1))
    (tmp_path / "forged.eml").write_bytes(bounce_to(stranger, "grace@hopper.example", 2))
    rotated = {"DRIPPER_SECRET": "second-secret", "DRIPPER_SECRET_OLD": "first-secret"}
    results = [
        json.loads(line)
        for line in dripper(
            "ingest", "--json", "--dry-run", str(tmp_path / "ours.eml"), str(tmp_path / "forged.eml"), **rotated
        ).stdout.splitlines()
    ]
    ours, forged = results
    assert (ours["kind"], ours["lead"], ours["matched_by"]) == ("bounce_hard", "ada@lovelace.example", "verp")
    assert forged["matched_by"] != "verp"
    ingested = json.loads(dripper("ingest", "--json", str(tmp_path / "ours.eml"), **rotated).stdout)
    assert ingested["matched_by"] == "verp" and lead(dripper, "ada@lovelace.example")["status"] == "bounced"
