"""Saved plans: what ``fleetfix run --check --save-plan FILE`` writes and ``--plan FILE`` applies.

A plan file is a JSON document an admin can read, attach to a change ticket, and have approved:
per target, each step's exact changes and their digest.  Applying it runs the same playbook on
the same targets with the same parameters, and refuses a target whose fresh plan differs from
the saved one (it drifted since planning: someone fixed it by hand, or broke it differently).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.checks.model import FrozenJson, freeze, thaw
from orchestrator.errors import InputError

PLAN_FORMAT = "fleetfix-plan"
PLAN_VERSION = 1


@dataclass(frozen=True)
class SavedPlan:
    """A loaded plan file: the playbook, its parameters, and each target's planned steps."""

    playbook: str
    params: Mapping[str, FrozenJson]
    created_at: str
    created_by: str
    targets: Mapping[str, Mapping[str, Any]]
    """target name -> its plan (``role``, ``steps`` with ``step``, ``digest``, ``plan``)"""

    def roles(self) -> dict[str, str]:
        return {name: str(plan["role"]) for name, plan in self.targets.items()}


def plan_document(
    *,
    playbook: str,
    params: Mapping[str, FrozenJson],
    selector: str | None,
    created_at: datetime,
    created_by: str,
    targets: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The plan file's JSON (also what ``run --check -o json`` prints)."""
    return {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "playbook": playbook,
        "params": {key: thaw(value) for key, value in params.items()},
        "selector": selector,
        "created_at": created_at.isoformat(),
        "created_by": created_by,
        "changes": sum(int(target.get("changes", 0)) for target in targets),
        "targets": list(targets),
    }


def write_plan(path: Path, document: Mapping[str, Any]) -> None:
    """Write atomically (a temp file renamed), so a half-written plan never exists."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the plan: {exc.strerror}", field="--save-plan") from exc


def _bad(path: Path, field: str, message: str) -> InputError:
    return InputError(f"{path}: {field}: {message}", field="--plan")


def load_plan(path: Path) -> SavedPlan:
    """Read and check a plan file; every problem names the file and the field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the plan: {exc.strerror}", field="--plan") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON plan file: {exc}", field="--plan") from exc
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise _bad(path, "format", f"not a {PLAN_FORMAT} document (make one with run --check --save-plan)")
    if data.get("version") != PLAN_VERSION:
        raise _bad(
            path, "version", f"version {data.get('version')!r} is not supported (expected {PLAN_VERSION})"
        )
    for key, kind in (("playbook", str), ("params", dict), ("targets", list)):
        if not isinstance(data.get(key), kind):
            raise _bad(path, key, f"missing or not a {kind.__name__}")
    targets: dict[str, Mapping[str, Any]] = {}
    for index, target in enumerate(data["targets"]):
        where = f"targets[{index}]"
        if not isinstance(target, dict) or not isinstance(target.get("target"), str):
            raise _bad(path, where, "each target needs a 'target' name")
        if not isinstance(target.get("steps"), list) or not isinstance(target.get("role"), str):
            raise _bad(path, where, "each target needs 'role' and 'steps'")
        if target.get("error"):
            continue  # a target that could not be planned is not applied
        if target["target"].casefold() in {name.casefold() for name in targets}:
            raise _bad(path, where, f"target {target['target']} is listed twice")
        targets[target["target"]] = target
    params = freeze(data["params"])
    assert isinstance(params, Mapping)
    return SavedPlan(
        playbook=data["playbook"],
        params=params,
        created_at=str(data.get("created_at", "")),
        created_by=str(data.get("created_by", "")),
        targets=targets,
    )


__all__ = ["PLAN_FORMAT", "PLAN_VERSION", "SavedPlan", "load_plan", "plan_document", "write_plan"]
