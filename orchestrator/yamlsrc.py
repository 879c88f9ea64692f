"""YAML that remembers where every value came from.

Inventories, playbooks and lab scenarios are YAML written by people, so an error has to name the
line it is about.  :func:`load_yaml` composes the document with PyYAML's safe loader (standard tags
only, no Python objects), builds plain Python data from the node tree itself, and records for every
data path (``("hosts", "ep-001", "groups", 0)``) the 1-based line and column where it starts.

On top of PyYAML it refuses what would otherwise pass silently:

* a mapping key given twice (PyYAML keeps the last value without a word);
* merge keys (``<<``), recursive aliases and custom tags.

Mapping keys are always the text as written: every fleetfix format uses keys as names, and a host
called ``0010`` must not turn into the octal number 8, nor a tag called ``no`` into ``False``.

Every problem is raised as the caller's :class:`~orchestrator.errors.InputError` subclass, so the
inventory loader raises ``InventoryError`` and a playbook loader its own class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import InputError, SourcePosition

DataPath = tuple[str | int, ...]
"""Keys and list indices from the document root to a value."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def format_path(data_path: DataPath) -> str:
    """``("hosts", "ep-001", "groups", 1)`` -> ``hosts.ep-001.groups[1]``, the form used in messages."""
    text = ""
    for part in data_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class YamlDocument:
    """Plain data from one YAML file plus the position of every value in it.

    A mapping entry's position is where its key starts (the value may begin on the next line); a
    list item's position is where the item starts.
    """

    path: Path | None
    data: Any
    positions: Mapping[DataPath, tuple[int, int]] = field(default_factory=dict)

    def line_column(self, data_path: DataPath) -> tuple[int, int]:
        """Line and column of ``data_path``, or of its nearest ancestor that has one.

        Values that are not in the file (a missing required key) thus point at their parent; a
        document with no content at all points at line 1.
        """
        for length in range(len(data_path), -1, -1):
            found = self.positions.get(data_path[:length])
            if found is not None:
                return found
        return (1, 1)

    def position(self, data_path: DataPath) -> SourcePosition:
        """``file:line`` for ``data_path`` (see :meth:`line_column`), for validation errors."""
        line, _ = self.line_column(data_path)
        return SourcePosition(self.path, line)


def load_yaml(path: Path, error: type[InputError]) -> YamlDocument:
    """Read and parse one YAML file; any problem (unreadable, bad syntax, duplicate key) raises ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", position=SourcePosition(path)) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc.reason}", position=SourcePosition(path)) from None
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror}", position=SourcePosition(path)) from None
    return parse_yaml(text, error, path=path)


def parse_yaml(text: str, error: type[InputError], *, path: Path | None = None) -> YamlDocument:
    """Parse YAML text (one document) into a :class:`YamlDocument`; problems raise ``error``."""
    try:
        # The reader checks the characters already in the constructor, so it belongs inside the try.
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        line, column = _line_column_at(text, exc.position)
        raise error(f"invalid YAML: {exc.reason}", position=SourcePosition(path, line, column)) from None
    builder = _Builder(loader, error, path)
    try:
        root = loader.get_single_node()
        data = None if root is None else builder.build(root, ())
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, error, path) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", position=SourcePosition(path)) from None
    finally:
        loader.dispose()
    return YamlDocument(path, data, builder.positions)


def _syntax_error(exc: yaml.MarkedYAMLError, error: type[InputError], path: Path | None) -> InputError:
    problem = exc.problem or "cannot parse"
    if exc.context and exc.context_mark is not None:
        problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
    elif exc.context:
        problem += f" ({exc.context})"
    mark = exc.problem_mark or exc.context_mark
    position = SourcePosition(path, mark.line + 1, mark.column + 1) if mark else SourcePosition(path)
    return error(f"invalid YAML: {problem}", position=position)


def _line_column_at(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _mark_of(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# Aliases let a small file expand into a huge value ("billion laughs"). No fleetfix document comes
# close to this many values, so a document that expands beyond it is refused, not built.
MAX_VALUES = 1_000_000


class _Builder:
    """Turns a composed node tree into plain data, recording positions on the way."""

    def __init__(self, loader: yaml.SafeLoader, error: type[InputError], path: Path | None):
        self._loader = loader
        self._error = error
        self._path = path
        self.positions: dict[DataPath, tuple[int, int]] = {}
        # Nodes on the way from the root to the current node: an alias to one of them is a cycle.
        self._open: set[int] = set()
        self._built = 0

    def build(self, node: Node, data_path: DataPath) -> Any:
        self._built += 1
        if self._built > MAX_VALUES:
            raise self._fail(
                node, data_path, f"document expands to more than {MAX_VALUES:,} values (aliases?)"
            )
        self.positions.setdefault(data_path, _mark_of(node))
        if isinstance(node, ScalarNode):
            # SafeConstructor resolves scalars exactly as yaml.safe_load would (ints, bools, dates).
            return self._loader.construct_object(node, deep=True)
        if id(node) in self._open:
            raise self._fail(node, data_path, "recursive alias: a value contains itself")
        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
                return self._build_mapping(node, data_path)
            if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
                return [self.build(item, (*data_path, index)) for index, item in enumerate(node.value)]
            raise self._fail(node, data_path, f"unsupported YAML tag {node.tag!r}")
        finally:
            self._open.discard(id(node))

    def _build_mapping(self, node: MappingNode, data_path: DataPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._key_text(key_node, data_path)
            key_path = (*data_path, key)
            line, _ = _mark_of(key_node)
            if key in first_seen:
                raise self._fail(
                    key_node, key_path, f"duplicate key {key!r} (first defined at line {first_seen[key]})"
                )
            first_seen[key] = line
            self.positions[key_path] = _mark_of(key_node)
            result[key] = self.build(value_node, key_path)
        return result

    def _key_text(self, key_node: Node, data_path: DataPath) -> str:
        if key_node.tag == _MERGE_TAG:
            raise self._fail(key_node, data_path, "merge keys (<<) are not supported; write the values out")
        if not isinstance(key_node, ScalarNode):
            raise self._fail(key_node, data_path, "a mapping key must be a plain name, not a list or mapping")
        return str(key_node.value)

    def _fail(self, node: Node, data_path: DataPath, message: str) -> InputError:
        line, _ = _mark_of(node)
        return self._error(
            message, position=SourcePosition(self._path, line), field=format_path(data_path) or None
        )


__all__ = ["DataPath", "YamlDocument", "format_path", "load_yaml", "parse_yaml"]
