"""Test-only actions and checks, and a valid playbook to break line by line.

The unit tests of the format do not depend on which actions fleetfix ships: they validate against
these few, with the same names and argument specs as the shipped ones they stand for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from textwrap import dedent
from typing import ClassVar

import pytest

from orchestrator.actions.model import (
    Action,
    ActionPlan,
    ApplyResult,
    ArgSpec,
    ArgType,
    Connection,
    PlanContext,
    TargetKind,
)
from orchestrator.checks.model import FrozenJson
from orchestrator.errors import PlaybookError
from orchestrator.playbook import Playbook, Registries, load_playbook


class FakeAction:
    """An action that is only a name, a target kind and argument specs."""

    name: ClassVar[str] = "fake"
    summary: ClassVar[str] = "test-only"
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = ()
    reversible: ClassVar[bool] = False

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        raise NotImplementedError

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        raise NotImplementedError

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        raise NotImplementedError


class SetRoot(FakeAction):
    name = "rras.set-root-certificate"
    arguments: ClassVar[tuple[ArgSpec, ...]] = (ArgSpec("thumbprint", ArgType.STRING, "root thumbprint"),)
    reversible = True


class Restart(FakeAction):
    name = "rras.restart-remoteaccess"
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec("service", ArgType.STRING, "service name", default="RemoteAccess"),
    )


class TenantRoutes(FakeAction):
    name = "intune.fix-vpn-routes"
    target_kind = TargetKind.TENANT


class Sync(FakeAction):
    name = "intune.sync-device"
    arguments: ClassVar[tuple[ArgSpec, ...]] = (ArgSpec("always", ArgType.BOOL, "sync without a finding"),)


class Typed(FakeAction):
    """One argument of every type, one of them required."""

    name = "test.typed"
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec("text", ArgType.STRING, "a string", required=True),
        ArgSpec("count", ArgType.INT, "an int"),
        ArgSpec("flag", ArgType.BOOL, "a bool"),
        ArgSpec("names", ArgType.STRING_LIST, "a list"),
    )


ACTIONS: dict[str, Action] = {
    action.name: action() for action in (SetRoot, Restart, TenantRoutes, Sync, Typed)
}
CHECKS = frozenset({"RRAS-AUTH-01", "RRAS-DRIFT-01", "EP-ROUTE-01", "INT-PROF-02", "CA-CRL-01"})
REGISTRIES = Registries(actions=ACTIONS, check_ids=CHECKS)

# Line numbers matter: the error tests name them.
VALID = """\
id: rras-root-thumbprint
description: Pin the root RRAS accepts.
fixes: [RRAS-AUTH-01, RRAS-DRIFT-01]
target: rras
risk: service-restart
parameters:
  root_thumbprint:
    type: string
    default: ""
    description: SHA-1 thumbprint; empty = the enterprise root
    pattern: "^([0-9A-Fa-f]{40})?$"
  restart:
    type: bool
    default: true
steps:
  - id: set-root
    action: rras.set-root-certificate
    args: {thumbprint: "${params.root_thumbprint}"}
  - id: restart
    action: rras.restart-remoteaccess
    when_changed: [set-root]
    when: "${params.restart}"
verify:
  checks: [RRAS-AUTH-01, RRAS-DRIFT-01]
  timeout_s: 120
  interval_s: 5
rollback:
  on_verify_failure: true
rollout:
  serial: true
  max_fail: "1"
"""
NAME = "rras-root-thumbprint.yaml"


def write(directory: Path, text: str, name: str = NAME) -> Path:
    path = directory / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def load(directory: Path, text: str = VALID, name: str = NAME) -> Playbook:
    return load_playbook(write(directory, text, name), registries=REGISTRIES)


def load_error(directory: Path, text: str, name: str = NAME) -> PlaybookError:
    """The error loading ``text`` gives; every playbook error is one line."""
    with pytest.raises(PlaybookError) as caught:
        load(directory, text, name)
    error = caught.value
    assert "\n" not in str(error), "every playbook error is one line"
    return error


def edited(old: str, new: str, text: str = VALID) -> str:
    """``text`` with ``old`` (which must occur exactly once) replaced by ``new``."""
    assert text.count(old) == 1, old
    return text.replace(old, new)
