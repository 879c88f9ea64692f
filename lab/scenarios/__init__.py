"""Lab scenarios: the built-in ones (``lab/scenarios/*.yaml``) and files admins write.

:func:`load_scenario` takes a built-in name or a path and returns a validated
:class:`~lab.scenarios.model.Scenario`; any problem is a :class:`ScenarioError` that names the
file, the line and the field (``mixed.yaml:14: faults[2].rate: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from lab.scenarios.model import OutsideCertificate, OutsideCrl, Scenario
from orchestrator.errors import InputError
from orchestrator.yamlsrc import DataPath, YamlDocument, format_path, load_yaml

BUILTIN_DIR = Path(__file__).resolve().parent


class ScenarioError(InputError):
    """A scenario file or name that cannot be used."""

    kind = "scenario"


@dataclass(frozen=True)
class ScenarioSummary:
    name: str
    description: str
    endpoints: int
    rras: int
    ca: int
    faults: int
    path: Path


def builtin_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    """The file of a built-in scenario name, or the given path."""
    candidate = Path(name_or_path)
    if candidate.suffix.lower() in (".yaml", ".yml") or candidate.exists():
        return candidate
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if builtin.exists():
        return builtin
    raise ScenarioError(
        f"no built-in scenario {name_or_path!r} (built in: {', '.join(builtin_names())}) and no such file",
        field="--scenario",
    )


def _path_of(error: ErrorDetails) -> DataPath:
    # Validators of a whole model report at the model; unions add their member name: drop those.
    return tuple(part for part in error["loc"] if isinstance(part, int) or not str(part)[:1].isupper())


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "value_error":
        return str((error.get("ctx") or {}).get("error", error["msg"]))
    return str(error["msg"])


def _explain(exc: ValidationError, document: YamlDocument) -> ScenarioError:
    problems = []
    for error in exc.errors():
        path = _path_of(error)
        problems.append(
            ScenarioError(_message(error), position=document.position(path), field=format_path(path))
        )
    return min(problems, key=lambda problem: (problem.position.line or 0) if problem.position else 0)


def _check_hosts(scenario: Scenario, document: YamlDocument) -> None:
    """Named hosts must exist in the fleet the scenario describes."""
    from lab.estate.build import host_names  # noqa: PLC0415 (the builder imports this package)

    known = {name.lower() for names in host_names(scenario).values() for name in names} | {"intune"}
    for section, entries in (("faults", scenario.faults), ("transport_faults", scenario.transport_faults)):
        for index, entry in enumerate(entries):
            for position, host in enumerate(entry.hosts):
                if host.lower() not in known:
                    path: DataPath = (section, index, "hosts", position)
                    raise ScenarioError(
                        f"no host {host!r} in this fleet (EP-0001…, RRAS-01…, CA-01…)",
                        position=document.position(path),
                        field=format_path(path),
                    )
    for section, index, item in _outside(scenario):
        if item.host.lower() not in known:
            path = (section, index, "host")
            raise ScenarioError(f"no host {item.host!r} in this fleet", position=document.position(path),
                                field=format_path(path))  # fmt: skip


def _outside(scenario: Scenario) -> list[tuple[str, int, OutsideCertificate | OutsideCrl]]:
    items: list[tuple[str, int, OutsideCertificate | OutsideCrl]] = []
    items += [("certificates", index, item) for index, item in enumerate(scenario.certificates)]
    items += [("crls", index, item) for index, item in enumerate(scenario.crls)]
    return items


def _check_files(scenario: Scenario, document: YamlDocument) -> None:
    base = document.path.parent if document.path else Path()
    for section, index, item in _outside(scenario):
        if not (base / item.file).is_file():
            path: DataPath = (section, index, "file")
            raise ScenarioError(f"file {item.file} not found", position=document.position(path),
                                field=format_path(path))  # fmt: skip


def load_scenario(name_or_path: str | Path, *, hosts: int | None = None) -> Scenario:
    """A validated scenario; ``hosts`` overrides the number of endpoints."""
    path = resolve(str(name_or_path))
    document = load_yaml(path, ScenarioError)
    data: Any = document.data
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a mapping with at least 'name'", position=document.position(()))
    try:
        scenario = Scenario.model_validate(data).model_copy(update={"source": path})
    except ValidationError as exc:
        raise _explain(exc, document) from None
    if hosts is not None:
        if hosts < 0:
            raise ScenarioError("must be 0 or more", field="--hosts")
        fleet = scenario.fleet.model_copy(update={"endpoints": hosts})
        scenario = scenario.model_copy(update={"fleet": fleet})
    _check_hosts(scenario, document)
    _check_files(scenario, document)
    return scenario


def summaries() -> list[ScenarioSummary]:
    found = []
    for name in builtin_names():
        scenario = load_scenario(name)
        shape = scenario.fleet
        found.append(
            ScenarioSummary(scenario.name, scenario.description, shape.endpoints, shape.rras, shape.ca,
                            len(scenario.faults), BUILTIN_DIR / f"{name}.yaml")
        )  # fmt: skip
    return found


__all__ = [
    "BUILTIN_DIR",
    "ScenarioError",
    "ScenarioSummary",
    "builtin_names",
    "load_scenario",
    "resolve",
    "summaries",
]
