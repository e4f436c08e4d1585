"""Letters as a channel part: a letter needs a complete postal address and WeasyPrint's
system libraries; it is rendered to a PDF and is `sent` once it is in the day's print
batch (its record goes into the commit that records the outcome). After the tick, the
batches that gained letters are rebuilt and handed to the print service.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Self

from sqlalchemy import Connection

from dripper.channels.base import (
    ChannelPart,
    ChannelRecord,
    Job,
    OutputDir,
    PartContext,
    Preview,
    PreviewFile,
    PreviewRequest,
    business_day,
)
from dripper.channels.letters import batches
from dripper.channels.letters import layout as letters
from dripper.channels.letters import libraries as letter_libraries
from dripper.channels.letters.printing import make_adapter
from dripper.channels.outcomes import Outcome, kept_reason
from dripper.leads import postal
from dripper.settings import Settings
from dripper.states import Channel, Reason, TouchState
from dripper.store import locks
from dripper.store.queries import printrows
from dripper.store.queries.touchrows import Claimed

log = logging.getLogger("dripper.sender")


@dataclass(frozen=True)
class LetterRecord(ChannelRecord):
    """A produced letter, for the business day's print batch."""

    channel: ClassVar[Channel] = Channel.LETTER

    day: str  # the business day whose batch it joins
    touch_id: int
    file: str
    pages: int
    format: str
    address: str
    sort_key: str

    @classmethod
    def store_all(cls, conn: Connection, records: Sequence[Self], now: datetime) -> None:
        by_day: dict[str, list[dict[str, object]]] = defaultdict(list)
        for record in records:
            row = asdict(record)
            by_day[row.pop("day")].append(row)
        for day, rows in by_day.items():
            printrows.add_letters(conn, rows, day, now)


class LetterPart(ChannelPart):
    channel: ClassVar[Channel] = Channel.LETTER
    preview_suffix: ClassVar[str] = ".pdf"

    @classmethod
    def preview(cls, request: PreviewRequest, fmt: str) -> Preview:
        """text: the step's notes (as a call's); html or eml: the letter's page; pdf: that
        page, to be printed (`preview_file`)."""
        composer, view, campaign, step, now = (
            request.composer,
            request.view,
            request.campaign,
            request.step,
            request.now,
        )
        if fmt == "text":
            return Preview(composer.call_notes(view, campaign, step, now))
        page = composer.letter(view, campaign, step, now).html
        return Preview(page, file_suffix=".pdf") if fmt == "pdf" else Preview(page)

    @classmethod
    def preview_file(cls, text: str, templates: Path) -> PreviewFile:
        """The page printed. Raises LettersUnavailable when this machine cannot print."""
        rendered = letters.render_letter(text, templates)
        return PreviewFile(rendered.pdf, f"{rendered.pages} page{'s' if rendered.pages != 1 else ''}")

    @classmethod
    def preview_page(cls, request: PreviewRequest) -> bytes:
        """The letter as printed."""
        return cls.preview_file(cls.preview(request, "pdf").text, request.templates).data

    def __init__(self, context: PartContext):
        super().__init__(context)
        self.libraries = context.libraries
        self._thread: ThreadPoolExecutor | None = None  # renders letter PDFs, made when one is due

    @classmethod
    def output_dir(cls, settings: Settings, used: bool) -> OutputDir | None:
        return OutputDir(settings.letters_dir, "letters", "DRIPPER_LETTERS") if used else None

    @classmethod
    def check_warning(cls) -> str | None:
        """Not an error: letter touches wait until the libraries are installed."""
        missing = letter_libraries.probe()
        return None if missing is None else f"{missing.line}; letter touches wait until then"

    def shutdown(self) -> None:
        if self._thread is not None:  # no thread may outlive the tick: the next one forks
            self._thread.shutdown(wait=True)
            self._thread = None

    def _day(self, instant: datetime) -> str:
        return business_day(instant, self.context.loaded.campaigns.defaults.timezone)

    async def deliver(self, job: Job, ahead: object | None, now: datetime) -> Outcome:
        touch = job.touch
        if not postal.check(job.view).complete:
            return Outcome(TouchState.SKIPPED, Reason.NO_POSTAL_ADDRESS)
        # WeasyPrint is slow to import and to render: it runs off the event loop, so the
        # tick's e-mails keep flowing meanwhile; on one thread, one letter at a time,
        # because WeasyPrint does not promise to be thread-safe.
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="letters")
        loop = asyncio.get_running_loop()
        missing = await loop.run_in_executor(self._thread, self.libraries.missing)
        if missing is not None:
            return self._wait_for_libraries(touch, missing, now)
        composed = self.context.composer.letter(job.view, job.campaign, job.step, now, touch.id)
        rendered, path = await loop.run_in_executor(self._thread, self._render, composed.html, composed.name)
        # Sent when it is in the day's print batch: the recorder adds it in the same commit.
        record = LetterRecord(
            day=self._day(now),
            touch_id=touch.id,
            file=path.name,
            pages=rendered.pages,
            format=composed.format,
            address="\n".join(composed.address),
            sort_key=composed.sort_key,
        )
        return Outcome(TouchState.SENT, kept_reason(touch), message_id=str(path), sent_at=now, record=record)

    @staticmethod
    def _wait_for_libraries(touch: Claimed, missing: letter_libraries.Missing, now: datetime) -> Outcome:
        """This machine cannot print (WeasyPrint's system libraries are missing): the letter
        waits, due again after letter_libraries.WAIT. Not an attempt, never a failure: the
        touch is fine, and it goes out once the libraries are installed."""
        return Outcome(
            TouchState.PLANNED, missing.reason, due_at=now + letter_libraries.WAIT, attempts=touch.attempts - 1
        )

    def _render(self, html: str, name: str) -> tuple[letters.RenderedLetter, Path]:
        settings = self.context.settings
        rendered = letters.render_letter(html, settings.templates_path)
        return rendered, letters.write_atomic(settings.letters_dir / f"{name}.pdf", rendered.pdf)

    def after_tick(self, at: datetime, records: Sequence[ChannelRecord]) -> None:
        """Print batches that gained letters are rebuilt (and handed to a print service)."""
        context = self.context
        config = context.loaded.campaigns.letters
        now = context.clock.now()
        try:
            with locks.held(context.store, "print-batches") as mine:  # one worker at a time
                if mine:
                    batches.build_stale(context.store, context.settings.letters_dir, config, now)
                    if config.adapter != "files":
                        batches.submit_open(
                            context.store, make_adapter(config), context.settings.letters_dir, now, self._day(at)
                        )
        except Exception:
            log.exception("print batches could not be built or handed over; the next tick tries again")


__all__ = ["LetterPart", "LetterRecord"]
