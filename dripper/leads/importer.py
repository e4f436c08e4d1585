"""Importing a lead file: the CSV is streamed in batches, each merged set-based into the
store in its own transaction (see `planner.enroll` and `store.staging`).

Two processes share the work, so that both cores do it: a forked reader parses and
checks the file (and, for PostgreSQL, writes each batch as COPY text), while this process
merges the batch before it into the database. They are two processes, not two threads:
parsing is Python from end to end and would hold the GIL, and the merging side, which
mostly waits for the database, would wait for it after every answer. Memory stays flat:
a batch at a time crosses the pipe, and the file's e-mails are remembered in a temporary
table, not in Python (duplicates are found there).
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

from sqlalchemy import Connection

from dripper.campaign.model import CampaignFile
from dripper.config import Loaded
from dripper.forked import die_with
from dripper.leads import postal
from dripper.leads.records import BadRow, Lead, LeadError, duplicate_message, read_csv
from dripper.planning.planner import EnrollResult, enroll, record_versions
from dripper.store import Store
from dripper.store.queries import staging

Problem = tuple[int, str]  # (physical line, message)


@dataclass
class ImportTotals:
    merged: EnrollResult = field(default_factory=EnrollResult)
    skipped: int = 0  # bad rows and duplicates
    warned: int = 0  # rows imported with a postal address warning


@dataclass
class _Batch:
    """What the reader hands over for one transaction."""

    leads: list[tuple[int, Lead]] = field(default_factory=list)  # SQLite only: PostgreSQL gets `copy`
    count: int = 0  # leads in the batch
    copy: bytes | None = None  # PostgreSQL: the leads as COPY text
    problems: list[Problem] = field(default_factory=list)
    last_line: int = 0
    skipped: int = 0  # bad rows
    warned: int = 0


@dataclass(frozen=True)
class _Failed:
    """The reader stopped: the file has no usable header (`header`), or something broke."""

    message: str
    header: bool


def count_lines(path: Path) -> int:
    """Data lines, for a progress bar; reading the file once also proves it is UTF-8
    before anything is imported (raises UnicodeDecodeError, OSError)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            decoder.decode(chunk)
            lines += chunk.count(b"\n")
        decoder.decode(b"", final=True)
    return max(0, lines - 1)


def _batches(path: Path, config: CampaignFile, size: int, copy: bool) -> Iterator[_Batch]:
    batch = _Batch()
    for line, item in read_csv(path, config, dedupe=False):
        batch.last_line = line
        if isinstance(item, BadRow):
            batch.skipped += 1
            batch.problems.append((item.line, item.message))
            continue
        warning = postal.import_warning(item)
        if warning:
            batch.warned += 1
            batch.problems.append((line, f"warning: {warning}"))
        batch.leads.append((line, item))
        if len(batch.leads) >= size:
            yield _handed_over(batch, copy)
            batch = _Batch()
    if batch.leads or batch.problems:
        yield _handed_over(batch, copy)


def _handed_over(batch: _Batch, copy: bool) -> _Batch:
    batch.count = len(batch.leads)
    if copy:  # the bytes cross the pipe at once; ten thousand Lead objects would be pickled one by one
        batch.copy = staging.copy_text(batch.leads) if batch.leads else None
        batch.leads = []
    return batch


# --- the reader process -----------------------------------------------------------------
def _read(path: Path, config: CampaignFile, size: int, copy: bool, out: Pipe, parent: int) -> None:
    die_with(parent)
    try:
        for batch in _batches(path, config, size, copy):
            out.send(batch)  # blocks while the importer merges the batch before: one batch ahead at most
        out.send(None)
    except LeadError as exc:
        out.send(_Failed(str(exc), header=True))
    except BaseException:
        out.send(_Failed(traceback.format_exc(), header=False))
    finally:
        out.close()


class _Reader:
    """The batches of a file, parsed and checked in a forked process."""

    def __init__(self, path: Path, config: CampaignFile, size: int, copy: bool):
        context = multiprocessing.get_context("fork")  # the campaigns model as it is, nothing to re-import
        self._in, out = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_read, args=(path, config, size, copy, out, os.getpid()), name="dripper-import-reader", daemon=True
        )
        self._process.start()
        out.close()

    def __iter__(self) -> Iterator[_Batch]:
        while True:
            try:
                item = self._in.recv()
            except EOFError:  # the reader died without a word (killed)
                raise RuntimeError("the import's reader process ended unexpectedly") from None
            if item is None:
                return
            if isinstance(item, _Failed):
                if item.header:
                    raise LeadError(item.message)
                raise RuntimeError(f"reading the file failed:\n{item.message}")
            yield item

    def close(self) -> None:
        self._in.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


def import_file(
    store: Store,
    loaded: Loaded,
    path: Path,
    at: datetime,
    batch_size: int,
    on_batch: Callable[[int, list[Problem]], None],
) -> ImportTotals:
    """Import `path` as at instant `at`. After each batch is committed, `on_batch` gets the
    last line it covered and its problems (bad rows, duplicates, warnings) in line order.
    Raises LeadError when the file has no usable header.

    The reader is forked before this process opens its connection; the caller must not
    have other threads running (they would not be in the child, and a lock one of them
    held would stay locked there)."""
    totals = ImportTotals()
    reader = _Reader(path, loaded.campaigns, batch_size, copy=store.is_postgres)
    try:
        # One connection for the whole file (its temporary tables live there), one
        # transaction per batch: a crash keeps the batches already committed.
        with store.engine.connect() as conn:
            staging.start_import(conn)
            conn.commit()
            for batch in reader:
                result = _merge(conn, loaded, batch, at)
                totals.merged += result
                totals.skipped += batch.skipped + len(result.duplicates)
                totals.warned += batch.warned
                problems = batch.problems + [
                    (line, duplicate_message(first, email)) for line, first, email in result.duplicates
                ]
                on_batch(batch.last_line, sorted(problems))
    finally:
        reader.close()
    return totals


def _merge(conn: Connection, loaded: Loaded, batch: _Batch, at: datetime) -> EnrollResult:
    try:
        result = (
            enroll(conn, loaded.planner, batch.leads, at, across_batches=True, copy=batch.copy)
            if batch.count
            else EnrollResult()
        )
        record_versions(conn, loaded.campaigns, at)
        conn.commit()
        return result
    except BaseException:
        conn.rollback()
        raise


__all__ = ["ImportTotals", "Problem", "count_lines", "import_file"]
