"""YAML loading that remembers where every key and value came from.

PyYAML's node graph carries a start mark for every node; we turn it into plain
Python data plus a map from each path (tuple of keys/indexes) to its location,
so validation errors can say `FILE:LINE:COL`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from dripper.errors import ConfigError, Location, Problem

Path = tuple[str | int, ...]

try:  # the C loader composes the same nodes, several times faster
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader


@dataclass
class Positioned:
    """Parsed YAML data and where each part of it sits in the file."""

    file: str
    data: Any
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)

    def at(self, path: Path, *, key: bool = False) -> Location:
        """Location of the value (or key) at `path`, or of its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Location(self.file, 1, 1))


def _loc(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def load(text: str, file: str) -> Positioned:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise ConfigError([Problem(Location(file, line, col), f"YAML syntax error: {message}")]) from None
    finally:
        loader.dispose()
    result = Positioned(file=file, data=None)
    if root is None:
        result.data = {}
        return result
    problems: list[Problem] = []
    constructor = yaml.SafeLoader("")

    def walk(node: yaml.Node, path: Path) -> Any:
        result.values[path] = _loc(file, node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(Problem(_loc(file, key_node), "a key must be a plain value"))
                    continue
                key = constructor.construct_object(key_node)
                key = str(key) if key is not None else ""
                if key in out:
                    problems.append(Problem(_loc(file, key_node), f"duplicate key {key!r}"))
                    continue
                result.keys[path + (key,)] = _loc(file, key_node)
                out[key] = walk(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [walk(item, path + (i,)) for i, item in enumerate(node.value)]
        return constructor.construct_object(node)

    result.data = walk(root, ())
    if problems:
        raise ConfigError(problems)
    return result
