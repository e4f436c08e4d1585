"""Importing a lead file: the CSV is streamed in batches, each merged set-based into the
store in its own transaction (see `planner.enroll` and `store.staging`).

Two things keep a large file fast and memory flat: the file's e-mails are remembered in a
temporary table, not in Python (duplicates are found there), and while one batch is being
merged by the database the next one is parsed and checked here, so both cores work.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection

from dripper import postal
from dripper.config import Loaded
from dripper.leads import BadRow, Lead, duplicate_message, read_csv
from dripper.planner import EnrollResult, enroll, record_versions
from dripper.store import Store, staging

Problem = tuple[int, str]  # (physical line, message)


@dataclass
class ImportTotals:
    merged: EnrollResult = field(default_factory=EnrollResult)
    skipped: int = 0  # bad rows and duplicates
    warned: int = 0  # rows imported with a postal address warning


@dataclass
class _Batch:
    leads: list[tuple[int, Lead]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    last_line: int = 0


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


def _batches(path: Path, loaded: Loaded, size: int, totals: ImportTotals) -> Iterator[_Batch]:
    batch = _Batch()
    for line, item in read_csv(path, loaded.campaigns, dedupe=False):
        batch.last_line = line
        if isinstance(item, BadRow):
            totals.skipped += 1
            batch.problems.append((item.line, item.message))
            continue
        warning = postal.import_warning(item)
        if warning:
            totals.warned += 1
            batch.problems.append((line, f"warning: {warning}"))
        batch.leads.append((line, item))
        if len(batch.leads) >= size:
            yield batch
            batch = _Batch()
    if batch.leads or batch.problems:
        yield batch


def import_file(store: Store, loaded: Loaded, path: Path, at: datetime, batch_size: int,
                on_batch: Callable[[int, list[Problem]], None]) -> ImportTotals:
    """Import `path` as at instant `at`. After each batch is committed, `on_batch` gets the
    last line it covered and its problems (bad rows, duplicates, warnings) in line order.
    Raises LeadError when the file has no usable header."""
    totals = ImportTotals()
    # One connection for the whole file (its temporary tables live there), one
    # transaction per batch: a crash keeps the batches already committed.
    with store.engine.connect() as conn, ThreadPoolExecutor(1, thread_name_prefix="merge") as merger:
        staging.start_import(conn)
        conn.commit()
        merging: tuple[_Batch, Future[EnrollResult]] | None = None
        for batch in _batches(path, loaded, batch_size, totals):
            if merging is not None:
                _finish(*merging, totals, on_batch)
            merging = (batch, merger.submit(_merge, conn, loaded, batch.leads, at))
        if merging is not None:
            _finish(*merging, totals, on_batch)
    return totals


def _merge(conn: Connection, loaded: Loaded, leads: list[tuple[int, Lead]], at: datetime) -> EnrollResult:
    try:
        result = enroll(conn, loaded.planner, leads, at, across_batches=True) if leads else EnrollResult()
        record_versions(conn, loaded.campaigns, at)
        conn.commit()
        return result
    except BaseException:
        conn.rollback()
        raise


def _finish(batch: _Batch, merged: Future[EnrollResult], totals: ImportTotals,
            on_batch: Callable[[int, list[Problem]], None]) -> None:
    result = merged.result()
    totals.merged.add(result)
    totals.skipped += len(result.duplicates)
    problems = batch.problems + [(line, duplicate_message(first, email)) for line, first, email in result.duplicates]
    on_batch(batch.last_line, sorted(problems))


__all__ = ["ImportTotals", "Problem", "count_lines", "import_file"]
