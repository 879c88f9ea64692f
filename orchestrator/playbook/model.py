"""What a playbook is: frozen pydantic models of the YAML format (docs/playbooks.md).

The models check the *shape* of a file: keys, types, enums, number ranges.  Rules that combine
fields or need the registries (a known action with the right target kind, argument types, step
order, references to parameters, the id matching the file name) are checked by
:mod:`orchestrator.playbook.loader`, which can point at the line of each value; a :class:`Playbook`
is therefore only valid when it came from :func:`~orchestrator.playbook.loader.load_playbook`.

Every model is immutable: mappings are read-only and lists are tuples, so a loaded playbook can be
shared by the engine, the CLI and worker threads without copies.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WrapSerializer,
    field_validator,
)

from orchestrator.actions.model import ArgType
from orchestrator.checks.model import FrozenJson, freeze, thaw
from orchestrator.errors import PlaybookError
from orchestrator.inventory.models import FrozenModel, Role

ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
"""Playbook and step ids: lower-case words joined by single dashes (``rras-root-thumbprint``)."""

PARAM_FIELD = "--param"
"""The field parameter errors name: values come from ``--param NAME=VALUE`` on the command line."""

ParamValue = str | int | bool | tuple[str, ...]
"""A parameter's value: ``string``, ``int``, ``bool`` or ``string_list`` (a tuple: immutable)."""

Id = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
Count = Annotated[int, Field(strict=True, ge=0)]
PositiveCount = Annotated[int, Field(strict=True, ge=1)]


class Risk(StrEnum):
    """What applying the playbook does to people and services, shown before anything runs."""

    SERVICE_RESTART = "service-restart"  # a Windows service restarts: sessions on it drop
    USER_DISRUPTION = "user-disruption"  # the user notices (a tunnel reconnects)
    NONE = "none"


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _as_dict(value: Mapping[str, Any], handler: SerializerFunctionWrapHandler) -> Any:
    """Serialize a read-only mapping as the dict pydantic's schema expects."""
    return handler(dict(value))


_DictSerializer = WrapSerializer(_as_dict)


def _none_is_empty(value: object) -> object:
    """``parameters:`` with nothing under it is YAML null: read it as an empty section."""
    return {} if value is None else value


# --- parameters ------------------------------------------------------------------------------------

_TYPE_WORDS = {
    ArgType.STRING: "a string",
    ArgType.INT: "an integer",
    ArgType.BOOL: "true or false",
    ArgType.STRING_LIST: "a list of strings",
}


def type_words(arg_type: ArgType) -> str:
    """How messages say "a value of this type": ``an integer``, ``a list of strings``."""
    return _TYPE_WORDS[arg_type]


def has_type(value: object, arg_type: ArgType) -> bool:
    """Whether ``value`` (YAML data, lists as tuples) is of ``arg_type``; a bool is never an int."""
    if arg_type is ArgType.STRING:
        return isinstance(value, str)
    if arg_type is ArgType.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if arg_type is ArgType.BOOL:
        return isinstance(value, bool)
    return isinstance(value, tuple | list) and all(isinstance(item, str) for item in value)


class Parameter(FrozenModel):
    """A typed playbook parameter.  No ``default`` means the run must give it (``--param``)."""

    type: ArgType
    default: Any = None
    description: StrictStr = ""
    pattern: StrictStr | None = None
    """A regular expression every string (each item of a ``string_list``) must match in full."""
    min: StrictInt | None = None
    max: StrictInt | None = None
    choices: tuple[Any, ...] | None = None  # item types depend on `type`: the loader checks them

    @field_validator("default", mode="after")
    @classmethod
    def _frozen_default(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @property
    def required(self) -> bool:
        return self.default is None

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None when it is."""
        if not has_type(value, self.type):
            return f"must be {type_words(self.type)}, not {value!r}"
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if self.pattern is not None and isinstance(item, str) and not re.fullmatch(self.pattern, item):
                return f"{item!r} does not match the pattern {self.pattern!r}"
            if self.choices is not None and item not in self.choices:
                listed = ", ".join(repr(choice) for choice in self.choices)
                return f"{item!r} is not one of the choices: {listed}"
        if isinstance(value, int) and not isinstance(value, bool):
            if self.min is not None and value < self.min:
                return f"{value} is less than the minimum {self.min}"
            if self.max is not None and value > self.max:
                return f"{value} is more than the maximum {self.max}"
        return None

    def to_dict(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": self.type.value,
            "required": self.required,
            "default": thaw(self.default),
            "description": self.description,
            "pattern": self.pattern,
            "min": self.min,
            "max": self.max,
            "choices": None if self.choices is None else list(self.choices),
        }


# --- steps -----------------------------------------------------------------------------------------


class Step(FrozenModel):
    """One action with its arguments.  Argument values may hold references (:mod:`.refs`)."""

    id: Id
    action: StrictStr
    args: Annotated[Mapping[str, Any], _DictSerializer] = Field(default_factory=lambda: MappingProxyType({}))
    when_changed: tuple[Id, ...] = ()
    """Run only if one of these earlier steps changed something in this run on this target."""
    when: StrictStr | None = None
    """A reference to a bool (``${params.restart}``): the step runs only when it is true."""

    @field_validator("args", mode="before")
    @classmethod
    def _args_section(cls, value: object) -> object:
        return _none_is_empty(value)

    @field_validator("args", mode="after")
    @classmethod
    def _frozen_args(cls, value: Mapping[str, Any]) -> Mapping[str, FrozenJson]:
        frozen = freeze(value)
        assert isinstance(frozen, Mapping)
        return frozen

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "args": thaw(self.args),
            "when_changed": list(self.when_changed),
            "when": self.when,
        }


# --- verification, rollback, rollout ---------------------------------------------------------------


class Verify(FrozenModel):
    """Which checks must stop reporting on the target after apply, polled until they do."""

    checks: tuple[StrictStr, ...] = Field(min_length=1)
    timeout_s: Count = 120
    interval_s: PositiveCount = 5

    def to_dict(self) -> dict[str, Any]:
        return {"checks": list(self.checks), "timeout_s": self.timeout_s, "interval_s": self.interval_s}


class Rollback(FrozenModel):
    """Whether a failed verification restores the journal's before-values (reversible steps only)."""

    on_verify_failure: StrictBool = False

    def to_dict(self) -> dict[str, Any]:
        return {"on_verify_failure": self.on_verify_failure}


_MAX_FAIL = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<percent>%?)")


@dataclass(frozen=True)
class MaxFail:
    """The fleet-wide failure budget: a count of targets (``3``) or a percentage of them (``10%``)."""

    value: float
    percent: bool = False

    def limit(self, targets: int) -> int:
        """How many of ``targets`` may fail before the run stops (a percentage rounds down)."""
        if self.percent:
            return math.floor(targets * self.value / 100)
        return int(self.value)

    def __str__(self) -> str:
        number = int(self.value) if self.value == int(self.value) else self.value
        return f"{number}%" if self.percent else str(number)


def parse_max_fail(value: object) -> MaxFail:
    """``3``, ``"3"`` or ``"10%"``; anything else (negative, fractional counts, > 100 %) is refused."""
    if isinstance(value, MaxFail):
        return value
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    match = _MAX_FAIL.fullmatch(text)
    if match is None or (not match.group("percent") and "." in match.group("number")):
        raise ValueError(f"must be a count of targets (3) or a percentage of them (10%), not {value!r}")
    number, percent = float(match.group("number")), bool(match.group("percent"))
    if percent and number > 100:
        raise ValueError(f"{text} is more than 100%")
    return MaxFail(number, percent)


MaxFailField = Annotated[MaxFail, PlainValidator(parse_max_fail), PlainSerializer(str)]


class Rollout(FrozenModel):
    """How the run spreads over the targets; defaults the CLI can override.

    ``canary`` targets first (0: no canary wave), then waves of ``wave_size``; ``serial: true`` makes
    every wave a single target (one server at a time); ``max_fail`` is the fleet-wide budget.
    """

    canary: Count = 1
    wave_size: PositiveCount = 10
    serial: StrictBool = False
    max_fail: MaxFailField = MaxFail(0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "wave_size": self.wave_size,
            "serial": self.serial,
            "max_fail": str(self.max_fail),
        }


# --- the playbook ----------------------------------------------------------------------------------


class PlaybookSource(FrozenModel):
    """Where a loaded playbook came from: the package (``shipped``) or an admin's directory."""

    path: Path | None = None
    shipped: bool = False
    replaces: Path | None = None
    """For an admin playbook with the id of a shipped one: the shipped file it replaces."""

    @property
    def label(self) -> str:
        """``shipped`` or the admin file, as ``playbooks list`` shows it."""
        if self.shipped or self.path is None:
            return "shipped" if self.shipped else "<input>"
        return str(self.path)


class PlaybookSpec(FrozenModel):
    """Everything a playbook file says (and nothing else: unknown keys are errors)."""

    id: Id
    description: StrictStr = Field(min_length=1)
    fixes: tuple[StrictStr, ...] = Field(min_length=1)
    target: Role
    risk: Risk
    parameters: Annotated[Mapping[str, Parameter], _DictSerializer] = Field(
        default_factory=lambda: MappingProxyType({})
    )
    tenant_steps: tuple[Step, ...] = ()
    steps: tuple[Step, ...] = ()
    verify: Verify
    rollback: Rollback = Field(default_factory=Rollback)
    rollout: Rollout = Field(default_factory=Rollout)

    @field_validator("parameters", "tenant_steps", "steps", "rollback", "rollout", mode="before")
    @classmethod
    def _empty_section(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return {} if info.field_name in {"parameters", "rollback", "rollout"} else []
        return value

    @field_validator("parameters", mode="after")
    @classmethod
    def _frozen_parameters(cls, value: Mapping[str, Parameter]) -> Mapping[str, Parameter]:
        return _read_only(value)


class Playbook(PlaybookSpec):
    """A loaded, validated playbook and where it came from."""

    source: PlaybookSource = Field(default_factory=PlaybookSource)

    @property
    def all_steps(self) -> tuple[Step, ...]:
        """Tenant steps, then host steps: the order a run meets them."""
        return (*self.tenant_steps, *self.steps)

    def step(self, step_id: str) -> Step:
        for step in self.all_steps:
            if step.id == step_id:
                return step
        raise PlaybookError(f"playbook {self.id!r} has no step {step_id!r}", field="step")

    def resolve_params(self, overrides: Mapping[str, Any] | None = None) -> Mapping[str, FrozenJson]:
        """Every parameter's value for a run: ``overrides`` (``--param``) over the defaults.

        Overrides are checked again here (type, pattern, choices, range), so callers other than
        :func:`~orchestrator.playbook.params.parse_param_overrides` get the same guarantees; a
        parameter without a default that is not overridden is an error.
        """
        given = dict(overrides or {})
        for name in given:
            self.parameter(name)
        values: dict[str, Any] = {}
        for name, parameter in self.parameters.items():
            value = given.get(name, parameter.default)
            if value is None:
                raise PlaybookError(
                    f"parameter {name!r} of playbook {self.id!r} has no default: give {PARAM_FIELD} "
                    f"{name}=VALUE",
                    field=PARAM_FIELD,
                )
            value = tuple(value) if isinstance(value, list) else value
            problem = parameter.problem(value)
            if problem is not None:
                raise PlaybookError(f"parameter {name!r}: {problem}", field=PARAM_FIELD)
            values[name] = value
        frozen = freeze(values)
        assert isinstance(frozen, Mapping)
        return frozen

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``, or a PlaybookError with the closest name."""
        parameter = self.parameters.get(name)
        if parameter is not None:
            return parameter
        known = sorted(self.parameters)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = f"(known: {', '.join(known)})" if known else "(it has no parameters)"
        raise PlaybookError(
            f"unknown parameter {name!r} of playbook {self.id!r} {listing}{hint}", field=PARAM_FIELD
        )

    def summary_dict(self) -> dict[str, Any]:
        """The playbook as ``playbooks list`` shows it."""
        return {
            "id": self.id,
            "target": self.target.value,
            "risk": self.risk.value,
            "fixes": list(self.fixes),
            "source": self.source.label,
            "replaces_shipped": self.source.replaces is not None,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, as ``playbooks show`` prints it (schema in docs/cli-json.md)."""
        return {
            **self.summary_dict(),
            "file": None if self.source.path is None else str(self.source.path),
            "description": self.description,
            "parameters": [parameter.to_dict(name) for name, parameter in self.parameters.items()],
            "tenant_steps": [step.to_dict() for step in self.tenant_steps],
            "steps": [step.to_dict() for step in self.steps],
            "verify": self.verify.to_dict(),
            "rollback": self.rollback.to_dict(),
            "rollout": self.rollout.to_dict(),
        }


__all__ = [
    "ID_PATTERN",
    "PARAM_FIELD",
    "MaxFail",
    "ParamValue",
    "Parameter",
    "Playbook",
    "PlaybookSource",
    "PlaybookSpec",
    "Risk",
    "Rollback",
    "Rollout",
    "Step",
    "Verify",
    "has_type",
    "parse_max_fail",
    "type_words",
]
