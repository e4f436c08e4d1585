"""Webhooks (issue 20): the outbox is written in the event's transaction, delivered to real
HTTP servers on loopback, signed per Standard Webhooks (verified with the `standardwebhooks`
package), retried through an outage without losing anything, dead after 24 hours and sent
again by `dripper webhooks retry`."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dripper.clock import FrozenClock
from dripper.store import Store, open_store
from dripper.store.queries import leadrows, webhookrows
from dripper.store.tables import touches, webhook_outbox
from dripper.webhooks import delivery, subscriptions
from dripper.webhooks.events import WebhookEvent
from tests.support.hooks import receiver, verify
from tests.support.net import free_port

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # inside the send window from Berlin to Chicago
LEADS = ("ada@lovelace.example", "grace@hopper.example", "zoe@mueller.example")


def outbox_count(store: Store, state: str | None = None) -> int:
    with store.begin() as conn:
        query = select(func.count()).select_from(webhook_outbox)
        if state is not None:
            query = query.where(webhook_outbox.c.state == state)
        return int(conn.scalar(query) or 0)


def secret_from(stdout: str) -> str:
    found = re.search(r"secret: (whsec_\S+)", stdout)
    assert found, stdout
    return found.group(1)


def test_a_lead_event_reaches_a_real_receiver_signed_per_standard_webhooks(dripper):
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    with receiver() as hook:
        added = dripper("webhooks", "add", hook.url, "--events", "lead.replied,lead.stage_changed")
        secret = secret_from(added.stdout)
        now = datetime.now(UTC)
        dripper("event", "ada@lovelace.example", "replied", "--at", now.isoformat())
        dripper("event", "grace@hopper.example", "stage", "--stage", "customer", "--at", now.isoformat())
        dripper("event", "zoe@mueller.example", "converted", "--at", now.isoformat())  # nobody listens
        dripper("event", "ada@lovelace.example", "stage", "--stage", "supplier_research", "--at", now.isoformat())
        store = open_store(dripper.db_url)
        try:
            assert outbox_count(store, "pending") == 2  # a "move" to the stage it is in changes nothing
            summary = delivery.deliver_due(store, FrozenClock(now), "w1", env={})
        finally:
            store.dispose()
        assert (summary.delivered, summary.failed, summary.dead) == (2, 0, 0)
        bodies = [verify(secret, request) for request in hook.requests]
    assert {b["type"] for b in bodies} == {"lead.replied", "lead.stage_changed"}
    replied = next(b for b in bodies if b["type"] == "lead.replied")
    assert replied["data"]["lead"]["email"] == "ada@lovelace.example"
    moved = next(b for b in bodies if b["type"] == "lead.stage_changed")
    assert moved["data"]["detail"]["to"] == "customer" and moved["data"]["lead"]["stage"] == "customer"
    assert all(r.headers["webhook-id"].startswith("msg_") for r in hook.requests)
    assert "2 delivered" in dripper("webhooks", "list").stdout


def test_an_event_whose_transaction_rolls_back_leaves_no_webhook(store: Store):
    with store.begin() as conn:
        subscriptions.add(conn, "http://127.0.0.1:9/hook", "*", T0)
    with pytest.raises(RuntimeError), store.begin() as conn:
        leadrows.record_event(conn, None, "replied", T0, "test", {})
        assert outbox_count_in(conn) == 1  # written with the event...
        raise RuntimeError("the event's transaction fails")
    assert outbox_count(store) == 0  # ...and gone with it


def outbox_count_in(conn) -> int:
    return int(conn.scalar(select(func.count()).select_from(webhook_outbox)) or 0)


def _events(store: Store, n: int, at: datetime) -> None:
    with store.begin() as conn:
        for i in range(n):
            leadrows.record_event(conn, None, "replied", at, "test", {"n": i})


def test_a_receiver_down_for_an_hour_loses_nothing_and_gets_each_event(db_url: str, project: Path):
    store = open_store(db_url)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    try:
        with receiver() as hook:
            with store.begin() as conn:
                _, secret = subscriptions.add(conn, hook.url, "lead.replied", clock.now())
            assert secret is not None
            hook.status = 500
            _events(store, 5, clock.now())
            for _ in range(13):  # an hour of a dripper run's deliveries, every 5 minutes
                summary = delivery.deliver_due(store, clock, "w1", env={}, rng=random.Random(1))
                assert summary.delivered == 0 and summary.dead == 0
                clock.advance(timedelta(minutes=5))
            assert outbox_count(store, "pending") == 5
            failed_attempts = len(hook.requests)
            assert failed_attempts >= 5 * 5  # retried, with backoff (not every 5 minutes)
            assert failed_attempts < 5 * 13
            hook.status = 200  # back up
            clock.advance(timedelta(hours=1))
            summary = delivery.deliver_due(store, clock, "w1", env={})
            assert summary.delivered == 5
            assert delivery.deliver_due(store, clock, "w1", env={}).delivered == 0  # nothing twice
            taken = hook.taken()
        assert outbox_count(store, "delivered") == 5
        bodies = [verify(secret, r) for r in taken]
        assert sorted(b["data"]["detail"]["n"] for b in bodies) == [0, 1, 2, 3, 4]
        # Each retry of an event carried the same webhook-id, so a receiver can drop duplicates.
        ids = {r.headers["webhook-id"] for r in hook.requests}
        assert ids == {r.headers["webhook-id"] for r in taken} and len(ids) == 5
    finally:
        store.dispose()


def test_a_receiver_not_listening_at_all_is_retried_until_it_starts(store: Store):
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    port = free_port()
    with store.begin() as conn:
        _, secret = subscriptions.add(conn, f"http://127.0.0.1:{port}/hook", "*", clock.now())
    _events(store, 2, clock.now())
    summary = delivery.deliver_due(store, clock, "w1", env={})
    assert summary.failed == 2
    with store.begin() as conn:
        errors = {d.last_error for d, _ in webhookrows.listing(conn)}
    assert all(e and "ConnectError" in e for e in errors)
    clock.advance(timedelta(minutes=5))
    with receiver(port) as hook:
        assert delivery.deliver_due(store, clock, "w1", env={}).delivered == 2
        assert secret is not None
        assert len([verify(secret, r) for r in hook.requests]) == 2


def test_after_24_hours_a_delivery_is_dead_and_retry_sends_it_again(dripper):
    store = open_store(dripper.db_url)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    try:
        with receiver() as hook:
            hook.status = 503
            dripper("webhooks", "add", hook.url, "--events", "lead.replied", "--secret-env", "HOOK_SECRET")
            _events(store, 1, clock.now())
            env = {"HOOK_SECRET": subscriptions.new_secret()}
            dead = 0
            for _ in range(30):
                dead += delivery.deliver_due(store, clock, "w1", env=env).dead
                clock.advance(timedelta(hours=1))
            assert dead == 1 and outbox_count(store, "dead") == 1
            attempts = len(hook.requests)
            assert 10 < attempts < delivery.MAX_ATTEMPTS
            failed = dripper.json("webhooks", "failed", "--json")
            assert [f["event"] for f in failed] == ["lead.replied"] and "HTTP 503" in failed[0]["last_error"]
            assert dripper("webhooks", "retry", ok=2).exit_code == 2  # ids or --all
            assert "1 delivery queued again" in dripper("webhooks", "retry", "--all").stdout
            hook.status = 200
            assert delivery.deliver_due(store, FrozenClock(datetime.now(UTC)), "w1", env=env).delivered == 1
            verify(env["HOOK_SECRET"], hook.taken()[0])
        assert dripper.json("webhooks", "failed", "--json") == []
    finally:
        store.dispose()


def test_a_missing_secret_variable_is_an_attempt_that_failed_and_says_why(store: Store):
    clock = FrozenClock(datetime.now(UTC))
    with receiver() as hook, store.begin() as conn:
        subscriptions.add(conn, hook.url, "*", clock.now(), secret_env="NOT_SET_ANYWHERE")
    _events(store, 1, clock.now())
    assert delivery.deliver_due(store, clock, "w1", env={}).failed == 1
    with store.begin() as conn:
        [(row, _)] = webhookrows.listing(conn)
    assert "NOT_SET_ANYWHERE" in (row.last_error or "")


def test_claims_do_not_overlap_and_a_lapsed_lease_is_taken_again(db_url: str, project: Path):
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            subscriptions.add(conn, "http://127.0.0.1:9/hook", "*", T0)
        _events(store, 3, T0)
        with store.begin() as conn:
            first = webhookrows.claim(conn, T0, "w1", T0 + delivery.LEASE, 2)
        with store.begin() as conn:
            second = webhookrows.claim(conn, T0, "w2", T0 + delivery.LEASE, 10)
        assert len(first) == 2 and len(second) == 1
        assert not {d.id for d in first} & {d.id for d in second}
        later = T0 + delivery.LEASE + timedelta(seconds=1)  # w1 died mid-delivery
        with store.begin() as conn:
            again = webhookrows.claim(conn, later, "w3", later + delivery.LEASE, 10)
            assert not webhookrows.finish(conn, first[0].id, "w1", state="delivered")  # no longer w1's
        assert len(again) == 3
    finally:
        store.dispose()


def test_backoff_doubles_with_jitter_up_to_an_hour():
    rng = random.Random(7)
    waits = [delivery.backoff(n, rng) for n in range(1, 12)]
    assert timedelta(seconds=15) <= waits[0] <= timedelta(seconds=30)
    assert timedelta(seconds=30) <= waits[1] <= timedelta(seconds=60)
    assert all(timedelta(minutes=30) <= w <= timedelta(hours=1) for w in waits[8:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ftp://example.com/x", "--events", "lead.replied"), "not an http:// or https:// URL"),
        (("https://example.com/x", "--events", "lead.repled"), "unknown webhook event 'lead.repled'"),
        (("https://example.com/x", "--events", ","), "no events given"),
    ],
)
def test_webhooks_add_refuses_bad_input_and_says_why(dripper_sqlite, args, message):
    result = dripper_sqlite("webhooks", "add", *args, ok=1)
    assert message in result.stderr
    assert "no webhooks" in dripper_sqlite("webhooks", "list").stdout


def test_the_tick_enqueues_touch_sent_only_when_something_listens(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    store = open_store(dripper.db_url)
    try:
        first = dripper.json(
            "tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json", DRIPPER_SMTP_URL=smtp_sink.url
        )
        assert first["sent"] == 3 and outbox_count(store) == 0  # no subscription: nothing written
        with store.begin() as conn:
            subscriptions.add(conn, "http://127.0.0.1:9/hook", "touch.sent,touch.failed", T0)
        dripper(
            "leads",
            "add",
            "new@lead.example",
            "--stage",
            "supplier_research",
            "--campaign",
            "literature-follow-up",
            "--at",
            T0.isoformat(),
        )
        later = dripper.json(
            "tick", "--at", (T0 + timedelta(days=15)).isoformat(), "--json", DRIPPER_SMTP_URL=smtp_sink.url
        )
        with store.begin() as conn:
            rows = webhookrows.listing(conn)
        assert len(rows) == later["sent"] > 0
        body = json.loads(rows[0][0].payload)
        assert body["type"] == WebhookEvent.TOUCH_SENT
        assert body["data"]["touch"]["state"] == "sent" and body["data"]["lead"]["email"] in (
            *LEADS,
            "new@lead.example",
        )
        assert body["data"]["touch"]["message_id"]
    finally:
        store.dispose()


CAMPAIGN_HOOKS = """
webhooks:
  - url: https://crm.example/hooks/dripper
    events: [lead.replied, lead.converted]
    secret_env: CRM_WEBHOOK_SECRET
"""


def test_webhooks_in_campaigns_yaml_are_kept_in_step_with_the_database(dripper_sqlite, project: Path):
    path = project / "campaigns.yaml"
    original = path.read_text()
    path.write_text(original + CAMPAIGN_HOOKS)
    listed = dripper_sqlite.json("webhooks", "list", "--json")["subscriptions"]
    assert [(s["url"], s["events"], s["source"], s["secret_env"]) for s in listed] == [
        ("https://crm.example/hooks/dripper", ["lead.replied", "lead.converted"], "file", "CRM_WEBHOOK_SECRET")
    ]
    assert dripper_sqlite.json("webhooks", "list", "--json")["subscriptions"] == listed  # not added twice
    path.write_text(original)
    assert dripper_sqlite.json("webhooks", "list", "--json")["subscriptions"] == []


def test_a_secret_written_in_campaigns_yaml_is_refused_with_its_line(dripper_sqlite, project: Path):
    path = project / "campaigns.yaml"
    path.write_text(path.read_text() + CAMPAIGN_HOOKS.replace("secret_env: CRM_WEBHOOK_SECRET", "secret: whsec_abc"))
    result = dripper_sqlite("check", ok=False)
    assert result.exit_code != 0
    assert re.search(r"campaigns\.yaml:\d+(:\d+)?: .*secret", result.stderr + result.stdout)


def test_a_call_outcome_and_a_persons_click_are_announced_a_scanners_click_is_not(dripper, project: Path):
    from dripper.store.queries import clickrows

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("webhooks", "add", "http://127.0.0.1:9/hook", "--events", "call.completed,click")
    dripper("event", "ada@lovelace.example", "called", "--outcome", "voicemail", "--at", T0.isoformat())
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            lead = leadrows.by_email(conn, "ada@lovelace.example")
            assert lead is not None
            touch_id = conn.scalar(select(func.min(touches.c.id)).where(touches.c.lead_id == lead.id))
            touch = clickrows.touch_for_click(conn, int(touch_id))
            assert touch is not None
            for scanner in ("head", None):
                clickrows.insert_click(
                    conn, clickrows.NewClick(touch, "https://acme.example/x", T0, "GET", "Mozilla", scanner)
                )
            rows = webhookrows.listing(conn)
    finally:
        store.dispose()
    bodies = sorted((json.loads(d.payload) for d, _ in rows), key=lambda b: b["type"])
    assert [b["type"] for b in bodies] == ["call.completed", "click"]
    assert bodies[0]["data"]["detail"]["outcome"] == "voicemail"
    assert bodies[1]["data"]["url"] == "https://acme.example/x" and bodies[1]["data"]["lead"]["id"] == lead.id


def test_dripper_runs_job_syncs_the_file_and_delivers(project: Path, sqlite_url: str, monkeypatch):
    import asyncio

    from dripper.config import Watcher
    from dripper.sending.worker import Worker
    from dripper.settings import Settings

    with receiver() as hook:
        path = project / "campaigns.yaml"
        path.write_text(path.read_text() + CAMPAIGN_HOOKS.replace("https://crm.example/hooks/dripper", hook.url))
        settings = Settings(campaigns_path=path, database_url=sqlite_url)
        store = open_store(sqlite_url)
        clock = FrozenClock(datetime.now(UTC))
        try:
            worker = Worker(store, Watcher(settings), settings, clock)
            asyncio.run(worker.deliver_webhooks())  # the file's subscription is in the database now
            _events(store, 1, clock.now())
            secret = subscriptions.new_secret()
            monkeypatch.setenv("CRM_WEBHOOK_SECRET", secret)
            asyncio.run(worker.deliver_webhooks())
        finally:
            store.dispose()
        assert verify(secret, hook.taken()[0])["type"] == "lead.replied"


def test_migration_0015_adds_the_tables_as_declared_and_takes_them_back(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from dripper.store import db
    from dripper.store.tables import webhook_subscriptions

    def migrate(conn: object, revision: str, down: bool = False) -> None:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()  # type: ignore[attr-defined]

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.connect() as conn:
        migrate(conn, "0015")
        for table in (webhook_subscriptions, webhook_outbox):
            assert {c["name"] for c in inspect(conn).get_columns(table.name)} == {c.name for c in table.columns}
            assert {i["name"] for i in inspect(conn).get_indexes(table.name)} == {i.name for i in table.indexes}
        previous = db.MIGRATIONS / "versions" / "0015_webhooks.py"
        down_to = re.search(r'down_revision = "(\d+)"', previous.read_text())
        assert down_to
        migrate(conn, down_to.group(1), down=True)
        assert not inspect(conn).has_table("webhook_outbox") and not inspect(conn).has_table("webhook_subscriptions")
    engine.dispose()


def test_the_dashboard_lists_dead_webhooks_escaped(dripper_sqlite, project: Path):
    from starlette.testclient import TestClient

    from dripper import config as config_mod
    from dripper.settings import Settings
    from dripper.tokens import Tokens
    from dripper.web.app import WebContext, create_app

    store = open_store(dripper_sqlite.db_url)
    clock = FrozenClock(datetime.now(UTC))
    try:
        with store.begin() as conn:
            subscriptions.add(conn, "http://127.0.0.1:9/<script>x</script>", "*", clock.now())
        _events(store, 1, clock.now())
        with store.begin() as conn:
            [claimed] = webhookrows.claim(conn, clock.now(), "w1", clock.now() + delivery.LEASE, 10)
            webhookrows.finish(conn, claimed.id, "w1", state="dead", attempts=31, last_error="HTTP 500: <b>boom</b>")
        loaded = config_mod.load(Settings(campaigns_path=project / "campaigns.yaml"))
        context = WebContext(
            store, loaded, Tokens("test-secret"), clock, None, Settings(secret="test-secret"), dashboard_token="tok"
        )
        with TestClient(create_app(context), raise_server_exceptions=False) as client:
            page = client.get("/dashboard/webhooks", headers={"Authorization": "Bearer tok"})
            anonymous = client.get("/dashboard/webhooks").text  # no token: the login form, not the page
            assert "name='token'" in anonymous.replace('"', "'") and "boom" not in anonymous
    finally:
        store.dispose()
    assert page.status_code == 200
    assert "lead.replied" in page.text and "&lt;b&gt;boom&lt;/b&gt;" in page.text and "<script>x" not in page.text
    assert "dripper webhooks retry" in page.text


def test_a_refused_recipient_is_announced_as_touch_failed_and_lead_bounced(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("webhooks", "add", "http://127.0.0.1:9/hook", "--events", "touch.failed,lead.bounced")
    smtp_sink.rcpt_reply["ada@lovelace.example"] = "550 5.1.1 <ada@lovelace.example>: no such user"
    counts = dripper.json(
        "tick", "--at", (T0 + timedelta(days=1)).isoformat(), "--json", DRIPPER_SMTP_URL=smtp_sink.url
    )
    assert counts["failed"] == 1 and counts["sent"] == 2
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            bodies = [json.loads(d.payload) for d, _ in webhookrows.listing(conn)]
    finally:
        store.dispose()
    assert sorted(b["type"] for b in bodies) == ["lead.bounced", "touch.failed"]
    assert {b["data"]["lead"]["email"] for b in bodies} == {"ada@lovelace.example"}
    failed = next(b for b in bodies if b["type"] == "touch.failed")
    assert failed["data"]["touch"]["step"] == "thanks" and "550" in (failed["data"]["touch"]["detail"] or "")


def test_delivered_rows_are_deleted_after_30_days_and_dead_ones_kept(store: Store):
    clock = FrozenClock(datetime.now(UTC))
    with receiver() as hook:
        with store.begin() as conn:
            subscriptions.add(conn, hook.url, "*", clock.now())
        _events(store, 1, clock.now())
        assert delivery.deliver_due(store, clock, "w1", env={}).delivered == 1
    _events(store, 1, clock.now())
    with store.begin() as conn:  # and one that gave up
        [claimed] = webhookrows.claim(conn, clock.now(), "w1", clock.now() + delivery.LEASE, 1)
        webhookrows.finish(conn, claimed.id, "w1", state="dead", attempts=30, last_error="HTTP 500")
    clock.advance(timedelta(days=29))
    delivery.deliver_due(store, clock, "w1", env={})
    assert outbox_count(store, "delivered") == 1  # not 30 days yet
    clock.advance(timedelta(days=2))
    delivery.deliver_due(store, clock, "w1", env={})
    assert outbox_count(store, "delivered") == 0 and outbox_count(store, "dead") == 1


def test_two_workers_delivering_at_once_send_each_event_once(db_url: str, project: Path):
    import threading

    store = open_store(db_url)
    clock = FrozenClock(datetime.now(UTC))
    try:
        with receiver() as hook:
            with store.begin() as conn:
                _, secret = subscriptions.add(conn, hook.url, "*", clock.now())
            _events(store, 60, clock.now())
            summaries: list[delivery.Summary] = []

            def work(name: str) -> None:
                summaries.append(delivery.deliver_due(store, clock, name, env={}))

            workers = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(60)
            ids = [r.headers["webhook-id"] for r in hook.requests]
        assert sum(s.delivered for s in summaries) == 60 and len(ids) == len(set(ids)) == 60
        assert secret is not None and all(verify(secret, r) for r in hook.requests)
    finally:
        store.dispose()


def test_inbound_mail_announces_replies_and_bounces_once_and_auto_replies_never(dripper, tmp_path: Path):
    from tests.test_inbound import _as_sent_to, _ingest

    dripper("leads", "import", "leads.csv", "--at", T0.isoformat())
    dripper("tick", "--at", (T0 + timedelta(days=1)).isoformat())
    dripper("webhooks", "add", "http://127.0.0.1:9/hook", "--events", "*")
    files = [
        _as_sent_to("reply.eml", "ada@lovelace.example", tmp_path),
        _as_sent_to("ooo-en.eml", "grace@hopper.example", tmp_path),
        _as_sent_to("dsn-hard-511.eml", "zoe@mueller.example", tmp_path),
    ]
    _ingest(dripper, *files)
    _ingest(dripper, *files)  # the same messages again: already applied, nothing announced twice
    store = open_store(dripper.db_url)
    try:
        with store.begin() as conn:
            found = sorted(
                (b["type"], b["data"]["lead"]["email"], b["data"]["source"])
                for b in (json.loads(d.payload) for d, _ in webhookrows.listing(conn))
            )
    finally:
        store.dispose()
    assert found == [
        ("lead.bounced", "zoe@mueller.example", "inbound"),
        ("lead.replied", "ada@lovelace.example", "inbound"),
    ]


def test_a_url_the_http_client_refuses_fails_its_own_delivery_not_the_others(store: Store):
    clock = FrozenClock(datetime.now(UTC))
    with receiver() as hook:
        with store.begin() as conn:  # as an older version might have let in
            webhookrows.add_subscription(conn, "http://[::1/x", ["*"], clock.now(), secret="whsec_" + "A" * 43 + "=")
            subscriptions.add(conn, hook.url, "*", clock.now())
        _events(store, 1, clock.now())
        summary = delivery.deliver_due(store, clock, "w1", env={})
        assert (summary.delivered, summary.failed) == (1, 1) and len(hook.taken()) == 1
    with store.begin() as conn:
        errors = [d.last_error for d, _ in webhookrows.listing(conn, "pending")]
    assert errors and "InvalidURL" in (errors[0] or "")
