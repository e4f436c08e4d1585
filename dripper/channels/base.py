"""A channel as a pluggable part of the tick.

The tick (dripper.sending.tick) claims due touches, checks them (removed step, stage
change, missed, suppression, pause) and records their outcomes; everything that depends
on the step's channel is a `ChannelPart`: the work of one touch (`deliver`), and a few
optional hooks around it (limits, work done ahead in the render worker, a session around
the tick, paperwork after it). A channel's own row (a letter in the print batch, a call
task) travels with the outcome as a `ChannelRecord`, which stores itself in the commit
that records the outcome: the recorder knows no channel.

A channel is its folder under dripper/channels/ (its `part` module) plus its member of
`dripper.states.Channel`; the registry (dripper.channels.registry) finds the part there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, Self

from sqlalchemy import Connection

from dripper.campaign import timing
from dripper.states import Channel

if TYPE_CHECKING:
    from dripper.campaign.model import Campaign, Step
    from dripper.campaign.templates import LeadView
    from dripper.channels.compose import Composer
    from dripper.channels.email.transports import Transport
    from dripper.channels.letters.libraries import Libraries
    from dripper.channels.limits import Held
    from dripper.channels.outcomes import Outcome
    from dripper.clock import Clock
    from dripper.config import Loaded
    from dripper.settings import Settings
    from dripper.store import Store
    from dripper.store.queries.touchrows import Claimed


def business_day(instant: datetime, timezone: str) -> str:
    """The date (YYYY-MM-DD) the office in `timezone` is on at `instant`: print batches
    and call lists are per business day."""
    return instant.astimezone(timing.zone(timezone)).date().isoformat()


@dataclass(frozen=True)
class OutputDir:
    """A folder a channel writes into."""

    path: Path
    what: str  # what goes there, for the message
    variable: str  # the environment variable that moves it


@dataclass(frozen=True)
class Job:
    """A touch that passed the tick's checks and now needs its channel's work done."""

    touch: Claimed
    view: LeadView
    campaign: Campaign
    step: Step


@dataclass(frozen=True)
class PartContext:
    """What a channel part is built from, once a tick."""

    store: Store
    loaded: Loaded
    settings: Settings
    clock: Clock  # the business clock
    composer: Composer
    transport: Transport
    libraries: Libraries


class NotForStep(ValueError):
    """The preview format asked for does not exist for this step's channel."""


@dataclass(frozen=True)
class PreviewRequest:
    """One touch to show before it is sent (`dripper preview`)."""

    composer: Composer  # for pages, one whose links are test links
    view: LeadView
    campaign: Campaign
    step: Step
    now: datetime
    templates: Path  # where a letter's layout finds its files


@dataclass(frozen=True)
class Preview:
    """A touch in one format, as `dripper preview --format F` shows it: text to print or,
    when `file_suffix` is set, the text a file is made from (`ChannelPart.preview_file`;
    e.g. a letter's page, printed as PDF)."""

    text: str
    file_suffix: str = ""


@dataclass(frozen=True)
class PreviewFile:
    """A preview made into a file."""

    data: bytes
    detail: str  # what it holds, for the "wrote FILE (DETAIL)" line


class Previewer(Protocol):
    """A channel's previews (a module with these two functions will do)."""

    def preview(self, request: PreviewRequest, fmt: str) -> Preview: ...

    def page(self, request: PreviewRequest) -> bytes: ...


class ChannelRecord(ABC):
    """A channel's row that goes into the commit recording a touch's outcome (subclasses
    are frozen dataclasses)."""

    channel: ClassVar[Channel]

    @classmethod
    @abstractmethod
    def store_all(cls, conn: Connection, records: Sequence[Self], now: datetime) -> None:
        """Write these records (all of this class) inside the recorder's transaction."""


class ChannelPart(ABC):
    """The channel-specific work of the tick. One instance per tick; built from a
    `PartContext`."""

    channel: ClassVar[Channel]
    preview_suffix: ClassVar[str] = ".html"  # the file `dripper preview --open` writes
    needs_subject: ClassVar[bool] = False  # `check`: a step of this channel must have a subject
    text_part: ClassVar[bool] = False  # `check`: its template is also turned into a text part
    previewer: ClassVar[Previewer | None] = None  # its `dripper preview` formats and page, if any

    def __init__(self, context: PartContext):
        self.context = context

    @classmethod
    def output_dir(cls, settings: Settings, used: bool) -> OutputDir | None:
        """The folder this channel writes into (checked before a tick claims anything);
        `used`: some campaign has steps on this channel."""
        return None

    @classmethod
    def check_warning(cls) -> str | None:
        """Why this machine cannot do this channel's work yet, for `dripper check` to warn
        (asked only when some campaign has steps on this channel); None when it can."""
        return None

    @abstractmethod
    async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
        """Do the touch's work; `ahead` is what `compose_ahead` prepared for it, if anything.
        May raise: jinja2.TemplateError fails the touch, anything else is classified
        (dripper.channels.failures) and retried or failed."""

    async def open(self) -> None:  # noqa: B027 - an optional hook
        """Start of the tick's sends (e.g. a transport session)."""

    async def close(self) -> None:  # noqa: B027 - an optional hook
        """End of the tick's sends, even after an error."""

    def shutdown(self) -> None:  # noqa: B027 - an optional hook
        """Last thing in the tick, even when it is cancelled: stop any thread (the next
        tick may fork)."""

    def admit(self, jobs: Sequence[Job], now: datetime) -> Mapping[int, Held]:
        """Sending limits: the touches (by id) that may not go out yet."""
        return {}

    def ahead_due(self, at: datetime, up_to: int) -> int:
        """How many due touches (counted up to `up_to`) `compose_ahead` would hand to a
        render worker: the tick forks one only when it pays."""
        return 0

    def compose_ahead(
        self, jobs: Sequence[Job], leads: Mapping[int, LeadView], pool: Executor, now: datetime
    ) -> dict[int, Awaitable[object]]:
        """Hand CPU work for a claimed batch to the render worker; one awaitable per touch id."""
        return {}

    def after_tick(self, at: datetime, records: Sequence[ChannelRecord]) -> None:  # noqa: B027 - an optional hook
        """Paperwork after the sends; `records`: this channel's records the tick committed."""

    @classmethod
    def preview(cls, request: PreviewRequest, fmt: str) -> Preview:
        """The touch in `fmt` (text, html, eml or pdf) for `dripper preview`. Raises
        NotForStep for a format this channel has not, jinja2.TemplateError when the
        template cannot render for this lead."""
        if cls.previewer is not None:
            return cls.previewer.preview(request, fmt)
        raise NotForStep(f"--format {fmt} is not for {cls.channel} steps")

    @classmethod
    def preview_file(cls, text: str, templates: Path) -> PreviewFile:
        """The file a `Preview` with a `file_suffix` stands for, made from its text."""
        raise NotForStep(f"{cls.channel} previews are not files")

    @classmethod
    def preview_page(cls, request: PreviewRequest) -> bytes:
        """What `dripper preview --open` writes (a `preview_suffix` file): the previewer's
        page, else the html format."""
        if cls.previewer is not None:
            return cls.previewer.page(request)
        return cls.preview(request, "html").text.encode("utf-8")


__all__ = [
    "ChannelPart",
    "ChannelRecord",
    "Job",
    "NotForStep",
    "OutputDir",
    "PartContext",
    "Preview",
    "PreviewFile",
    "PreviewRequest",
    "Previewer",
    "business_day",
]
