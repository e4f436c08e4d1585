"""The sound part of a campaigns.yaml that does not validate, for `check` to look at.

`dripper check` reports everything in one pass: the schema's errors, and then what the
semantic and template checks find in the rest of the file. Those checks need a model,
so the parts the schema rejects are cut out of a copy of the data (a whole step when the
error is inside one: its template is then not checked), and the positions of the list
items after a cut are moved up to match. The model made of what is left is only ever
looked at: the file is refused all the same.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from dripper.campaign import yamlpos
from dripper.errors import Location

M = TypeVar("M")

# Stands in for a sender that does not validate, so the rest can still be checked.
_PLACEHOLDER_SENDER = {"from": "Sender <sender@example.com>", "postal_address": "(sender.postal_address)"}
_SALVAGE_ROUNDS = 10


def _cut_path(loc: tuple[Any, ...], kind: str) -> tuple[Any, ...]:
    """What to leave out of the data for one schema error: the whole step it is in (its
    template is then not checked), else the bad value (its default applies), or for a
    missing key the mapping that lacks it."""
    if len(loc) >= 5 and loc[0] == "campaigns" and loc[2] == "stages":
        return loc[:5]
    return loc[:-1] if kind == "missing" else loc


def _existing(data: Any, path: tuple[Any, ...]) -> tuple[Any, ...]:
    """The longest part of `path` that is in the data (the schema may name a union's
    member, such as `str`, after the value's own path)."""
    node, found = data, 0
    for part in path:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node, found = node[part], found + 1
        else:
            break
    return path[:found]


def _cut(data: dict[str, Any], path: tuple[Any, ...]) -> bool:
    """Leave out the value at `path` (which exists); False when there is nothing left to cut."""
    container: Any = data
    for part in path[:-1]:
        container = container[part]
    last = path[-1]
    if container is data and last in ("sender", "campaigns"):  # required: a stand-in keeps the rest checkable
        replacement: Any = dict(_PLACEHOLDER_SENDER) if last == "sender" else {}
        if container[last] == replacement:
            return False
        container[last] = replacement
    else:
        del container[last]
    return True


def _shift(pos: yamlpos.Positioned, cut: list[tuple[Any, ...]]) -> None:
    """The list items in `cut` are gone: the items after them move up, and so must their
    positions, or a later step would be located at one cut out. One pass over the
    positions, however many items were cut (a hostile file may have thousands)."""
    gone: dict[tuple[Any, ...], list[int]] = {}
    for path in cut:
        if path and isinstance(path[-1], int):
            gone.setdefault(path[:-1], []).append(path[-1])
    if not gone:
        return
    for ordered in gone.values():
        ordered.sort()
    for table in (pos.values, pos.keys):
        moved: dict[yamlpos.Path, Location] = {}
        for path, location in table.items():
            new: list[str | int] = []
            for n, part in enumerate(path):
                indexes = gone.get(path[:n]) if isinstance(part, int) else None
                if indexes is not None and isinstance(part, int):
                    before = bisect.bisect_left(indexes, part)
                    if before < len(indexes) and indexes[before] == part:
                        break  # inside an item cut out
                    part -= before
                new.append(part)
            else:
                moved[tuple(new)] = location
        table.clear()
        table.update(moved)


def salvage(
    pos: yamlpos.Positioned, exc: ValidationError, validate: Callable[[Any], M]
) -> tuple[M, yamlpos.Positioned] | None:
    """The model of the file without the parts the schema rejected, and positions to match:
    what the semantic and template checks then look at, so one run reports everything.
    Never used to run anything: the file is refused all the same."""
    data = copy.deepcopy(pos.data)
    data.setdefault("sender", dict(_PLACEHOLDER_SENDER))
    data.setdefault("campaigns", {})
    kept = yamlpos.Positioned(pos.file, data, dict(pos.values), dict(pos.keys))
    for _ in range(_SALVAGE_ROUNDS):
        found = {_existing(data, _cut_path(tuple(e["loc"]), e["type"])) for e in exc.errors()}
        # An ancestor cut takes its descendants along; in one list, later items go first,
        # so that a cut does not move the items still to cut.
        cuts = [p for p in found if p and not any(p[:n] in found for n in range(1, len(p)))]
        cuts.sort(key=lambda path: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path], reverse=True)
        done = [_cut(data, path) for path in cuts]  # every one: no short cut
        if not any(done):
            return None
        _shift(kept, cuts)
        try:
            return validate(data), kept
        except ValidationError as again:
            exc = again
    return None


__all__ = ["salvage"]
