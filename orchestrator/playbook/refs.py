"""References in playbook values: ``${params.NAME}`` and ``${facts.dotted.path}``.

A step's argument (or a ``when``) may name a playbook parameter or a value of the target's fresh
facts document instead of spelling it out.  Two forms, on purpose:

* a value that is *exactly* one reference keeps the referenced value's type, so
  ``always: "${params.force}"`` gives the action a bool and ``prefixes: "${params.routes}"`` a list;
* references inside a longer string are interpolated as text (``"CN=${facts.fqdn}"``): strings as
  they are, integers in decimal, bools as ``true``/``false``; a list, mapping or null cannot be
  embedded in text and is an error.

``$${`` writes a literal ``${``; any other ``${`` that is not a well-formed reference is an error at
load time, so a typo never reaches a host as literal text.

Parsing (:func:`parse_template`) is what the loader uses to check references against the
playbook's parameters before anything runs; resolution (:func:`resolve_args`,
:func:`evaluate_when`) is a pure function of the step, the resolved parameters and the facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from orchestrator.checks.model import FrozenJson, freeze
from orchestrator.errors import PlaybookError

if TYPE_CHECKING:
    from orchestrator.playbook.model import Step

PARAM_NAME_PATTERN = r"[a-z][a-z0-9_]*"
"""Parameter names: what ``${params.NAME}`` accepts, so every parameter can be referenced."""

_OPEN = re.compile(r"\$\$\{|\$\{")
_BODY = re.compile(r"(?P<scope>[A-Za-z_]+)\.(?P<path>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\}")
_ESCAPE = "$${"


class ReferenceSyntaxError(ValueError):
    """A ``${`` that is not a well-formed reference; the loader adds file, line and field."""


class Scope(StrEnum):
    PARAMS = "params"
    FACTS = "facts"


@dataclass(frozen=True)
class Reference:
    """One ``${scope.path}``: ``path`` is the parameter name, or the keys down the facts document."""

    scope: Scope
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        """The parameter name (``params``) or the dotted facts path."""
        return ".".join(self.path)

    def __str__(self) -> str:
        return f"${{{self.scope}.{self.name}}}"


@dataclass(frozen=True)
class Template:
    """A string value split into literal text and references, in order."""

    parts: tuple[str | Reference, ...]

    @property
    def exact(self) -> Reference | None:
        """The reference if the value is exactly one reference (it then keeps the value's type)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Reference):
            return self.parts[0]
        return None

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(part for part in self.parts if isinstance(part, Reference))

    def render(self, lookup: Callable[[Reference], FrozenJson]) -> FrozenJson:
        """The value with every reference replaced by what ``lookup`` returns for it."""
        exact = self.exact
        if exact is not None:
            return lookup(exact)
        return "".join(part if isinstance(part, str) else as_text(part, lookup(part)) for part in self.parts)


def parse_template(text: str) -> Template:
    """Split ``text`` into literal text and references; a malformed ``${`` raises ReferenceSyntaxError."""
    parts: list[str | Reference] = []
    literal = ""
    position = 0
    while (opening := _OPEN.search(text, position)) is not None:
        literal += text[position : opening.start()]
        if opening.group() == _ESCAPE:
            literal += "${"
            position = opening.end()
            continue
        reference, position = _reference(text, opening.start())
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(reference)
    literal += text[position:]
    if literal or not parts:
        parts.append(literal)
    return Template(tuple(parts))


def _reference(text: str, start: int) -> tuple[Reference, int]:
    """The reference whose ``${`` is at ``start``, and where the text after it begins."""
    body = _BODY.match(text, start + 2)
    if body is None:
        end = text.find("}", start)
        shown = text[start : end + 1] if end >= 0 else text[start:]
        raise ReferenceSyntaxError(
            f"malformed reference {shown!r}: write ${{params.NAME}} or ${{facts.dotted.path}} "
            "($${ for a literal ${)"
        )
    scope_text, path = body.group("scope"), tuple(body.group("path").split("."))
    if scope_text not in {scope.value for scope in Scope}:
        raise ReferenceSyntaxError(
            f"unknown reference scope {scope_text!r} in ${{{scope_text}.{body.group('path')}}}: "
            "use params or facts"
        )
    scope = Scope(scope_text)
    if scope is Scope.PARAMS and (len(path) != 1 or not re.fullmatch(PARAM_NAME_PATTERN, path[0])):
        raise ReferenceSyntaxError(
            f"malformed parameter reference ${{params.{body.group('path')}}}: a parameter is "
            "${params.NAME}, NAME in lower case, digits and '_'"
        )
    return Reference(scope, path), body.end()


def as_text(reference: Reference, value: FrozenJson) -> str:
    """``value`` as it appears inside a longer string; only scalars can be embedded."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    what = "null" if value is None else "a list" if isinstance(value, tuple) else "a mapping"
    raise PlaybookError(f"{reference} is {what} and cannot be embedded in text; make it the whole value")


# --- resolution ------------------------------------------------------------------------------------


def lookup(reference: Reference, params: Mapping[str, Any], facts: Mapping[str, Any]) -> FrozenJson:
    """The value ``reference`` names in ``params`` or ``facts`` (frozen); PlaybookError if none."""
    if reference.scope is Scope.PARAMS:
        if reference.name not in params:
            raise PlaybookError(f"{reference}: no value for parameter {reference.name!r}")
        return freeze(params[reference.name])
    value: Any = facts
    for depth, key in enumerate(reference.path):
        value = _child(value, key)
        if value is _ABSENT:
            where = ".".join(reference.path[:depth]) or "the top of the facts document"
            raise PlaybookError(f"{reference}: no fact {key!r} under {where}")
    return freeze(value)


_ABSENT: Any = object()


def _child(container: Any, key: str) -> Any:
    """``container[key]`` for a mapping, ``container[int(key)]`` for a list; _ABSENT otherwise."""
    if isinstance(container, Mapping):
        return container.get(key, _ABSENT)
    if isinstance(container, Sequence) and not isinstance(container, str) and key.isdigit():
        index = int(key)
        return container[index] if index < len(container) else _ABSENT
    return _ABSENT


def resolve_value(value: Any, params: Mapping[str, Any], facts: Mapping[str, Any]) -> FrozenJson:
    """One value with its references resolved (lists item by item).

    A reference to nothing, or a list or mapping embedded in text, raises PlaybookError without a
    field; :func:`resolve_args` and :func:`evaluate_when` add the step and argument.
    """
    if isinstance(value, str):
        try:
            template = parse_template(value)
        except ReferenceSyntaxError as exc:
            raise PlaybookError(str(exc)) from None
        return template.render(lambda reference: lookup(reference, params, facts))
    if isinstance(value, tuple | list):
        return tuple(resolve_value(item, params, facts) for item in value)
    return freeze(value)


def resolve_args(step: Step, params: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, FrozenJson]:
    """The step's arguments for one target: every reference replaced (pure; no I/O).

    ``params`` are the run's resolved parameters (:meth:`Playbook.resolve_params`), ``facts`` the
    target's fresh facts document as JSON data.  A reference to a fact that is not there is a
    :class:`~orchestrator.errors.PlaybookError` whose field names the step and the argument
    (``steps.set-root.args.thumbprint``) and whose message names the path.
    """
    resolved: dict[str, FrozenJson] = {}
    for name, value in step.args.items():
        try:
            resolved[name] = resolve_value(value, params, facts)
        except PlaybookError as exc:
            raise PlaybookError(exc.message, field=f"steps.{step.id}.args.{name}") from None
    return resolved


def evaluate_when(step: Step, params: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether the step's ``when`` holds for this target (True when the step has none).

    The loader guarantees ``when`` is exactly one reference; a fact that is not a bool is an error
    rather than "truthy", so ``"false"`` (a string) can never read as yes.
    """
    if step.when is None:
        return True
    field = f"steps.{step.id}.when"
    try:
        value = resolve_value(step.when, params, facts)
    except PlaybookError as exc:
        raise PlaybookError(exc.message, field=field) from None
    if not isinstance(value, bool):
        raise PlaybookError(f"{step.when} is {value!r}, not true or false", field=field)
    return value


__all__ = [
    "PARAM_NAME_PATTERN",
    "Reference",
    "ReferenceSyntaxError",
    "Scope",
    "Template",
    "as_text",
    "evaluate_when",
    "lookup",
    "parse_template",
    "resolve_args",
    "resolve_value",
]
