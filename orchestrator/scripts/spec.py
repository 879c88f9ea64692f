"""What a shipped script is, as data: id, kind, typed parameters, output schema, and its text.

A script is run by binding values to its parameters (:meth:`ScriptSpec.bind`), which checks names
and types before any network I/O and gives an :class:`Invocation`; the transport sends the
script's constant text and the values as PSRP parameters, so a value is never part of the code.

The text is read from the package (``importlib.resources``: the ``.ps1`` files ship in the wheel)
on first use, and its first line must be exactly ``# fleetfix-script: <id>``. Helpers shared by
several scripts live once in ``lib/<name>.ps1`` fragments; a script line that is exactly
``# fleetfix-include: <name>`` (after its ``param()`` block) is replaced by that fragment's text
when the script is read, so what is sent is still one self-contained text.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from orchestrator.errors import InputError

SCRIPT_ID_PATTERN = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?:\.[a-z][a-z0-9]*(?:-[a-z0-9]+)*)+"
SCRIPT_HEADER = re.compile(rf"\A# fleetfix-script: ({SCRIPT_ID_PATTERN})\r?(?:\n|\Z)")
SCRIPTS_PACKAGE = "orchestrator.scripts"
FRAGMENTS_DIR = "lib"
FRAGMENT_NAME_PATTERN = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
FRAGMENT_HEADER = re.compile(rf"\A# fleetfix-fragment: ({FRAGMENT_NAME_PATTERN})\r?(?:\n|\Z)")
INCLUDE_DIRECTIVE = re.compile(rf"# fleetfix-include: ({FRAGMENT_NAME_PATTERN})")
# Anything that looks like a directive must be one: a typo would otherwise stay a comment and the
# script would reach the host without its helpers.
_INCLUDE_LIKE = re.compile(r"\s*#\s*fleetfix-include\b", re.IGNORECASE)
_PARAM_KEYWORD = re.compile(r"param\s*\(", re.IGNORECASE)
_INT32 = (-(2**31), 2**31 - 1)  # pypsrp sends a Python int as <I32>; larger values would wrap
_TRUE = frozenset({"true", "1", "yes", "$true"})
_FALSE = frozenset({"false", "0", "no", "$false"})

Output = TypeVar("Output", bound=BaseModel)
ParamValue = str | int | bool


class ScriptKind(StrEnum):
    """A probe only reads; an action changes the host."""

    PROBE = "probe"
    ACTION = "action"


class ParamType(StrEnum):
    """A parameter's type; the value is the PowerShell type accelerator the script declares."""

    STRING = "string"
    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True)
class ParamSpec:
    """One entry of a script's ``param()`` block."""

    name: str
    type: ParamType
    required: bool = False

    def check(self, value: object) -> ParamValue:
        """``value`` if it has this parameter's type, else InputError."""
        if self.type is ParamType.BOOL and isinstance(value, bool):
            return value
        if self.type is ParamType.INT and isinstance(value, int) and not isinstance(value, bool):
            if not _INT32[0] <= value <= _INT32[1]:
                raise self._error(f"{value} is outside the range of a 32-bit [int]")
            return value
        if self.type is ParamType.STRING and isinstance(value, str):
            return value
        raise self._error(f"expected [{self.type.value}], got {type(value).__name__}")

    def parse(self, text: str) -> ParamValue:
        """The value a command-line ``NAME=TEXT`` gives this parameter."""
        if self.type is ParamType.INT:
            try:
                return self.check(int(text.strip()))
            except ValueError:
                raise self._error(f"expected an integer, got {text!r}") from None
        if self.type is ParamType.BOOL:
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise self._error(f"expected true or false, got {text!r}")
        return text

    def _error(self, message: str) -> InputError:
        return InputError(message, field=f"param {self.name}")


# ParamSpec.check (API values) or ParamSpec.parse (command-line text)
_Converter = Callable[[ParamSpec, Any], ParamValue]


@dataclass(frozen=True)
class ScriptSpec(Generic[Output]):
    """A shipped script: ``output`` is the pydantic model its one JSON document must match."""

    script_id: str
    kind: ScriptKind
    output: type[Output]
    params: tuple[ParamSpec, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(SCRIPT_ID_PATTERN, self.script_id):
            raise ValueError(f"invalid script id {self.script_id!r}")

    @property
    def text(self) -> str:
        """The script as shipped (read once per process)."""
        return script_text(self.script_id)

    def bind(self, **values: object) -> Invocation[Output]:
        """Check ``values`` against the parameters; names match case-insensitively, as in PowerShell."""
        return Invocation(self, self._bound(values.items(), ParamSpec.check))

    def parse_params(self, pairs: Iterable[str]) -> Invocation[Output]:
        """Bind command-line ``NAME=VALUE`` texts (the value may contain ``=``)."""
        items = []
        for pair in pairs:
            name, sep, text = pair.partition("=")
            if not sep or not name.strip():
                raise InputError(f"expected NAME=VALUE, got {pair!r}", field="--param")
            items.append((name.strip(), text))
        return Invocation(self, self._bound(items, ParamSpec.parse))

    def _bound(
        self, items: Iterable[tuple[str, object]], convert: _Converter
    ) -> tuple[tuple[str, ParamValue], ...]:
        by_key = {param.name.casefold(): param for param in self.params}
        bound: dict[str, ParamValue] = {}
        for name, value in items:
            param = by_key.get(name.casefold())
            if param is None:
                raise self._unknown_param(name)
            if param.name in bound:
                raise InputError(f"given twice for {self.script_id}", field=f"param {param.name}")
            bound[param.name] = convert(param, value)
        missing = [param.name for param in self.params if param.required and param.name not in bound]
        if missing:
            raise InputError(f"{self.script_id} needs {', '.join(missing)}", field=f"param {missing[0]}")
        # Declaration order, so the same values always make the same request.
        return tuple((param.name, bound[param.name]) for param in self.params if param.name in bound)

    def _unknown_param(self, name: str) -> InputError:
        known = [param.name for param in self.params]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        accepted = ", ".join(known) if known else "none"
        return InputError(
            f"{self.script_id} has no parameter {name!r} (accepted: {accepted}){hint}", field=f"param {name}"
        )


@dataclass(frozen=True, repr=False)
class Invocation(Generic[Output]):
    """A script with checked parameter values, ready to run on any host."""

    spec: ScriptSpec[Output]
    params: tuple[tuple[str, ParamValue], ...] = ()

    @property
    def script_id(self) -> str:
        return self.spec.script_id

    def __repr__(self) -> str:
        # Names only: a value may be a megabyte long, and reprs end up in logs.
        return f"Invocation({self.script_id}, params={[name for name, _ in self.params]})"


def parse_header(text: str) -> str | None:
    """The id in the first line of a script, or None when that line is not exactly the header."""
    match = SCRIPT_HEADER.match(text)
    return match.group(1) if match else None


def shipped_script_ids() -> frozenset[str]:
    """The ids of every ``.ps1`` file in the package (the file name without ``.ps1``)."""
    files = resources.files(SCRIPTS_PACKAGE).iterdir()
    return frozenset(entry.name.removesuffix(".ps1") for entry in files if entry.name.endswith(".ps1"))


@functools.cache
def script_text(script_id: str) -> str:
    """The text of a shipped script as it is sent: its id checked in the header, its includes filled in."""
    text = _read_script(script_id)
    found = parse_header(text)
    if found != script_id:
        raise LookupError(
            f"{script_id}.ps1 must start with '# fleetfix-script: {script_id}', found {found!r}"
        )
    return assemble_script(script_id, text, _shipped_fragments())


def _read_script(script_id: str) -> str:
    resource = resources.files(SCRIPTS_PACKAGE).joinpath(f"{script_id}.ps1")
    if not resource.is_file():
        raise LookupError(f"no shipped script {script_id}.ps1")
    return resource.read_text(encoding="utf-8")


def assemble_script(script_id: str, text: str, fragments: Mapping[str, str]) -> str:
    """``text`` with each ``# fleetfix-include: <name>`` line replaced by the fragment ``name``.

    ``fragments`` maps a name to the fragment file's text. An include must stand after the
    ``param()`` block (PowerShell takes ``param()`` only as the first statement), name a fragment
    once, and name one that exists; a fragment must carry its header and include nothing (one
    level, so there is no order to resolve and no cycle). Anything else is a LookupError naming
    the line.
    """
    param_end = _param_block_end(text)
    parts: list[str] = []
    included: set[str] = set()
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        line_start, offset = offset, offset + len(line)
        if not _INCLUDE_LIKE.match(line):
            parts.append(line)
            continue
        where = f"{script_id}.ps1 line {number}"
        name = _include_name(where, line)
        if param_end is None:
            raise LookupError(f"{where}: an include needs a param() block as the script's first statement")
        if line_start < param_end:
            raise LookupError(f"{where}: '# fleetfix-include: {name}' must come after the param() block")
        if name in included:
            raise LookupError(f"{where}: {name} is included twice")
        if name not in fragments:
            raise LookupError(f"{where}: {_unknown_fragment(name, fragments)}")
        included.add(name)
        try:
            body = check_fragment(name, fragments[name])
        except LookupError as exc:
            raise LookupError(f"{where}: {exc}") from None
        parts.append(body if body.endswith("\n") else body + _line_end(line))
    return "".join(parts)


def check_fragment(name: str, text: str) -> str:
    """``text`` when it is a well-formed fragment ``name``: its own header, no include in it."""
    found = FRAGMENT_HEADER.match(text)
    if found is None or found.group(1) != name:
        shown = found.group(1) if found else None
        raise LookupError(
            f"{FRAGMENTS_DIR}/{name}.ps1 must start with '# fleetfix-fragment: {name}', found {shown!r}"
        )
    for number, line in enumerate(text.splitlines(), start=1):
        if _INCLUDE_LIKE.match(line):
            raise LookupError(
                f"{FRAGMENTS_DIR}/{name}.ps1 line {number}: a fragment cannot include another "
                "(one level only); include both from the script"
            )
    return text


def shipped_fragment_names() -> frozenset[str]:
    """The names of every fragment in the package's ``lib`` folder (file name without ``.ps1``)."""
    return frozenset(_shipped_fragments())


@functools.cache
def _shipped_fragments() -> Mapping[str, str]:
    folder = resources.files(SCRIPTS_PACKAGE).joinpath(FRAGMENTS_DIR)
    if not folder.is_dir():
        return {}
    return {
        entry.name.removesuffix(".ps1"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".ps1") and entry.is_file()
    }


def _include_name(where: str, line: str) -> str:
    match = INCLUDE_DIRECTIVE.fullmatch(line.rstrip("\r\n"))
    if match is None:
        raise LookupError(
            f"{where}: {line.strip()!r} is not an include; write '# fleetfix-include: <name>' "
            "alone on its line, at its start"
        )
    return match.group(1)


def _unknown_fragment(name: str, fragments: Mapping[str, str]) -> str:
    close = difflib.get_close_matches(name, list(fragments), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(fragments)) or "none"
    return f"unknown include {name!r}: no {FRAGMENTS_DIR}/{name}.ps1 (shipped: {known}){hint}"


def _line_end(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def _param_block_end(text: str) -> int | None:
    """Offset just past the script's ``param(...)``, or None when it is not the first statement.

    Only what may stand before ``param()`` is read: comments, ``<# help #>`` and attributes such
    as ``[CmdletBinding()]``; then the block's parentheses are matched, skipping quoted text and
    comments. A coarse reader, enough to place includes; the contract tests parse the result.
    """
    index = 0
    while True:
        index = _skip_space_and_comments(text, index)
        if text.startswith("[", index):
            end = _balanced_end(text, index, "[", "]")
            if end is None:
                return None
            index = end
            continue
        keyword = _PARAM_KEYWORD.match(text, index)
        return _balanced_end(text, keyword.end() - 1, "(", ")") if keyword else None


def _skip_space_and_comments(text: str, index: int) -> int:
    while index < len(text):
        if text[index].isspace():
            index += 1
        elif text.startswith("<#", index):
            close = text.find("#>", index + 2)
            index = len(text) if close < 0 else close + 2
        elif text[index] == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline + 1
        else:
            break
    return index


def _balanced_end(text: str, index: int, opening: str, closing: str) -> int | None:
    """Offset just past the ``closing`` that matches the ``opening`` at ``index``; None if unmatched."""
    depth = 0
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = _string_end(text, index)
            continue
        if char == "#" or text.startswith("<#", index):
            index = _skip_space_and_comments(text, index)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def _string_end(text: str, index: int) -> int:
    """Offset just past the quoted text starting at ``index`` ('' and `" escapes; a doubled quote
    reads as two strings, which ends at the same place)."""
    quote = text[index]
    index += 1
    while index < len(text):
        if quote == '"' and text[index] == "`":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return index


def catalog_problems(specs: Mapping[str, ScriptSpec[BaseModel]]) -> list[str]:
    """Mismatches between declared specs and shipped files (empty when the catalog is whole).

    Covers the fragments too: a malformed one, and one no script includes (dead code on every host).
    """
    shipped = shipped_script_ids()
    problems = [f"{sid}.ps1 has no ScriptSpec" for sid in sorted(shipped - set(specs))]
    problems += [f"{sid} is declared but {sid}.ps1 is not shipped" for sid in sorted(set(specs) - shipped)]
    for sid in sorted(shipped & set(specs)):
        try:
            script_text(sid)
        except LookupError as exc:
            problems.append(str(exc))
    included = {name for sid in shipped for name in _included_names(_read_script(sid))}
    for name, text in sorted(_shipped_fragments().items()):
        try:
            check_fragment(name, text)
        except LookupError as exc:
            problems.append(str(exc))
            continue
        if name not in included:
            problems.append(f"{FRAGMENTS_DIR}/{name}.ps1 is included by no script")
    return problems


def _included_names(text: str) -> set[str]:
    """The fragments named by a script's well-formed include lines (script_text reports the others)."""
    lines = (INCLUDE_DIRECTIVE.fullmatch(line.rstrip("\r\n")) for line in text.splitlines())
    return {match.group(1) for match in lines if match}
