"""`dripper serve`: one-click unsubscribe (RFC 8058), webhooks, health; never a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from conftest import Dripper, dripper_env, serving
from starlette.testclient import TestClient

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago, 16:00 in Berlin: inside the send window


@pytest.fixture
def web(dripper: Dripper) -> tuple[TestClient, Dripper]:
    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.settings import Settings
    from dripper.store import open_store
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    store = open_store(dripper.db_url)
    loaded = config_mod.load(Settings(campaigns_path=dripper.root / "campaigns.yaml"))
    app = create_app(WebContext(store, loaded, Tokens("test-secret"), FrozenClock(T0 + timedelta(days=2)), "api-123"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, dripper
    store.dispose()


def unsubscribe_path(email: str) -> str:
    data = next(Path("outbox").glob(f"*_{email}.eml")).read_bytes()
    header = message_from_bytes(data, policy=policy.default)["List-Unsubscribe"]
    url = header.split(",")[0].strip().strip("<>")
    assert url.startswith("http://127.0.0.1:8000/u/")
    return url.removeprefix("http://127.0.0.1:8000")


def status(dripper: Dripper, email: str) -> str:
    return dripper.json("plan", email, "--json")["lead"]["status"]


def test_get_confirms_and_changes_nothing_post_unsubscribes_once(web) -> None:
    client, dripper = web
    path = unsubscribe_path("ada@lovelace.example")
    page = client.get(path)
    assert page.status_code == 200 and "<form method='post'>" in page.text and "ad•@lovelace.example" in page.text
    assert status(dripper, "ada@lovelace.example") == "active"
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert 200 <= done.status_code < 300 and "set-cookie" not in done.headers
    plan = dripper.json("plan", "ada@lovelace.example", "--json")
    assert plan["lead"]["status"] == "unsubscribed"
    assert all(t["reason"] == "unsubscribed" for t in plan["touches"] if t["state"] != "sent")
    events = len(plan["events"])
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # harmless again
    assert len(dripper.json("plan", "ada@lovelace.example", "--json")["events"]) == events
    assert "You are unsubscribed" in client.get(path).text
    assert status(dripper, "zoe@mueller.example") == "active"


def test_tampered_foreign_and_unknown_tokens_get_4xx_and_change_nothing(web) -> None:
    from dripper.tokens import Tokens

    client, dripper = web
    path = unsubscribe_path("ada@lovelace.example")
    token = path.removeprefix("/u/")
    _payload, _, signature = token.rpartition(".")
    other_lead = Tokens("test-secret").make(2, "literature-follow-up").rpartition(".")[0]
    bad = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # tampered signature
        Tokens("another-secret").make(1, "literature-follow-up"),  # foreign
        f"{other_lead}.{signature}",  # moved to another lead
        Tokens("test-secret").make(999, "literature-follow-up"),  # a lead that does not exist
        "garbage",
        "x" * 5000,
        "%00%ff",
        ".",
        "..",
    ]
    for candidate in bad:
        for method in ("GET", "POST"):
            response = client.request(method, f"/u/{candidate}", data={"List-Unsubscribe": "One-Click"})
            assert 400 <= response.status_code < 500, (method, candidate[:40], response.status_code)
    for email in ("ada@lovelace.example", "zoe@mueller.example", "grace@hopper.example"):
        assert status(dripper, email) == "active"


def test_no_input_gets_a_5xx(web) -> None:
    client, _ = web
    token = {"Authorization": "Bearer api-123"}
    for method, path, body, headers in [
        ("GET", "/u/", b"", {}),
        ("PUT", "/u/abc", b"x", {}),
        ("DELETE", "/healthz", b"", {}),
        ("GET", "/nope", b"", {}),
        ("POST", "/events", b"{not json", {}),
        ("POST", "/events", b"{not json", token),
        ("POST", "/events", b"[1,2]", token),
        ("POST", "/events", b'{"email": 5, "kind": "x"}', token),
        ("POST", "/events", b'{"email": "a@b.example", "kind": "converted", "at": "9999-12-31T23:59:59-05:00"}', token),
        ("POST", "/events", b'{"email": "a\\u0000@b.example", "kind": "converted"}', token),
        ("POST", "/events", b"\xff\xfe{}", token),
        ("POST", "/events?token=api-123", b"{}", {}),
        ("POST", "/inbound", b"", token),
        ("POST", "/inbound", b"\x00\xff" * 100, token),
        ("POST", "/inbound", b"x" * (10 * 1024 * 1024 + 1), token),
        ("POST", "/u/%ZZ", b"List-Unsubscribe=One-Click", {}),
        ("GET", "/u/" + "é" * 100, b"", {}),
    ]:
        response = client.request(method, path, content=body, headers=headers)
        assert response.status_code < 500, (method, path, response.status_code)


def test_events_endpoint(web) -> None:
    client, dripper = web
    assert client.post("/events", json={"email": "ada@lovelace.example", "kind": "converted"}).status_code == 401
    ok = client.post(
        "/events",
        json={"email": "ada@lovelace.example", "kind": "converted", "stage": "customer"},
        headers={"Authorization": "Bearer api-123"},
    )
    assert ok.status_code == 200 and ok.json()["stage"] == "customer"
    plan = dripper.json("plan", "ada@lovelace.example", "--json")
    assert plan["lead"]["stage"] == "customer" and plan["lead"]["status"] == "converted"
    missing = client.post(
        "/events", json={"email": "who@x.example", "kind": "replied"}, headers={"Authorization": "Bearer api-123"}
    )
    assert missing.status_code == 404
    bad_kind = client.post(
        "/events",
        json={"email": "ada@lovelace.example", "kind": "exploded"},
        headers={"Authorization": "Bearer api-123"},
    )
    assert bad_kind.status_code == 400


def test_inbound_webhook(web, tmp_path: Path) -> None:
    client, dripper = web
    sent = message_from_bytes(
        next(Path("outbox").glob("*_zoe@mueller.example.eml")).read_bytes(), policy=policy.default
    )
    reply = (
        f"From: Zoe <zoe@mueller.example>\r\nTo: sales@acme.example\r\nSubject: Re: hi\r\n"
        f"Message-ID: <r-9@mueller.example>\r\nIn-Reply-To: {sent['Message-ID']}\r\n\r\nPlease call me.\r\n"
    ).encode()
    assert client.post("/inbound", content=reply).status_code in (401, 403)
    result = client.post("/inbound", content=reply, headers={"Authorization": "Bearer api-123"}).json()
    assert (result["kind"], result["lead"], result["matched_by"], result["applied"]) == (
        "reply",
        "zoe@mueller.example",
        "in_reply_to",
        True,
    )
    assert status(dripper, "zoe@mueller.example") == "replied"


def test_an_inbound_message_that_cannot_be_read_is_kept_not_retried(web) -> None:
    """A hostile message gets 200 (recorded as unknown, quarantined), not a 5xx that makes
    the mail provider post it again and again."""
    from test_inbound_trust import nested_multipart

    client, _dripper = web
    response = client.post("/inbound", content=nested_multipart(3000), headers={"Authorization": "Bearer api-123"})
    assert response.status_code == 200
    result = response.json()
    assert (result["kind"], result["quarantine"], result["applied"]) == ("unknown", True, True)
    assert "too deeply nested" in result["reason"]


def test_healthz(web) -> None:
    client, _ = web
    assert client.get("/healthz").json() == {"ok": True, "database": "ok"}


def test_dripper_serve_process(dripper_sqlite: Dripper) -> None:
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper_sqlite("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    env = dripper_env(DRIPPER_DATABASE_URL=dripper_sqlite.db_url, DRIPPER_SECRET="test-secret")
    with serving(dripper_sqlite.root, env, dripper_sqlite.root / "serve.log") as server:
        base = server.base
        path = unsubscribe_path("grace@hopper.example")
        response = httpx.post(
            base + path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200 and "set-cookie" not in response.headers
        assert status(dripper_sqlite, "grace@hopper.example") == "unsubscribed"


def _preferences_path(email: str) -> str:
    data = next(Path("outbox").glob(f"*_{email}.eml")).read_bytes()
    text = message_from_bytes(data, policy=policy.default).get_body(("plain",)).get_content()
    url = text.split("Preferences: ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:8000/p/")
    return url.removeprefix("http://127.0.0.1:8000")


def test_preference_page_stop_this_campaign(web) -> None:
    client, dripper = web
    path = _preferences_path("ada@lovelace.example")
    page = client.get(path)
    assert page.status_code == 200 and "name='choice' value='campaign'" in page.text
    assert status(dripper, "ada@lovelace.example") == "active"  # a GET changes nothing
    assert client.post(path, data={"choice": "campaign"}).status_code == 200
    plan = dripper.json("plan", "ada@lovelace.example", "--json")
    pending = [t for t in plan["touches"] if t["state"] != "sent"]
    assert pending and all((t["state"], t["reason"]) == ("suppressed", "opted_out") for t in pending)
    # a later stage change in the same campaign plans nothing that could go out
    dripper(
        "event",
        "ada@lovelace.example",
        "stage",
        "--stage",
        "lost_to_competitor",
        "--at",
        (T0 + timedelta(days=3)).isoformat(),
    )
    lost = [t for t in dripper.json("plan", "ada@lovelace.example", "--json")["touches"] if t["step"] == "lost-1"]
    assert lost and lost[0]["state"] == "suppressed" and lost[0]["reason"] == "opted_out"


def test_preference_page_pause(web) -> None:
    client, dripper = web
    path = _preferences_path("zoe@mueller.example")
    assert client.post(path, data={"choice": "pause", "months": "3"}).status_code == 200
    plan = dripper.json("plan", "zoe@mueller.example", "--json")
    assert plan["lead"]["status"] == "active"
    held = [t for t in plan["touches"] if t["state"] == "planned"]
    # paused on 7 January 2026 for 3 months: nothing is due before 7 April
    assert held and all(t["due"] >= "2026-04-07" for t in held)
    counts = dripper.json("tick", "--at", (T0 + timedelta(days=60)).isoformat(), "--json")
    zoe = list(Path("outbox").glob("*_zoe@mueller.example.eml"))
    assert len(zoe) == 1 and counts["sent"] >= 1  # only the first touch, before the pause; others went on


def test_preference_page_rejects_bad_input(web) -> None:
    client, dripper = web
    path = _preferences_path("grace@hopper.example")
    for data in ({"choice": "explode"}, {"choice": "pause", "months": "99"}, {"choice": "pause", "months": "x"}, {}):
        assert client.post(path, data=data).status_code == 400
    assert client.get("/p/garbage").status_code == 404
    assert client.post("/p/garbage", data={"choice": "all"}).status_code == 404
    assert status(dripper, "grace@hopper.example") == "active"


def _describe_campaign(project: Path, *, label: str | None) -> None:
    """Give the fixture campaign a strategy note (and a label): what the marketer writes."""
    path = project / "campaigns.yaml"
    extra = "    description: 'Internal: push the sample kit hard, they are price-shopping'\n"
    if label is not None:
        extra += f"    label: {label!r}\n"
    text = path.read_text().replace("  literature-follow-up:\n", "  literature-follow-up:\n" + extra, 1)
    path.write_text(text)


@pytest.fixture(
    params=[
        (None, "Literature follow up"),
        ("Product news from <Acme> & Co", "Product news from &lt;Acme&gt; &amp; Co"),
    ]
)
def labelled(project: Path, request: pytest.FixtureRequest) -> str:
    """The fixture campaign with a strategy note (and a label, or none); what the page should call it."""
    label, shown = request.param
    _describe_campaign(project, label=label)
    return str(shown)


# `labelled` first: it edits campaigns.yaml before `web` loads it.
def test_preference_page_names_the_sender_and_a_public_label_never_the_description(labelled: str, web) -> None:
    client, _ = web
    page = client.get(_preferences_path("ada@lovelace.example"))
    assert page.status_code == 200
    assert "push the sample kit" not in page.text and "Internal" not in page.text
    assert f"Stop these e-mails: {labelled}" in page.text
    assert "Stop all e-mails from Acme Sales" in page.text  # who is writing: the name in sender.from
