"""Print batches: the letters of a business day merged into letters/DAY/batch.pdf with
letters/DAY/manifest.csv, handed to the print adapter, and marked mailed.

A letter touch is `sent` in the same transaction that puts its letter into the day's open
batch; the merged PDF is derived from the database and rebuilt whenever a batch holds
letters it does not show yet (a version counter, so two workers never leave one out).
A crash between the two is repaired by the next tick or `dripper letters build`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from dripper.campaign.model import Letters
from dripper.channels.letters import layout as letters
from dripper.channels.letters.printing import PrintAdapter, PrintJob
from dripper.leads.records import full_name
from dripper.store import Store
from dripper.store.queries import printrows

log = logging.getLogger("dripper.batches")


@dataclass
class BatchReport:
    built: list[str] = field(default_factory=list)
    submitted: int = 0
    mailed: list[str] = field(default_factory=list)


def folder(letters_dir: Path, batch: str) -> Path:
    return letters_dir / batch


def _letter(row: Mapping[str, Any], letters_dir: Path) -> letters.BatchLetter:
    return letters.BatchLetter(
        touch=row["touch_id"],
        email=row["email"],
        name=full_name(row["first_name"], row["last_name"]),
        campaign=row["campaign"],
        step=row["step_id"],
        format=row["format"],
        address=row["address"],
        file=letters_dir / row["file"],
        pages=row["pages"],
    )


def build_stale(store: Store, letters_dir: Path, settings: Letters, now: datetime) -> list[str]:
    """Rebuild every batch whose PDF is behind its letters; returns their ids."""
    with store.begin() as conn:
        stale = printrows.stale(conn)
    built = []
    for batch in stale:
        build(store, letters_dir, settings, batch["id"], now, version=batch["version"])
        built.append(batch["id"])
    return built


def build(
    store: Store, letters_dir: Path, settings: Letters, batch: str, now: datetime, version: int | None = None
) -> letters.BuiltBatch:
    with store.begin() as conn:
        if version is None:
            found = printrows.get(conn, batch)
            if found is None:
                raise KeyError(batch)
            version = found["version"]
        rows = [dict(r) for r in printrows.in_batch(conn, batch)]
    result = letters.build_batch(folder(letters_dir, batch), [_letter(r, letters_dir) for r in rows], settings.duplex)
    with store.begin() as conn:
        printrows.mark_built(conn, batch, version, result.letters, result.pages, now)
    log.info("batch %s: %d letters, %d pages -> %s", batch, result.letters, result.pages, result.pdf)
    return result


def submit_open(store: Store, adapter: PrintAdapter, letters_dir: Path, now: datetime, today: str) -> BatchReport:
    """Hand every letter the adapter has not taken yet to it (for adapters where taking is
    mailing). A batch of an earlier day whose letters were all taken is marked mailed; the
    day's own batch stays open for the rest of its letters."""
    report = BatchReport()
    if not adapter.hands_off:
        return report
    with store.begin() as conn:
        batches = [(b["id"], b["day"]) for b in printrows.open_batches(conn)]
    for batch, day in batches:
        with store.begin() as conn:
            waiting = [dict(r) for r in printrows.unsubmitted(conn, batch)]
        jobs = [
            PrintJob(
                touch=r["touch_id"],
                file=letters_dir / r["file"],
                pages=r["pages"],
                format=r["format"],
                address=r["address"].splitlines(),
                email=r["email"],
                campaign=r["campaign"],
                step=r["step_id"],
            )
            for r in waiting
        ]
        result = adapter.submit(jobs) if jobs else None
        with store.begin() as conn:
            for touch, ref in result.accepted.items() if result else ():
                printrows.set_provider_ref(conn, touch, ref)
            report.submitted += len(result.accepted) if result else 0
            done = result is None or not result.failed
            if done and day < today and printrows.mark_mailed(conn, batch, now, adapter.name):
                report.mailed.append(batch)
    return report


__all__ = ["BatchReport", "build", "build_stale", "folder", "submit_open"]


@dataclass(frozen=True)
class BatchSummary:
    """A print batch as `dripper letters list` shows it."""

    batch: str
    letters: int
    pages: int
    built: bool  # its merged PDF shows every letter it holds
    mailed_at: datetime | None
    mailed_by: str | None
    folder: Path

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "letters": self.letters,
            "pages": self.pages,
            "built": self.built,
            "mailed_at": self.mailed_at.isoformat() if self.mailed_at else None,
            "mailed_by": self.mailed_by,
            "folder": str(self.folder),
        }


def summaries(store: Store, letters_dir: Path) -> list[BatchSummary]:
    """The latest print batches, newest first."""
    with store.begin() as conn:
        found = printrows.listing(conn)
    return [
        BatchSummary(
            batch=b["id"],
            letters=b["letters"],
            pages=b["pages"],
            built=b["built_version"] >= b["version"],
            mailed_at=b["mailed_at"],
            mailed_by=b["mailed_by"],
            folder=folder(letters_dir, b["id"]),
        )
        for b in found
    ]


class MarkOutcome(StrEnum):
    NO_BATCH = "no_batch"
    ALREADY_MAILED = "already_mailed"
    MARKED = "marked"


@dataclass(frozen=True)
class Marked:
    outcome: MarkOutcome
    letters: int = 0
    mailed_at: datetime | None = None  # when it was marked mailed before (ALREADY_MAILED)


def mark_mailed(store: Store, batch: str, at: datetime, by: str) -> Marked:
    """Record that `batch` went to the post at `at`; a batch marked before keeps its time."""
    with store.begin() as conn:
        found = printrows.get(conn, batch)
        if found is None:
            return Marked(MarkOutcome.NO_BATCH)
        if found["mailed_at"] is not None:
            return Marked(MarkOutcome.ALREADY_MAILED, found["letters"], found["mailed_at"])
        printrows.mark_mailed(conn, batch, at, by)
    return Marked(MarkOutcome.MARKED, found["letters"])
