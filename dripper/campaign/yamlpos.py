"""YAML loading that remembers where every key and value came from.

PyYAML's node graph carries a start mark for every node; we turn it into plain
Python data plus a map from each path (tuple of keys/indexes) to its location,
so validation errors can say `FILE:LINE:COL`.

The parse events come from libyaml; the nodes are composed here rather than by
libyaml's composer, because an alias is only visible as an event: composing it
ourselves lets us refuse, at the alias itself, a file whose aliases would expand
without bound (a "billion laughs": nine lines can stand for a billion values) or
that refers to itself, before anything is expanded. Anchors, aliases and merge keys
(`<<: *defaults`) within those bounds work as YAML says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from dripper.errors import ConfigError, Location, Problem

Path = tuple[str | int, ...]

# A real campaigns.yaml has a few thousand values (the shipped one ~1,100) and needs a
# handful of levels; these bounds leave room for far more, and keep the worst file a
# few megabytes and a fraction of a second.
MAX_ALIASED_VALUES = 50_000  # values that aliases and merge keys add, all together
MAX_DEPTH = 64  # nesting, counting what aliases bring in

MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_COLLECTIONS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
events = yaml.events


def _parser(text: str) -> Any:
    """A source of parse events: libyaml's parser, several times faster than PyYAML's own."""
    if getattr(yaml, "__with_libyaml__", False):
        from yaml._yaml import CParser  # only there when PyYAML was built with libyaml

        return CParser(text)
    return yaml.SafeLoader(text)  # pragma: no cover - libyaml missing: the same events, from Python


@dataclass
class Positioned:
    """Parsed YAML data and where each part of it sits in the file."""

    file: str
    data: Any
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # parts that could not be read

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


class _Position(Protocol):
    """A place in the text, as PyYAML and libyaml mark one (0-based)."""

    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...


def _mark(file: str, mark: _Position | None) -> Location:
    return Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file, 1, 1)


def _loc(file: str, node: yaml.Node) -> Location:
    return _mark(file, node.start_mark)


@dataclass(frozen=True)
class _Shape:
    """What a node stands for once its aliases are expanded."""

    values: int  # nodes, itself included
    depth: int


class _Composer:
    """Parse events -> a node graph, refusing alias bombs, cycles and runaway nesting
    with the location of the alias (or node) at fault."""

    def __init__(self, text: str, file: str):
        self.events = _parser(text)
        self.file = file
        self.resolver = yaml.resolver.Resolver()
        self.anchors: dict[str, yaml.Node] = {}
        self.anchored_at: dict[str, Location] = {}
        self.open: set[str] = set()  # anchors of the collections being composed
        self.shapes: dict[int, _Shape] = {}  # id(node) -> its expanded shape (the graph keeps nodes alive)
        self.aliased = 0

    def fail(self, mark: _Position | None, message: str) -> ConfigError:
        return ConfigError([Problem(_mark(self.file, mark), message)])

    def single_node(self) -> yaml.Node | None:
        try:
            self.events.get_event()  # stream start
            node = None
            if not self.events.check_event(events.StreamEndEvent):
                self.events.get_event()  # document start
                node = self.node(0)
                self.events.get_event()  # document end
            if not self.events.check_event(events.StreamEndEvent):
                extra = self.events.get_event()
                raise self.fail(extra.start_mark, "expected one YAML document, found a second one (a line '---'?)")
            return node
        finally:
            self.events.dispose()

    def node(self, depth: int) -> yaml.Node:
        event = self.events.peek_event()
        if depth >= MAX_DEPTH:
            raise self.fail(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(event, events.AliasEvent):
            return self.alias(self.events.get_event(), depth)
        anchor = event.anchor
        if anchor is not None:
            if anchor in self.anchored_at:
                raise self.fail(
                    event.start_mark,
                    f"the anchor &{anchor} is defined twice (first at "
                    f"{self.anchored_at[anchor]}): give each anchor its own name",
                )
            self.anchored_at[anchor] = _mark(self.file, event.start_mark)
        if isinstance(event, events.ScalarEvent):
            node = self.scalar(self.events.get_event())
        elif isinstance(event, events.SequenceStartEvent):
            node = self.sequence(self.events.get_event(), depth)
        else:
            node = self.mapping(self.events.get_event(), depth)
        if anchor is not None:
            self.anchors[anchor] = node
        return node

    def alias(self, event: Any, depth: int) -> yaml.Node:
        name = event.anchor
        if name in self.open:
            raise self.fail(
                event.start_mark,
                f"the alias *{name} is inside the value &{name} names (at "
                f"{self.anchored_at[name]}): a value cannot contain itself",
            )
        if name not in self.anchors:
            raise self.fail(
                event.start_mark, f"the alias *{name} names no anchor: write &{name} on a value above it first"
            )
        node = self.anchors[name]
        shape = self.shapes[id(node)]
        self.aliased += shape.values
        if self.aliased > MAX_ALIASED_VALUES:
            raise self.fail(
                event.start_mark,
                f"the aliases expand to more than {MAX_ALIASED_VALUES:,} values "
                f"by here (*{name} alone stands for {shape.values:,}): aliases of "
                "aliases multiply; write the values out, or use fewer aliases",
            )
        if depth + shape.depth > MAX_DEPTH:
            raise self.fail(event.start_mark, f"*{name} nests the file more than {MAX_DEPTH} levels deep")
        return node

    def scalar(self, event: Any) -> yaml.Node:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        self.shapes[id(node)] = _Shape(1, 1)
        return node

    def sequence(self, start: Any, depth: int) -> yaml.Node:
        tag = (
            start.tag
            if start.tag not in (None, "!")
            else self.resolver.resolve(yaml.SequenceNode, None, start.implicit)
        )
        node = yaml.SequenceNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if start.anchor is not None:
            self.open.add(start.anchor)
        while not self.events.check_event(events.SequenceEndEvent):
            node.value.append(self.node(depth + 1))
        node.end_mark = self.events.get_event().end_mark
        self.open.discard(start.anchor or "")
        self.shapes[id(node)] = self._shape(node.value)
        return node

    def mapping(self, start: Any, depth: int) -> yaml.Node:
        tag = (
            start.tag if start.tag not in (None, "!") else self.resolver.resolve(yaml.MappingNode, None, start.implicit)
        )
        node = yaml.MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if start.anchor is not None:
            self.open.add(start.anchor)
        while not self.events.check_event(events.MappingEndEvent):
            key = self.node(depth + 1)
            node.value.append((key, self.node(depth + 1)))
        node.end_mark = self.events.get_event().end_mark
        self.open.discard(start.anchor or "")
        self.shapes[id(node)] = self._shape([part for pair in node.value for part in pair])
        return node

    def _shape(self, children: list[yaml.Node]) -> _Shape:
        shapes = [self.shapes[id(child)] for child in children]
        return _Shape(1 + sum(s.values for s in shapes), 1 + max((s.depth for s in shapes), default=0))


def _compose(text: str, file: str) -> yaml.Node | None:
    try:
        return _Composer(text, file).single_node()
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([syntax_problem(text, file, exc)]) from None


# --- hints for the classic mistakes ---------------------------------------------------------
# A syntax error stops everything (nothing after it can be read), so its message must say
# what to do. The parser's own words ("mapping values are not allowed in this context")
# stay in, for whoever searches for them; the hint comes after.

_KEY_COLON_VALUE = re.compile(r"^\s*(?:-\s+)?([^\s:#'\"][^:#]*?):[ \t]+(\S.*?)\s*$")
_LOOKS_LIKE_A_KEY = re.compile(r"^\s*(?:-\s+)?[A-Za-z_][\w.\-]*:(?:\s|$)")


def syntax_problem(text: str, file: str, exc: yaml.MarkedYAMLError) -> Problem:
    """The located problem for a YAML syntax error, with a hint when the mistake is a
    classic one: a quote left open (located where it opened, not where YAML gave up),
    a tab, or a value that holds `: ` without quotes."""
    mark = exc.problem_mark or exc.context_mark
    message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    where = _mark(file, mark)
    opened = _unclosed_quote(text, where.line)
    if opened is not None:
        line, column, quote = opened
        return Problem(
            Location(file, line, column),
            f"YAML syntax error: the {quote} quote opened here is not closed on its line, so YAML reads the lines "
            f"below as part of this value (it gave up at line {where.line}, column {where.column}: {message}); "
            f"close the quote at the end of the value",
        )
    lines = text.splitlines()
    source = lines[where.line - 1] if 0 < where.line <= len(lines) else ""
    return Problem(where, f"YAML syntax error: {message}{_hint(source, message)}")


def _hint(source: str, message: str) -> str:
    """What to do about the error on the line `source`."""
    if "\t" in source or "tab" in message:
        return (
            "; this line has a tab character: YAML indents with spaces only, "
            "so replace the tab with spaces (editors have a setting to type spaces for the Tab key)"
        )
    found = _KEY_COLON_VALUE.match(source)
    if found is not None and found.group(2).startswith("{{"):
        return f"; {_PLACEHOLDER_FIRST}: {_quoted(*found.groups())}"
    if "mapping values are not allowed" in message:
        if found is not None:
            return f"; a value that contains ': ' must be in quotes: {_quoted(*found.groups())}"
        return "; a value that contains ': ' must be in quotes"
    return ""


_PLACEHOLDER_FIRST = "a value that starts with a {{ placeholder }} is read by YAML as a mapping: put it in quotes"


def _quoted(key: str, value: str) -> str:
    """The line `key: value` as it should have been written: the value in double quotes."""
    return f'{key.strip()}: "' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# libyaml's scanner when PyYAML has it: the same tokens, and fast on hostile nesting.
_SCANNER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _unclosed_quote(text: str, error_line: int) -> tuple[int, int, str] | None:
    """(line, column, "double"/"single") of a quoted value that runs past the end of its
    line and swallows lines that look like keys, before the line YAML stopped at: a quote
    the writer forgot to close, which YAML only notices lines further down (or at the end
    of the file). The scanner's tokens say where each quoted value starts and ends."""
    found = None
    try:
        for token in yaml.scan(text, Loader=_SCANNER):
            if token.start_mark.line + 1 > error_line:
                break
            if _swallows_keys(text, token):
                found = token.start_mark
    except yaml.MarkedYAMLError as exc:
        # The end of the file inside a quoted value: the scanner names where it started.
        if exc.context == "while scanning a quoted scalar" and exc.context_mark is not None:
            found = exc.context_mark
    if found is None:
        return None
    quote = "double" if text[found.index] == '"' else "single"
    return found.line + 1, found.column + 1, quote


def _swallows_keys(text: str, token: Any) -> bool:
    if not isinstance(token, yaml.ScalarToken) or token.style not in ('"', "'"):
        return False
    if token.start_mark.line == token.end_mark.line:
        return False
    inside = text[token.start_mark.index : token.end_mark.index].splitlines()[1:]
    return any(_LOOKS_LIKE_A_KEY.match(line) for line in inside)


class _Walk:
    """Node graph -> plain data, recording where each value and key sits."""

    def __init__(self, result: Positioned):
        self.result = result
        self.file = result.file
        self.problems: list[Problem] = []
        self.constructor = yaml.SafeLoader("")

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.result.values[path] = _loc(self.file, node)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTIONS:
            # `!!python/object/apply:… [...]`, `!!set`: never constructed, and not read as a plain list
            self.problems.append(
                Problem(
                    _loc(self.file, node), f"the tag {node.tag} is not supported here: write a plain list or mapping"
                )
            )
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key, (key_node, value_node) in self.pairs(node).items():
                self.result.keys[(*path, key)] = _loc(self.file, key_node)
                out[key] = self.value(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # e.g. `!!python/object …` (never constructed) or `!!int abc`
            self.problems.append(
                Problem(
                    _loc(self.file, node),
                    f"cannot read this value as {node.tag}: {getattr(exc, 'problem', None) or exc}",
                )
            )
            return None

    def pairs(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The mapping's keys, merge keys (`<<: *defaults`) applied: keys written in the
        mapping win over merged ones, and an earlier merged mapping over a later one."""
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in self.merge_sources(value_node):
                    for key, pair in self.pairs(source).items():
                        merged.setdefault(key, pair)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                if node.flow_style and isinstance(key_node, yaml.MappingNode):  # `subject: {{ x }}`
                    self.problems.append(Problem(_loc(self.file, node), _PLACEHOLDER_FIRST))
                else:
                    self.problems.append(Problem(_loc(self.file, key_node), "a key must be a plain value"))
                continue
            constructed = self.scalar(key_node)
            key = str(constructed) if constructed is not None else ""
            if key in own:
                self.problems.append(Problem(_loc(self.file, key_node), f"duplicate key {key!r}"))
                continue
            own[key] = (key_node, value_node)
        return {**merged, **own}

    def merge_sources(self, node: yaml.Node) -> list[yaml.MappingNode]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = [item for item in items if isinstance(item, yaml.MappingNode)]
        if len(sources) != len(items):
            self.problems.append(
                Problem(
                    _loc(self.file, node), "`<<:` merges a mapping (such as *defaults) or a list of them into this one"
                )
            )
        return sources


def load_all(text: str, file: str) -> Positioned:
    """The data and its positions, and in `problems` what could not be read (a duplicate
    key, a value of an unsupported tag: left out or None). Raises ConfigError only for a
    syntax error, after which nothing can be read."""
    root = _compose(text, file)
    result = Positioned(file=file, data=None)
    if root is None:
        result.data = {}
        return result
    walk = _Walk(result)
    result.data = walk.value(root, ())
    result.problems = list(dict.fromkeys(walk.problems))  # a value merged or aliased in several places: once
    return result


def load(text: str, file: str) -> Positioned:
    """As `load_all`, raising ConfigError for any problem."""
    result = load_all(text, file)
    if result.problems:
        raise ConfigError(result.problems)
    return result
