"""CSV that a spreadsheet opens as data, never as formulas (CSV injection).

Every CSV dripper writes (call lists, print manifests, `report --csv`) goes through this
module. A text cell that a spreadsheet would read as a formula, or as the start of one
(Excel, LibreOffice and Google Sheets evaluate `=HYPERLINK(…)`, `=cmd|' /C calc'!A0`,
`@SUM(…)`, `+1+cmd|…`), gets a leading `'`, the OWASP rule: a cell starting with `=`, `+`,
`-`, `@`, tab or carriage return. A line feed is treated alike, and so is any of them
after leading blanks, because some spreadsheets trim those first. Numbers stay numbers:
integers and floats are not text, and text that is only a number (`-3`, `+4930123456`)
cannot call anything. defusedcsv does much the same but leaves tab and carriage return
alone and rewrites `|` inside cells, so this is our own.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

_TRIGGERS = frozenset("=+-@\t\r\n")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def cell(value: Any) -> Any:
    """The value as a cell that cannot run as a formula; non-text values as they are."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] not in _TRIGGERS and not (value[0] == " " and value.lstrip(" ")[:1] in _TRIGGERS):
        return value  # the common case: one character looked at
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]


class Writer:
    """csv.writer with every cell neutralised."""

    def __init__(self, handle: IO[str], **options: Any):
        self._writer = csv.writer(handle, **options)

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow(row(values))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for values in rows:
            self.writerow(values)


class DictWriter:
    """csv.DictWriter with every cell neutralised (the header is ours, written as it is)."""

    def __init__(self, handle: IO[str], fieldnames: Sequence[str], **options: Any):
        self._writer = csv.DictWriter(handle, fieldnames=fieldnames, **options)

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, values: Mapping[str, Any]) -> None:
        self._writer.writerow({k: cell(v) for k, v in values.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for values in rows:
            self.writerow(values)


__all__ = ["DictWriter", "Writer", "cell", "row"]
