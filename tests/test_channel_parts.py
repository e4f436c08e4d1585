"""Channels are pluggable parts of the tick: the tick claims, checks, dispatches to the
step's channel part and records; a channel's own row is stored by its record class in
the commit that records the outcome, and its paperwork runs after the tick with the
records that were committed.

A fourth channel needs its folder with its part (and its record) plus a member of
`dripper.states.Channel`. A StrEnum cannot gain a member at run time, so the fake "sms"
task channel below is registered under an existing member (`call`): what it shows is
that the send path reaches a channel only through the parts it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import ClassVar, Self

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from dripper import config as config_mod
from dripper.channels import registry
from dripper.channels.base import ChannelPart, ChannelRecord, Job, OutputDir, business_day
from dripper.channels.outcomes import Outcome
from dripper.clock import FrozenClock
from dripper.sending.tick import Sender
from dripper.settings import Settings, from_env
from dripper.states import Channel, Reason, TouchState
from dripper.store import open_store
from dripper.store.queries import callrows

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 08:00 in Chicago

CAMPAIGNS = """
sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
defaults:
  timezone: America/Chicago
campaigns:
  literature-follow-up:
    stages:
      supplier_research:
        - id: text-1
          after: 0d
          channel: call
          template: texts/hello.txt
        - id: thanks
          after: 1d
          channel: email
          subject: "Thanks"
          template: mail/thanks.html
"""

# The fake channel's own table: nothing in dripper knows it.
SMS = Table("test_sms", MetaData(), Column("touch_id", Integer, primary_key=True), Column("body", String))


@dataclass(frozen=True)
class SmsRecord(ChannelRecord):
    channel: ClassVar[Channel] = Channel.CALL  # the stand-in member (see the module docstring)

    touch_id: int
    body: str

    @classmethod
    def store_all(cls, conn: Connection, records: Sequence[Self], now: datetime) -> None:
        SMS.create(conn, checkfirst=True)
        conn.execute(SMS.insert(), [{"touch_id": r.touch_id, "body": r.body} for r in records])


@dataclass
class SmsLog:
    """What the fake channel saw, shared by the parts of every tick of a test."""

    delivered: list[str]
    paperwork: list[list[int]]


def sms_part(log: SmsLog) -> type[ChannelPart]:
    class SmsPart(ChannelPart):
        channel: ClassVar[Channel] = Channel.CALL

        @classmethod
        def output_dir(cls, settings: Settings, used: bool) -> OutputDir | None:
            return OutputDir(settings.outbox_dir.parent / "sms", "text messages", "DRIPPER_SMS") if used else None

        async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
            body = f"Hello {job.view.first_name}, from {job.campaign.name}/{job.step.id}"
            log.delivered.append(job.view.email)
            return Outcome(TouchState.SENT, sent_at=now, record=SmsRecord(job.touch.id, body))

        def after_tick(self, at: datetime, records: Sequence[ChannelRecord]) -> None:
            log.paperwork.append(sorted(r.touch_id for r in records if isinstance(r, SmsRecord)))

    return SmsPart


@pytest.fixture
def settings(project: Path, sqlite_url: str) -> Settings:
    (project / "campaigns.yaml").write_text(CAMPAIGNS)
    (project / "templates" / "texts").mkdir()
    (project / "templates" / "texts" / "hello.txt").write_text("Say hello to {{ lead.first_name }}.\n")
    return from_env({"DRIPPER_DATABASE_URL": sqlite_url, "DRIPPER_SECRET": "test-secret"})


def test_a_new_channel_is_its_part_and_its_registration(dripper_sqlite, settings: Settings) -> None:
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())
    log = SmsLog([], [])
    parts = {**registry.PARTS, Channel.CALL: sms_part(log)}
    store = open_store(settings.database_url)
    try:
        loaded = config_mod.load(settings)
        at = T0 + timedelta(hours=1)
        summary = asyncio.run(Sender(store, loaded, settings, FrozenClock(at), parts=parts).tick(at))
        assert summary.sent == len(log.delivered) > 0
        with store.begin() as conn:
            stored = conn.execute(select(SMS.c.touch_id, SMS.c.body)).all()
            assert callrows.listing(conn) == []  # the calls part was not asked
        # The record went into the commit that recorded the touch, and to the paperwork.
        assert len(stored) == len(log.delivered)
        assert all(body.startswith("Hello ") and "literature-follow-up/text-1" in body for _, body in stored)
        assert log.paperwork == [sorted(touch_id for touch_id, _ in stored)]
        assert not settings.calls_dir.exists()  # no call list was written
        plan = dripper_sqlite.json("plan", log.delivered[0], "--json")
        text = next(t for t in plan["touches"] if t["step"] == "text-1")
        assert text["state"] == "sent" and text["reason"] is None
    finally:
        store.dispose()
    # The folders checked before a tick come from the parts too.
    folders = registry.output_dirs(settings, {"call"}, parts)
    assert [f.what for f in folders] == ["the e-mail outbox", "text messages"]


def test_the_default_registry_covers_every_channel(settings: Settings) -> None:
    assert set(registry.PARTS) == set(Channel)
    assert all(part.channel is channel for channel, part in registry.PARTS.items())
    assert registry.preview_suffix("letter") == ".pdf" and registry.preview_suffix("email") == ".html"
    assert [f.variable for f in registry.output_dirs(settings, {"email"})] == ["DRIPPER_OUTBOX"]
    assert [f.variable for f in registry.output_dirs(settings, {"letter", "call"})] == [
        "DRIPPER_OUTBOX",
        "DRIPPER_LETTERS",
        "DRIPPER_CALLS",
    ]


def test_business_day_is_one_function() -> None:
    from dripper.channels.calls import tasks

    assert tasks.business_day is business_day
    assert business_day(datetime(2026, 3, 2, 3, 0, tzinfo=UTC), "America/Chicago") == "2026-03-01"


def test_a_part_that_raises_becomes_a_retry_not_a_lost_touch(dripper_sqlite, settings: Settings) -> None:
    dripper_sqlite("leads", "import", "leads.csv", "--at", T0.isoformat())

    class Broken(ChannelPart):
        channel: ClassVar[Channel] = Channel.CALL

        async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
            raise OSError("the gateway is down")

    store = open_store(settings.database_url)
    try:
        at = T0 + timedelta(hours=1)
        sender = Sender(
            store, config_mod.load(settings), settings, FrozenClock(at), parts={**registry.PARTS, Channel.CALL: Broken}
        )
        summary = asyncio.run(sender.tick(at))
    finally:
        store.dispose()
    assert summary.sent == 0 and summary.deferred > 0
    plan = dripper_sqlite.json("plan", "ada@lovelace.example", "--json")
    text = next(t for t in plan["touches"] if t["step"] == "text-1")
    assert text["state"] == "planned" and text["reason"].startswith(Reason.RETRY.value)


def _channel_package(root: Path, name: str, folders: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A package `name` under `root` whose folders each hold a `part` module defining a
    part for the given Channel member (by name), as dripper/channels/ does."""
    import importlib

    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "notachannel").mkdir()
    (package / "notachannel" / "__init__.py").write_text("")
    for folder, member in folders.items():
        (package / folder).mkdir()
        (package / folder / "__init__.py").write_text("")
        (package / folder / "part.py").write_text(
            "from dripper.channels.base import ChannelPart\n"
            "from dripper.states import Channel\n\n"
            f"class Part(ChannelPart):\n    channel = Channel.{member}\n\n"
            "    async def deliver(self, job, ahead, now):\n        raise NotImplementedError\n"
        )
    monkeypatch.syspath_prepend(str(root))
    return importlib.import_module(name)


def test_a_channel_is_found_by_its_folder_and_its_enum_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders = {"sms": "EMAIL", "paper": "LETTER", "phone": "CALL"}
    package = _channel_package(tmp_path, "channels_found", folders, monkeypatch)
    found = registry.discover(package)
    assert list(found) == list(Channel)
    assert {channel: cls.__module__ for channel, cls in found.items()} == {
        Channel.EMAIL: "channels_found.sms.part",
        Channel.LETTER: "channels_found.paper.part",
        Channel.CALL: "channels_found.phone.part",
    }


def test_a_channel_without_a_part_fails_at_import_not_at_its_first_touch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _channel_package(tmp_path, "channels_missing", {"sms": "EMAIL"}, monkeypatch)
    with pytest.raises(TypeError, match="no part for the channel"):
        registry.discover(package)
