"""What a shipped script is, as data: id, kind, typed parameters, output schema, and its text.

A script is run by binding values to its parameters (:meth:`ScriptSpec.bind`), which checks names
and types before any network I/O and gives an :class:`Invocation`; the transport sends the
script's constant text and the values as PSRP parameters, so a value is never part of the code.

The text is read from the package (``importlib.resources``: the ``.ps1`` files ship in the wheel)
on first use, and its first line must be exactly ``# fleetfix-script: <id>``.
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
    """The text of a shipped script, checked to carry its own id in the header."""
    resource = resources.files(SCRIPTS_PACKAGE).joinpath(f"{script_id}.ps1")
    if not resource.is_file():
        raise LookupError(f"no shipped script {script_id}.ps1")
    text = resource.read_text(encoding="utf-8")
    found = parse_header(text)
    if found != script_id:
        raise LookupError(
            f"{script_id}.ps1 must start with '# fleetfix-script: {script_id}', found {found!r}"
        )
    return text


def catalog_problems(specs: Mapping[str, ScriptSpec[BaseModel]]) -> list[str]:
    """Mismatches between declared specs and shipped files (empty when the catalog is whole)."""
    shipped = shipped_script_ids()
    problems = [f"{sid}.ps1 has no ScriptSpec" for sid in sorted(shipped - set(specs))]
    problems += [f"{sid} is declared but {sid}.ps1 is not shipped" for sid in sorted(set(specs) - shipped)]
    for sid in sorted(shipped & set(specs)):
        try:
            script_text(sid)
        except LookupError as exc:
            problems.append(str(exc))
    return problems
