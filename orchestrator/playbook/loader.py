"""Loading one playbook file: YAML with positions -> shape (pydantic) -> rules -> :class:`Playbook`.

Every problem is a :class:`~orchestrator.errors.PlaybookError` of one line,
``file:line: field: message``, where ``field`` is the dotted path of the value
(``steps[1].when_changed[0]``).  When a file has several problems, the one nearest its top is
reported: what a reader meets first.

The rules beyond the shape need to know which actions and checks exist.  They come from
:class:`Registries`: by default the shipped ones (:meth:`Registries.shipped`); tests and tools
may pass their own.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from orchestrator.actions.model import Action, ArgSpec, ArgType, TargetKind
from orchestrator.errors import PlaybookError
from orchestrator.playbook.model import (
    ID_PATTERN,
    Parameter,
    Playbook,
    PlaybookSource,
    PlaybookSpec,
    Step,
    has_type,
    type_words,
)
from orchestrator.playbook.refs import PARAM_NAME_PATTERN, Reference, Scope, parse_template
from orchestrator.yamlsrc import DataPath, YamlDocument, format_path, load_yaml


@dataclass(frozen=True)
class Registries:
    """The actions and check ids a playbook may name."""

    actions: Mapping[str, Action]
    check_ids: Collection[str]

    @classmethod
    def shipped(cls) -> Registries:
        """fleetfix's own actions and checks (importing the packages registers them)."""
        # Imported here: loading a playbook is the only reason most commands import either package.
        from orchestrator.actions import actions  # noqa: PLC0415
        from orchestrator.checks import REGISTRY  # noqa: PLC0415

        return cls(actions=actions(), check_ids=frozenset(spec.id for spec in REGISTRY.specs()))


@dataclass(frozen=True)
class Issue:
    """One broken rule: the data path of the value it is about, and what is wrong."""

    path: DataPath
    message: str


def load_playbook(
    path: Path, *, registries: Registries | None = None, source: PlaybookSource | None = None
) -> Playbook:
    """Read, validate and return the playbook in ``path``; any problem raises PlaybookError."""
    document = load_yaml(path, PlaybookError)
    return parse_playbook(document, registries or Registries.shipped(), source or PlaybookSource(path=path))


def parse_playbook(document: YamlDocument, registries: Registries, source: PlaybookSource) -> Playbook:
    """Validate an already parsed document (``document.path`` names the file in errors)."""
    if document.data is None:
        raise PlaybookError(
            "the file is empty; a playbook needs id, description, fixes, target, risk, steps and verify",
            position=document.position(()),
        )
    try:
        spec = PlaybookSpec.model_validate(document.data)
    except ValidationError as exc:
        raise _earliest(document, (_explain(error) for error in exc.errors())) from None
    stem = document.path.stem if document.path is not None else None
    issues = list(_rules(spec, stem, registries))
    if issues:
        raise _earliest(document, issues)
    fields = {name: getattr(spec, name) for name in PlaybookSpec.model_fields}
    return Playbook.model_validate({**fields, "source": source})


def _earliest(document: YamlDocument, issues: Iterable[Issue]) -> PlaybookError:
    """The issue nearest the top of the file (the first of equals), as a one-line error."""
    first = min(issues, key=lambda issue: document.line_column(issue.path)[0])
    return PlaybookError(
        first.message, position=document.position(first.path), field=format_path(first.path) or None
    )


# --- pydantic's findings as issues -----------------------------------------------------------------


def _explain(error: ErrorDetails) -> Issue:
    # ``[key]`` marks an invalid mapping key; a model-level rule names its field in the context.
    loc = tuple(part for part in error["loc"] if part != "[key]")
    field = (error.get("ctx") or {}).get("field")
    return Issue((*loc, field) if isinstance(field, str) else loc, _message(error))


_PATTERN_MESSAGES = {
    ID_PATTERN: "use lower-case letters and digits in words joined by single dashes (rras-root-thumbprint)",
}

_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "mapping_type": "must be a mapping of keys to values",
    "missing": "is required",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
}


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "enum":
        return f"unknown value {error['input']!r}; expected one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_MESSAGES.get(str(ctx.get("pattern")), f"must match {ctx.get('pattern')}")
        return f"invalid value {error['input']!r}: {hint}"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more, not {error['input']!r}"
    if kind == "value_error":
        return str(ctx["error"])
    return str(error["msg"])


# --- the rules -------------------------------------------------------------------------------------


def _rules(spec: PlaybookSpec, stem: str | None, registries: Registries) -> Iterator[Issue]:
    if stem is not None and spec.id != stem:
        yield Issue(("id",), f"the id {spec.id!r} must equal the file name without extension ({stem!r})")
    yield from _fixes(spec, registries.check_ids)
    for name, parameter in spec.parameters.items():
        yield from _parameter(name, parameter)
    yield from _steps(spec, registries.actions)
    yield from _verify(spec)


def _closest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fixes(spec: PlaybookSpec, check_ids: Collection[str]) -> Iterator[Issue]:
    seen: set[str] = set()
    for index, check_id in enumerate(spec.fixes):
        if check_id in seen:
            yield Issue(("fixes", index), f"{check_id} is listed twice")
        elif check_id not in check_ids:
            hint = _closest(check_id, check_ids)
            yield Issue(("fixes", index), f"unknown check id {check_id!r} (fleetfix checks list){hint}")
        seen.add(check_id)


def _parameter(name: str, parameter: Parameter) -> Iterator[Issue]:
    where = ("parameters", name)
    if not re.fullmatch(PARAM_NAME_PATTERN, name):
        yield Issue(where, f"invalid parameter name {name!r}: lower-case letters, digits and '_'")
    constraints = list(_constraints(parameter, where))
    yield from constraints
    if parameter.default is not None and not constraints:  # a broken pattern cannot judge the default
        problem = parameter.problem(parameter.default)
        if problem is not None:
            yield Issue((*where, "default"), problem)


def _constraints(parameter: Parameter, where: DataPath) -> Iterator[Issue]:
    """pattern, min, max and choices: each only for the types it means something for."""
    kind = parameter.type
    if parameter.pattern is not None:
        if kind not in {ArgType.STRING, ArgType.STRING_LIST}:
            yield Issue((*where, "pattern"), f"a pattern only applies to string parameters, not {kind}")
        else:
            try:
                re.compile(parameter.pattern)
            except re.error as exc:
                yield Issue((*where, "pattern"), f"invalid regular expression: {exc}")
    for bound in ("min", "max"):
        if getattr(parameter, bound) is not None and kind is not ArgType.INT:
            yield Issue((*where, bound), f"{bound} only applies to int parameters, not {kind}")
    if parameter.min is not None and parameter.max is not None and parameter.min > parameter.max:
        yield Issue((*where, "max"), f"max {parameter.max} is less than min {parameter.min}")
    if parameter.choices is not None and kind is ArgType.BOOL:
        yield Issue((*where, "choices"), "choices do not apply to bool parameters")
    elif parameter.choices is not None:
        item_type = ArgType.STRING if kind is ArgType.STRING_LIST else kind
        for index, choice in enumerate(parameter.choices):
            if not has_type(choice, item_type):
                yield Issue((*where, "choices", index), f"a choice must be {type_words(item_type)}")


# --- steps -----------------------------------------------------------------------------------------

_SECTION_KIND = {"tenant_steps": TargetKind.TENANT, "steps": TargetKind.HOST}


def _steps(spec: PlaybookSpec, actions: Mapping[str, Action]) -> Iterator[Issue]:
    if not spec.tenant_steps and not spec.steps:
        yield Issue(("steps",), "a playbook needs at least one step (in steps or tenant_steps)")
    section_of = {step.id: section for section in _SECTION_KIND for step in getattr(spec, section)}
    first_seen: dict[str, DataPath] = {}
    for section, kind in _SECTION_KIND.items():
        steps: tuple[Step, ...] = getattr(spec, section)
        ids = [step.id for step in steps]
        for index, step in enumerate(steps):
            where: DataPath = (section, index)
            if step.id in first_seen:
                yield Issue(
                    (*where, "id"),
                    f"duplicate step id {step.id!r} (also {format_path(first_seen[step.id])})",
                )
            first_seen.setdefault(step.id, where)
            yield from _when_changed(step, where, ids[:index], section_of)
            yield from _when(step, where, spec.parameters)
            yield from _action(step, where, kind, actions, spec.parameters)


def _when_changed(
    step: Step, where: DataPath, earlier: list[str], section_of: Mapping[str, str]
) -> Iterator[Issue]:
    """Each name must be an earlier step of the same section: what ran before, on the same target."""
    section = str(where[0])
    for index, name in enumerate(step.when_changed):
        if name in earlier:
            continue
        if name == step.id:
            problem = "a step cannot wait for itself"
        elif section_of.get(name) == section:
            problem = f"{name!r} is a later step; when_changed names earlier steps"
        elif name in section_of:
            problem = f"{name!r} is in {section_of[name]}; when_changed names earlier steps of {section}"
        else:
            known = ", ".join(earlier) or "none"
            problem = f"unknown step {name!r} (earlier steps: {known}){_closest(name, earlier)}"
        yield Issue((*where, "when_changed", index), problem)


def _when(step: Step, where: DataPath, parameters: Mapping[str, Parameter]) -> Iterator[Issue]:
    if step.when is None:
        return
    path = (*where, "when")
    try:
        template = parse_template(step.when)
    except ValueError as exc:
        yield Issue(path, str(exc))
        return
    reference = template.exact
    if reference is None:
        yield Issue(path, f"must be one reference to a bool, such as ${{params.restart}}, not {step.when!r}")
        return
    if reference.scope is Scope.PARAMS:
        parameter = _referenced(reference, parameters, path)
        if isinstance(parameter, Issue):
            yield parameter
        elif parameter.type is not ArgType.BOOL:
            yield Issue(path, f"{reference} is a {parameter.type} parameter; when needs a bool")


def _referenced(
    reference: Reference, parameters: Mapping[str, Parameter], path: DataPath
) -> Parameter | Issue:
    parameter = parameters.get(reference.name)
    if parameter is not None:
        return parameter
    if not parameters:
        return Issue(path, f"unknown parameter {reference.name!r} in {reference}: the playbook has none")
    known = ", ".join(parameters)
    hint = _closest(reference.name, parameters)
    return Issue(path, f"unknown parameter {reference.name!r} in {reference} (known: {known}){hint}")


def _action(
    step: Step,
    where: DataPath,
    kind: TargetKind,
    actions: Mapping[str, Action],
    parameters: Mapping[str, Parameter],
) -> Iterator[Issue]:
    action = actions.get(step.action)
    if action is None:
        known = ", ".join(sorted(actions)) or "none"
        hint = _closest(step.action, actions)
        yield Issue((*where, "action"), f"unknown action {step.action!r} (known: {known}){hint}")
        return
    if action.target_kind is not kind:
        section = "tenant_steps" if action.target_kind is TargetKind.TENANT else "steps"
        yield Issue(
            (*where, "action"),
            f"{step.action} acts on the {action.target_kind}, so it belongs in {section}, not {where[0]}",
        )
    specs = {spec.name: spec for spec in action.arguments}
    for name, value in step.args.items():
        arg_spec = specs.get(name)
        if arg_spec is None:
            accepted = ", ".join(specs) or "none"
            hint = _closest(name, specs)
            yield Issue(
                (*where, "args", name), f"{step.action} has no argument {name!r} (accepts: {accepted}){hint}"
            )
            continue
        yield from _argument(value, arg_spec, (*where, "args", name), parameters)
    missing = [spec.name for spec in action.arguments if spec.required and spec.name not in step.args]
    if missing:
        path = (*where, "args") if step.args else where
        yield Issue(path, f"{step.action} needs the argument(s) {', '.join(missing)}")


def _argument(
    value: Any, spec: ArgSpec, path: DataPath, parameters: Mapping[str, Parameter]
) -> Iterator[Issue]:
    """A literal must have the argument's type; a reference's type must fit where it is known."""
    if isinstance(value, str):
        yield from _text_argument(value, spec.type, path, parameters)
    elif isinstance(value, tuple) and spec.type is ArgType.STRING_LIST:
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield from _text_argument(item, ArgType.STRING, (*path, index), parameters)
            else:
                yield Issue((*path, index), f"must be a string, not {item!r}")
    elif not has_type(value, spec.type):
        yield Issue(path, f"must be {type_words(spec.type)}, not {_shown(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, tuple):
        return "a list"
    return repr(value)


def _text_argument(
    text: str, expected: ArgType, path: DataPath, parameters: Mapping[str, Parameter]
) -> Iterator[Issue]:
    try:
        template = parse_template(text)
    except ValueError as exc:
        yield Issue(path, str(exc))
        return
    exact = template.exact
    if not template.references and expected is not ArgType.STRING:
        yield Issue(path, f"must be {type_words(expected)}, not {text!r}")
        return
    if exact is None and template.references and expected is not ArgType.STRING:
        yield Issue(path, f"text with references is a string; the argument takes {type_words(expected)}")
        return
    for reference in template.references:
        if reference.scope is not Scope.PARAMS:
            continue  # facts are only known per target, at run time
        parameter = _referenced(reference, parameters, path)
        if isinstance(parameter, Issue):
            yield parameter
        elif reference is exact and parameter.type is not expected:
            yield Issue(
                path,
                f"{reference} is a {parameter.type} parameter; the argument takes {type_words(expected)}",
            )
        elif reference is not exact and parameter.type is ArgType.STRING_LIST:
            yield Issue(
                path, f"{reference} is a list and cannot be embedded in text; make it the whole value"
            )


# --- verify ----------------------------------------------------------------------------------


def _verify(spec: PlaybookSpec) -> Iterator[Issue]:
    seen: set[str] = set()
    for index, check_id in enumerate(spec.verify.checks):
        if check_id in seen:
            yield Issue(("verify", "checks", index), f"{check_id} is listed twice")
        elif check_id not in spec.fixes:
            yield Issue(
                ("verify", "checks", index),
                f"{check_id} is not in fixes; a playbook verifies only what it fixes",
            )
        seen.add(check_id)


__all__ = ["Issue", "Registries", "load_playbook", "parse_playbook"]
