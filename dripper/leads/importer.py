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

from sqlalchemy import Connection

from dripper.campaign.model import CampaignFile
from dripper.config import Loaded
from dripper.forked import die_with
from dripper.leads import consent, csvfile, postal, suppression
from dripper.leads.csvfile import LeadFile
from dripper.leads.records import LEAD_FIELDS, BadRow, Lead, LeadError, build_lead, duplicate_message
from dripper.leads.suppression import NOTHING, Suppressions
from dripper.planning.planner import EnrollResult, enroll, record_versions
from dripper.store import Store
from dripper.store.queries import staging
from dripper.store.tables import leads as lead_table

Problem = tuple[int, str]  # (physical line, message)


@dataclass
class ImportTotals:
    merged: EnrollResult = field(default_factory=EnrollResult)
    skipped: int = 0  # bad rows and duplicates
    warned: int = 0  # warnings about rows imported (a postal address, an unknown owner)


@dataclass
class _Batch:
    """What the reader hands over for one transaction."""

    leads: list[tuple[int, Lead]] = field(default_factory=list)  # SQLite only: PostgreSQL gets `copy`
    count: int = 0  # leads in the batch
    copy: bytes | None = None  # PostgreSQL: the leads as COPY text
    problems: list[Problem] = field(default_factory=list)  # bad rows
    warnings: list[Problem] = field(default_factory=list)  # about leads that import, unless one is a duplicate
    last_line: int = 0
    skipped: int = 0  # bad rows


@dataclass(frozen=True)
class _Failed:
    """The reader stopped: the file has no usable header (`header`), or something broke."""

    message: str
    header: bool


# --- one row -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """The header of a lead file: its column names (lower case) and how long a cell of each
    may be (the store's column for a lead's own fields, `csvfile.MAX_CELL` for attributes)."""

    names: tuple[str, ...]
    limits: tuple[int, ...]
    shortest: int  # the least of `limits`

    @classmethod
    def of(cls, cells: list[str]) -> Columns:
        """Raises LeadError when the header names no `email` column."""
        names = tuple(c.strip().lower() for c in cells)
        if "email" not in names:
            raise LeadError(f"no 'email' column in the header (found: {', '.join(names)})")
        limits = tuple(_cell_limit(name) for name in names)
        return cls(names, limits, min(limits))


def _cell_limit(name: str) -> int:
    column = lead_table.c.get(name) if name in _LEAD_COLUMNS else None
    length = getattr(column.type, "length", None) if column is not None else None
    return min(length, csvfile.MAX_CELL) if isinstance(length, int) else csvfile.MAX_CELL


_LEAD_COLUMNS = frozenset(("email", *LEAD_FIELDS))


def check_row(
    record: csvfile.Record,
    columns: Columns,
    fmt: csvfile.Format,
    config: CampaignFile,
    suppressed: Suppressions = NOTHING,
) -> Lead | BadRow:
    """The one place a data row is judged: the lead it makes, or the problem located at the
    line the record starts on. In order: could it be parsed, its number of cells, its cells
    as text (bytes, NUL, size), then its fields (`build_lead`), then the do-not-contact
    list (`suppressed`: an import never enrols what it lists) and the campaign's
    `require_consent`. A repeated e-mail is found
    later, in the database (`staging.take_duplicates`)."""
    if record.problem:
        return BadRow(record.line, record.problem)
    if len(record.cells) != len(columns.names):
        spans = ""
        if record.last_line > record.line:
            spans = f" (the row runs to line {record.last_line}: a quote left open?)"
        return BadRow(record.line, f"expected {len(columns.names)} fields, found {len(record.cells)}{spans}")
    problem = csvfile.cell_problem(columns.names, record.cells, fmt, columns.limits, columns.shortest)
    if problem:
        return BadRow(record.line, problem)
    try:
        lead = build_lead(dict(zip(columns.names, record.cells, strict=True)), config)
    except ValueError as exc:
        return BadRow(record.line, str(exc))
    why = suppressed.why(lead.email) or consent.refusal(lead, config)
    return BadRow(record.line, why) if why else lead


def _rows(lead_file: LeadFile, config: CampaignFile, suppressed: Suppressions) -> Iterator[tuple[int, Lead | BadRow]]:
    """(physical line, Lead or BadRow) for every data row; blank lines are passed over.
    Raises LeadError when the file has no usable header."""
    found = csvfile.records(lead_file)
    header = next(found, None)
    if header is None:
        raise LeadError("the file is empty: expected a header line with at least 'email'")
    if header.problem:
        raise LeadError(f"the header cannot be read: {header.problem}")
    numbered = [f"column {i}" for i in range(1, len(header.cells) + 1)]  # its own names may be what is wrong
    problem = csvfile.cell_problem(numbered, header.cells, lead_file.format, [csvfile.MAX_CELL] * len(numbered), 0)
    if problem:
        raise LeadError(f"the header: {problem}")
    columns = Columns.of(header.cells)
    for record in found:
        if not record.problem and not "".join(record.cells).strip():
            continue
        yield record.line, check_row(record, columns, lead_file.format, config, suppressed)


def _batches(
    lead_file: LeadFile, config: CampaignFile, size: int, copy: bool, suppressed: Suppressions
) -> Iterator[_Batch]:
    batch = _Batch()
    for line, item in _rows(lead_file, config, suppressed):
        batch.last_line = line
        if isinstance(item, BadRow):
            batch.skipped += 1
            batch.problems.append((item.line, item.message))
            continue
        warning = postal.import_warning(item)
        if warning:
            batch.warnings.append((line, f"warning: {warning}"))
        if config.senders and item.owner.strip() and not config.book.knows(item.owner):
            batch.warnings.append((line, f"warning: {owner_warning(item.owner)}"))
        batch.leads.append((line, item))
        if len(batch.leads) >= size:
            yield _handed_over(batch, copy)
            batch = _Batch()
    if batch.leads or batch.problems or batch.warnings:
        yield _handed_over(batch, copy)


def owner_warning(owner: str) -> str:
    """A lead imports whatever its owner says: until `senders:` names it, its mail goes out
    from its campaign's default sender (campaign/senders.py)."""
    return f"owner {owner!r} names no sender under senders: (its mail goes out from the campaign's default sender)"


def _handed_over(batch: _Batch, copy: bool) -> _Batch:
    batch.count = len(batch.leads)
    if copy:  # the bytes cross the pipe at once; ten thousand Lead objects would be pickled one by one
        batch.copy = staging.copy_text(batch.leads) if batch.leads else None
        batch.leads = []
    return batch


# --- the reader process -----------------------------------------------------------------
def _read(
    lead_file: LeadFile,
    config: CampaignFile,
    size: int,
    copy: bool,
    suppressed: Suppressions,
    out: Pipe,
    parent: int,
) -> None:
    die_with(parent)
    try:
        for batch in _batches(lead_file, config, size, copy, suppressed):
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

    def __init__(self, lead_file: LeadFile, config: CampaignFile, size: int, copy: bool, suppressed: Suppressions):
        context = multiprocessing.get_context("fork")  # the campaigns model as it is, nothing to re-import
        self._in, out = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_read,
            args=(lead_file, config, size, copy, suppressed, out, os.getpid()),
            name="dripper-import-reader",
            daemon=True,
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
    lead_file: LeadFile,
    at: datetime,
    batch_size: int,
    on_batch: Callable[[int, list[Problem]], None],
    secrets: tuple[str, ...] = (),
) -> ImportTotals:
    """Import `lead_file` (see `csvfile.open_lead_file`) as at instant `at`. After each
    batch is committed, `on_batch` gets the last line it covered and its problems (bad
    rows, duplicates, warnings) in line order.
    Raises LeadError when the file has no usable header.

    The reader is forked before this process opens its connection; the caller must not
    have other threads running (they would not be in the child, and a lock one of them
    held would stay locked there).

    `secrets` (the current one first) are those the do-not-contact list's addresses may be
    hashed under; the list is read once, here, and the reader refuses what it lists."""
    totals = ImportTotals()
    with store.begin() as conn:
        suppressed = suppression.load(conn, secrets)
    reader = _Reader(lead_file, loaded.campaigns, batch_size, copy=store.is_postgres, suppressed=suppressed)
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
                # A duplicate is skipped: what else was said about its row no longer matters.
                duplicated = {line for line, _, _ in result.duplicates}
                warnings = [(line, message) for line, message in batch.warnings if line not in duplicated]
                totals.warned += len(warnings)
                problems = (
                    batch.problems
                    + warnings
                    + [(line, duplicate_message(first, email)) for line, first, email in result.duplicates]
                )
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


__all__ = ["Columns", "ImportTotals", "Problem", "check_row", "import_file"]
