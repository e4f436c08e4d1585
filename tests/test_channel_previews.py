"""What `dripper preview` and `dripper check` know of a channel they learn from its part:
the formats it previews in, the file a preview is made into, the page --open writes,
whether its steps need a subject, and why this machine cannot work it yet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from dripper.campaign.templates import sample_lead
from dripper.channels import registry
from dripper.channels.base import ChannelPart, Job, NotForStep, Preview, PreviewRequest
from dripper.channels.compose import Composer
from dripper.channels.letters import libraries
from dripper.channels.outcomes import Outcome
from dripper.config import Loaded
from dripper.reports.previews import touch_preview
from dripper.states import Channel

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


class Bare(ChannelPart):
    """A part that says nothing about previews or checks: the defaults."""

    channel: ClassVar[Channel] = Channel.CALL

    async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
        raise NotImplementedError


class Pages(Bare):
    @classmethod
    def preview(cls, request: PreviewRequest, fmt: str) -> Preview:
        return Preview(f"<p>{fmt} of {request.step.id}</p>")


def _request(loaded: Loaded, step_id: str) -> PreviewRequest:
    config = loaded.campaigns
    camp = config.campaigns["literature-follow-up"]
    step = camp.step(step_id)[1]  # type: ignore[index]
    lead = sample_lead(config, any_attrs=False)
    return PreviewRequest(Composer(loaded, "https://x.example", "secret"), lead, camp, step, AT, Path())


def test_a_part_without_previews_has_no_format_and_no_warning(loaded: Loaded) -> None:
    request = _request(loaded, "thanks")
    with pytest.raises(NotForStep, match="--format html is not for call steps"):
        Bare.preview(request, "html")
    with pytest.raises(NotForStep):
        Bare.preview_file("text", Path())
    assert Bare.check_warning() is None
    assert not Bare.needs_subject and not Bare.text_part


def test_the_open_page_defaults_to_the_html_format(loaded: Loaded) -> None:
    assert Pages.preview_page(_request(loaded, "thanks")) == b"<p>html of thanks</p>"


def test_only_email_steps_need_a_subject_and_a_text_part() -> None:
    assert {c for c, part in registry.PARTS.items() if part.needs_subject} == {Channel.EMAIL}
    assert {c for c, part in registry.PARTS.items() if part.text_part} == {Channel.EMAIL}


def test_a_letter_in_pdf_is_its_page_to_be_printed(loaded: Loaded) -> None:
    request = _request(loaded, "letter-1")
    shown = touch_preview(request.composer, request.view, request.campaign, request.step, AT, "pdf", request.templates)
    assert shown.file_suffix == ".pdf"
    assert shown.text == registry.PARTS[Channel.LETTER].preview(request, "html").text
    email = touch_preview(
        request.composer, request.view, request.campaign, _request(loaded, "thanks").step, AT, "eml", Path()
    )
    assert email.file_suffix == "" and "List-Unsubscribe: " in email.text


def test_letters_warn_only_when_the_libraries_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    letters = registry.PARTS[Channel.LETTER]
    monkeypatch.setattr(libraries, "probe", lambda: None)
    assert letters.check_warning() is None
    missing = libraries.Missing("libgobject-2.0-0", "apt-get install libpango-1.0-0")
    monkeypatch.setattr(libraries, "probe", lambda: missing)
    assert letters.check_warning() == f"{missing.line}; letter touches wait until then"
    assert registry.PARTS[Channel.EMAIL].check_warning() is None


def test_a_waiting_letter_carries_the_letters_unavailable_reason() -> None:
    from dripper.states import Reason

    reason = libraries.Missing("libpango-1.0-0", "x").reason
    assert Reason.parse(reason)[0] is Reason.LETTERS_UNAVAILABLE
