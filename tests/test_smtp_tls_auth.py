"""DRIPPER_SMTP_URL variants against real aiosmtpd servers: AUTH, STARTTLS, implicit TLS."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.smtp import SmtpSink, smtp_sink

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window


@pytest.fixture
def tls() -> ssl.SSLContext:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    return server_ctx


def _run(dripper, url: str) -> dict[str, int]:
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    return dripper.json("tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json", DRIPPER_SMTP_URL=url)


@contextlib.contextmanager
def serving(**options: Any) -> Iterator[tuple[SmtpSink, int]]:
    """A real aiosmtpd server on loopback with these Controller options (auth=True: a login is required)."""
    if options.pop("auth", False):
        options["credentials"] = ("drip", "s3cr:t")
    with smtp_sink(**options) as recorder:
        yield recorder, recorder.port


def test_auth_plain_or_login_when_credentials_are_given(dripper_sqlite):
    with serving(auth=True) as (recorder, port):
        counts = _run(dripper_sqlite, f"smtp://drip:s3cr%3At@127.0.0.1:{port}")
    assert counts["sent"] == 3 and len(recorder.messages) == 3
    assert recorder.logins and {m for m, _ in recorder.logins} <= {"PLAIN", "LOGIN"}


def test_wrong_credentials_defer_and_lose_nothing(dripper_sqlite):
    with serving(auth=True) as (recorder, port):
        counts = _run(dripper_sqlite, f"smtp://drip:wrong@127.0.0.1:{port}")
    assert counts["sent"] == 0 and counts["deferred"] == 3 and not recorder.messages
    plan = dripper_sqlite.json("plan", "ada@lovelace.example", "--json")["touches"][0]
    assert plan["state"] == "planned" and plan["reason"].startswith("smtp_retry: auth: 535")


def test_starttls(dripper_sqlite, tls):
    with serving(tls_context=tls, require_starttls=True) as (recorder, port):
        counts = _run(dripper_sqlite, f"smtp://127.0.0.1:{port}?starttls=true&verify=false")
    assert counts["sent"] == 3 and len(recorder.messages) == 3


def test_implicit_tls(dripper_sqlite, tls):
    with serving(ssl_context=tls) as (recorder, port):
        counts = _run(dripper_sqlite, f"smtps://127.0.0.1:{port}?verify=false")
    assert counts["sent"] == 3 and len(recorder.messages) == 3
