"""Inbound kinds are InboundKind members everywhere, and print as the plain words of
`ingest --json` (design.md)."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

from dripper.inbound import KINDS
from dripper.inbound.classify import bounce_kind, classify
from dripper.inbound.ingest import Ingested
from dripper.planning.planner import EnrollResult
from dripper.states import InboundKind

REPLY = b"From: Ann <ann@example.com>\r\nTo: sales@acme.example\r\nSubject: Re: prices\r\n\r\nYes please, call me.\r\n"
AWAY = b"From: Ann <ann@example.com>\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n"


def test_the_kinds_are_the_enum_in_its_order() -> None:
    assert tuple(InboundKind) == KINDS  # the values themselves: test_states


def test_classify_and_bounce_kind_answer_with_members() -> None:
    for raw, expected in ((REPLY, InboundKind.REPLY), (AWAY, InboundKind.AUTO_REPLY)):
        kind = classify(message_from_bytes(raw, policy=policy.default)).kind
        assert type(kind) is InboundKind and kind is expected
    assert bounce_kind("550 5.1.1 <a@b.example>: no such user") is InboundKind.BOUNCE_HARD
    assert bounce_kind("452 4.2.2 mailbox full") is InboundKind.BOUNCE_SOFT


def test_an_ingested_message_prints_its_kinds_as_plain_words() -> None:
    record = Ingested(
        "m.eml", InboundKind.UNKNOWN, None, None, None, None, "", "<m@x>", classified_as=InboundKind.BOUNCE_HARD
    ).as_json()
    printed = json.dumps(record, ensure_ascii=False)
    assert printed == json.dumps({**record, "kind": "unknown", "classified_as": "bounce_hard"}, ensure_ascii=False)
    assert '"kind": "unknown"' in printed and '"classified_as": "bounce_hard"' in printed


def test_enroll_results_of_batches_add_up() -> None:
    first = EnrollResult(created=2, updated=1, unchanged=3, moved=1, duplicates=((5, 2, "a@x.example"),))
    second = EnrollResult(created=1, unchanged=4, duplicates=((9, 7, "b@x.example"),))
    assert first + second == EnrollResult(
        created=3, updated=1, unchanged=7, moved=1, duplicates=((5, 2, "a@x.example"), (9, 7, "b@x.example"))
    )
    assert EnrollResult() + EnrollResult() == EnrollResult()
