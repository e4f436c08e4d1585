"""`dripper serve` when things go wrong: a failure on our side answers 503 (the database) or
500 (a bug), so that webhook senders retry; bad input gets a 4xx; tokens only in headers;
slow clients are cut off while others are served; events are not dated in the future."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PG_ADMIN, Dripper, Served, dripper_env, stop_serve
from conftest import start_serve as conftest_start_serve
from starlette.testclient import TestClient

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window
MAX_BODY, MAX_SMALL_BODY = 10 * 1024 * 1024, 64 * 1024  # /inbound, all else (docs/operators/serve.md)
HEAD_TIMEOUT = 10  # `dripper serve --header-timeout`'s default (docs/operators/serve.md)
NOW = T0 + timedelta(days=2)  # the clock of the in-process server
API, DASH, SCRAPE = "api-123", "dash-456", "scrape-789"
BEARER = {"Authorization": f"Bearer {API}"}


def outbox_message(email: str) -> Any:
    return message_from_bytes(next(Path("outbox").glob(f"*_{email}.eml")).read_bytes(), policy=policy.default)


def unsubscribe_path(email: str) -> str:
    url = outbox_message(email)["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    return url.removeprefix("http://127.0.0.1:8000")


def preferences_path(email: str) -> str:
    text = outbox_message(email).get_body(("plain",)).get_content()
    return text.split("Preferences: ", 1)[1].split()[0].removeprefix("http://127.0.0.1:8000")


def reply_to(email: str) -> bytes:
    sent = outbox_message(email)
    return (
        f"From: <{email}>\r\nTo: sales@acme.example\r\nSubject: Re: hi\r\nMessage-ID: <r-{uuid.uuid4().hex}@x>\r\n"
        f"In-Reply-To: {sent['Message-ID']}\r\n\r\nPlease call me.\r\n"
    ).encode()


def seed(dripper: Dripper) -> None:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat())


# --- a real `dripper serve` -------------------------------------------------------------------


def start_serve(project: Path, db_url: str, log: Path, *options: str) -> Served:
    env = dripper_env(
        DRIPPER_DATABASE_URL=db_url, DRIPPER_SECRET="test-secret", DRIPPER_API_TOKEN=API, DRIPPER_DASHBOARD_TOKEN=DASH
    )
    return conftest_start_serve(project, env, log, *options)


# --- 4. a database that goes away -------------------------------------------------------------


@dataclass
class Database:
    url: str
    take_away: Any  # () -> None: the database stops being usable, for good


@pytest.fixture(params=["sqlite", "postgresql"])
def doomed_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of this test's own, that the test can make unusable while serve runs."""
    if request.param == "sqlite":
        path = tmp_path / "doomed.db"

        def scribble() -> None:  # the file (and its WAL) no longer hold a database
            for part in tmp_path.glob("doomed.db*"):
                size = part.stat().st_size
                with open(part, "r+b") as handle:
                    handle.write(b"\x01garbage" * (size // 8 + 1))

        yield Database(f"sqlite:///{path}", scribble)
        return
    if os.environ.get("DRIPPER_TEST_NO_POSTGRES") == "1":
        pytest.skip("DRIPPER_TEST_NO_POSTGRES=1")
    import psycopg

    name = f"dripper_doomed_{uuid.uuid4().hex[:10]}"
    params = dict(part.split("=", 1) for part in PG_ADMIN.split())

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(
            f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
            f"{params.get('port', '5432')}/{name}",
            drop,
        )
    finally:
        drop()


def test_a_database_outage_answers_503_so_that_senders_retry(project: Path, doomed_database: Database, tmp_path: Path):
    seed(Dripper(project, doomed_database.url))
    unsubscribe, preferences = unsubscribe_path("ada@lovelace.example"), preferences_path("zoe@mueller.example")
    reply = reply_to("grace@hopper.example")
    server = start_serve(project, doomed_database.url, tmp_path / "serve.log")
    try:
        doomed_database.take_away()
        requests = {
            "POST /inbound": {"method": "POST", "url": "/inbound", "content": reply, "headers": BEARER},
            "POST /events": {
                "method": "POST",
                "url": "/events",
                "headers": BEARER,
                "json": {"email": "ada@lovelace.example", "kind": "converted"},
            },
            "POST /u": {"method": "POST", "url": unsubscribe, "data": {"List-Unsubscribe": "One-Click"}},
            "GET /u": {"method": "GET", "url": unsubscribe},
            "POST /p": {"method": "POST", "url": preferences, "data": {"choice": "all"}},
            "GET /dashboard": {"method": "GET", "url": "/dashboard", "headers": {"Authorization": f"Bearer {DASH}"}},
            "GET /metrics": {"method": "GET", "url": "/metrics"},
        }
        with httpx.Client(base_url=server.base, timeout=60) as client:
            for what, request in requests.items():
                response = client.request(**request)
                assert response.status_code == 503, (what, response.status_code, response.text[:300])
                assert response.headers["retry-after"] == "60", what
                if what.startswith(("POST /inbound", "POST /events")):
                    assert "database is unavailable" in response.json()["error"]
                elif what != "GET /metrics":
                    assert response.headers["content-type"].startswith("text/html")
                    assert "try again" in response.text
            assert client.get("/healthz").status_code == 503
    finally:
        stop_serve(server)
    log = server.text()
    assert "the database is unavailable, answered 503" in log
    assert "answered 500" not in log and "Exception in ASGI application" not in log, log[-3000:]


# --- in-process: a bug, bad input, tokens, body sizes, future instants --------------------------


@pytest.fixture
def web(dripper: Dripper) -> Iterator[tuple[TestClient, Dripper]]:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    seed(dripper)
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    app = create_app(
        WebContext(
            store,
            loaded,
            Tokens("test-secret"),
            FrozenClock(NOW),
            API,
            Settings(secret="test-secret"),
            metrics_token=SCRAPE,
            dashboard_token=DASH,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, dripper
    store.dispose()


def test_a_bug_answers_500_and_is_logged(
    web: tuple[TestClient, Dripper], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from dripper.store.queries import leadrows

    client, dripper = web
    path = unsubscribe_path("ada@lovelace.example")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug of ours")  # a LookupError: once answered as "no such lead" (404)

    monkeypatch.setattr(leadrows, "by_email", broken)
    monkeypatch.setattr(leadrows, "by_id", broken)
    with caplog.at_level(logging.ERROR, logger="dripper.web"):
        event = client.post("/events", json={"email": "ada@lovelace.example", "kind": "converted"}, headers=BEARER)
        page = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert event.status_code == 500 and "internal error" in event.json()["error"]
    assert "retry-after" not in event.headers
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert caplog.text.count("unexpected error, answered 500") == 2 and "a bug of ours" in caplog.text
    monkeypatch.undo()
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "active"


def test_tokens_in_the_url_are_refused_on_every_protected_endpoint(web: tuple[TestClient, Dripper]):
    client, _ = web
    reply = reply_to("zoe@mueller.example")
    for path, body in (
        ("/inbound", reply),
        ("/events", json.dumps({"email": "zoe@mueller.example", "kind": "converted"}).encode()),
    ):
        for headers in ({}, BEARER):  # refused even with the header: the token is in a log now
            response = client.post(f"{path}?token={API}", content=body, headers=headers)
            assert response.status_code == 400, (path, headers, response.status_code)
            assert (
                "Authorization: Bearer" in response.json()["error"]
                and "change DRIPPER_API_TOKEN" in response.json()["error"]
            )
    assert client.get(f"/metrics?token={SCRAPE}").status_code == 401
    dashboard = client.get(f"/dashboard?token={DASH}")
    assert "Dashboard token" in dashboard.text and "Overview" not in dashboard.text  # the login form, no more
    for headers, expected in (
        ({"Authorization": f"Bearer {API}"}, 200),
        ({"Authorization": f"bearer {API}"}, 200),
        ({"Authorization": f"Basic {API}"}, 401),
        ({"Authorization": API}, 401),
    ):
        response = client.post("/events", json={"email": "zoe@mueller.example", "kind": "replied"}, headers=headers)
        assert response.status_code == expected, (headers, response.status_code)


def test_bodies_over_the_limits_get_413(web: tuple[TestClient, Dripper]):
    client, dripper = web
    path = unsubscribe_path("ada@lovelace.example")
    huge = b"x" * (MAX_BODY + 1)
    assert client.post("/inbound", content=huge, headers=BEARER).status_code == 413
    big_event = {"email": "ada@lovelace.example", "kind": "converted", "pad": "x" * MAX_SMALL_BODY}
    assert client.post("/events", json=big_event, headers=BEARER).status_code == 413
    assert (
        client.post(
            path,
            content=b"List-Unsubscribe=One-Click&" + b"x" * MAX_SMALL_BODY,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code
        == 413
    )
    # streamed, with no Content-Length to go by
    chunks = iter([b"x" * 65536] * ((MAX_BODY // 65536) + 2))
    assert client.post("/inbound", content=chunks, headers=BEARER).status_code == 413
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "active"


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"email": "ada@lovelace.example\x00", "kind": "converted"}, '"email" must be an e-mail address'),
        ({"email": "a" * 400 + "@x.example", "kind": "converted"}, '"email" must be an e-mail address'),
        ({"email": ["ada@lovelace.example"], "kind": "converted"}, '"email" must be an e-mail address'),
        ({"email": "ada@lovelace.example", "kind": "stage", "stage": ["customer"]}, '"stage" must be the name'),
        ({"email": "ada@lovelace.example", "kind": "stage", "stage": "custo\x00mer"}, '"stage" must be the name'),
        ({"email": "ada@lovelace.example", "kind": "stage", "stage": "custmer"}, "unknown stage 'custmer'"),
        ({"email": "ada@lovelace.example", "kind": "converted", "at": 1767600000}, '"at" must be an ISO-8601 instant'),
        ({"email": "ada@lovelace.example", "kind": "converted", "at": "yesterday"}, '"at" is not an ISO-8601 instant'),
        (
            {"email": "ada@lovelace.example", "kind": "converted", "at": "0001-01-01T00:00:00+05:00"},
            '"at" is not an ISO-8601 instant',
        ),
        (
            {"email": "ada@lovelace.example", "kind": "converted", "at": "9999-12-31T23:59:59-05:00"},
            '"at" is not an ISO-8601 instant',
        ),
    ],
)
def test_bad_events_get_400_with_what_is_wrong(web: tuple[TestClient, Dripper], payload: dict[str, Any], message: str):
    client, dripper = web
    response = client.post("/events", json=payload, headers=BEARER)
    assert response.status_code == 400 and message in response.json()["error"], response.text
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "active"


def test_events_in_the_future_are_refused_beyond_five_minutes_of_skew(web: tuple[TestClient, Dripper]):
    client, dripper = web
    later = client.post(
        "/events",
        headers=BEARER,
        json={"email": "ada@lovelace.example", "kind": "converted", "at": (NOW + timedelta(days=30)).isoformat()},
    )
    assert later.status_code == 400
    assert "in the future" in later.json()["error"] and "5 minutes" in later.json()["error"]
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "active"
    skewed = client.post(
        "/events",
        headers=BEARER,
        json={"email": "ada@lovelace.example", "kind": "converted", "at": (NOW + timedelta(minutes=4)).isoformat()},
    )
    assert skewed.status_code == 200
    past = client.post(
        "/events",
        headers=BEARER,
        json={"email": "zoe@mueller.example", "kind": "replied", "at": (NOW - timedelta(days=1)).isoformat()},
    )
    assert past.status_code == 200
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "converted"


def test_the_cli_takes_any_instant_it_is_given(dripper: Dripper):
    # `dripper event --at` is the operator's own input, and simulations date events ahead
    # of the real clock on purpose (docs/reference/commands.md): it is not refused.
    seed(dripper)
    ahead = datetime.now(UTC) + timedelta(days=365)
    dripper("event", "ada@lovelace.example", "converted", "--at", ahead.isoformat())
    assert dripper.json("plan", "ada@lovelace.example", "--json")["lead"]["status"] == "converted"


# --- 6. slow clients ----------------------------------------------------------------------------


def _closed_after(sock: socket.socket, started: float, limit: float) -> tuple[float, bytes]:
    """Seconds from `started` until the server closed `sock`, and what it sent first."""
    sock.settimeout(limit)
    received = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return time.monotonic() - started, received
        received += chunk


def test_slow_request_heads_and_bodies_are_cut_off_while_others_are_served(
    project: Path, sqlite_url: str, tmp_path: Path
):
    seed(Dripper(project, sqlite_url))
    server = start_serve(project, sqlite_url, tmp_path / "serve.log", "--body-timeout", "2")
    host, port = server.base.removeprefix("http://").split(":")
    try:
        started = time.monotonic()
        idle = socket.create_connection((host, int(port)))  # says nothing at all
        half_head = socket.create_connection((host, int(port)))
        half_head.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        trickle = socket.create_connection((host, int(port)))
        trickle.sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + API.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        stop_trickling = threading.Event()

        def keep_trickling() -> None:  # a byte every 0.2 s: each one arrives in time, the whole never does
            while not stop_trickling.wait(0.2):
                try:
                    trickle.sendall(b" ")
                except OSError:
                    return

        thread = threading.Thread(target=keep_trickling, daemon=True)
        thread.start()
        # Meanwhile, other clients are served at once.
        with httpx.Client(base_url=server.base, timeout=5) as client:
            for _ in range(10):
                before = time.monotonic()
                assert client.get("/healthz").status_code == 200
                assert time.monotonic() - before < 1
                time.sleep(0.1)
        body_seconds, answer = _closed_after(trickle, started, 15)
        stop_trickling.set()
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert 2 <= body_seconds < 5, body_seconds
        for sock in (half_head, idle):
            head_seconds, answer = _closed_after(sock, started, HEAD_TIMEOUT + 10)
            assert answer == b""
            assert HEAD_TIMEOUT <= head_seconds < HEAD_TIMEOUT + 4, head_seconds
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
    finally:
        stop_serve(server)
        for sock in (idle, half_head, trickle):
            sock.close()
    log = server.text()
    assert "the request body did not arrive within 2s" in log and "the request head did not arrive within 10s" in log
    assert "Traceback" not in log and "answered 500" not in log, log[-3000:]
