"""The action library's contract: ``plan()`` from facts, ``apply()`` on a live connection.

A playbook step names an action and gives it arguments.  The engine then, for one target (a host,
or the Intune tenant):

1. collects fresh facts and runs the playbook's checks on them (:class:`PlanContext`);
2. calls :meth:`Action.plan`: pure, no I/O, the *exact* change as a list of :class:`Change`
   (empty: nothing to do) plus the concrete arguments ``apply`` will use;
3. claims the step in the journal, then calls :meth:`Action.apply` with the plan: the action reads
   the current state on the host first (its script does, in the same PowerShell call), does
   nothing when the state is already right, and returns before/after for the journal;
4. on a failed verification (or an explicit rollback) calls :meth:`Action.rollback` with the
   ``before`` the journal captured, for actions that are reversible.

Everything here is a frozen value, JSON-shaped, so plans can be saved to a file (``--check``),
stored, compared (drift: :meth:`ActionPlan.digest`) and sent through Celery.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from orchestrator.checks.model import Finding, FrozenJson, freeze, thaw
from orchestrator.facts.fleet import FleetFacts

if TYPE_CHECKING:  # the live edges; the model itself imports no transport
    from orchestrator.facts.ca import CaFacts
    from orchestrator.facts.endpoint import EndpointFacts
    from orchestrator.facts.rras import RrasFacts
    from orchestrator.facts.tenant import TenantFacts
    from orchestrator.inventory.models import Host
    from orchestrator.scripts.spec import Invocation
    from orchestrator.transport.graph.intune import IntuneClient

TENANT_TARGET = "intune"
"""The target name of tenant steps: the pseudo-host the sweep files Intune findings under."""


class TargetKind(StrEnum):
    """What an action changes: a host over WinRM, or the tenant over Graph."""

    HOST = "host"
    TENANT = "tenant"


class ArgType(StrEnum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    STRING_LIST = "string_list"


@dataclass(frozen=True)
class ArgSpec:
    """One argument an action accepts from a playbook step."""

    name: str
    type: ArgType
    description: str
    required: bool = False
    default: FrozenJson = None


@dataclass(frozen=True)
class Change:
    """One exact difference: which setting (``field``), what it is now, what it will be.

    ``field`` reads like the Windows or Graph object it names, e.g.
    ``VpnAuthProtocol.RootCertificateNameToAccept`` or ``VpnConnection[Contoso Device Tunnel].Routes``.
    """

    field: str
    before: FrozenJson
    after: FrozenJson

    def __post_init__(self) -> None:
        object.__setattr__(self, "before", freeze(self.before))
        object.__setattr__(self, "after", freeze(self.after))

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": thaw(self.before), "after": thaw(self.after)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(field=str(data["field"]), before=data.get("before"), after=data.get("after"))


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, FrozenJson]:
    frozen = freeze(dict(value))
    assert isinstance(frozen, Mapping)
    return frozen


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value`` (sorted keys, no spaces): what digests hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class ActionPlan:
    """What one step would do to one target: the concrete arguments and the exact changes.

    An empty ``changes`` means the target is already right; ``apply`` is then not called.
    """

    action: str
    target: str
    arguments: Mapping[str, FrozenJson] = field(default_factory=lambda: MappingProxyType({}))
    changes: tuple[Change, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", _frozen_mapping(self.arguments))
        object.__setattr__(self, "changes", tuple(self.changes))

    @property
    def noop(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "arguments": thaw(self.arguments),
            "changes": [change.to_dict() for change in self.changes],
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionPlan:
        return cls(
            action=str(data["action"]),
            target=str(data["target"]),
            arguments=dict(data.get("arguments") or {}),
            changes=tuple(Change.from_dict(item) for item in data.get("changes") or ()),
            note=str(data.get("note") or ""),
        )

    def digest(self) -> str:
        """SHA-256 over action, target, arguments and changes (not the note): a saved plan whose
        digest differs from a fresh plan's means the target drifted since planning."""
        body = self.to_dict()
        body.pop("note")
        return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` (or ``rollback``) did: whether anything changed, and the state before and after.

    ``before`` is what :meth:`Action.rollback` gets back from the journal, so it must hold every
    value needed to restore the prior state (a thumbprint, a route list), not a description.
    """

    changed: bool
    before: Mapping[str, FrozenJson] = field(default_factory=lambda: MappingProxyType({}))
    after: Mapping[str, FrozenJson] = field(default_factory=lambda: MappingProxyType({}))
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "before", _frozen_mapping(self.before))
        object.__setattr__(self, "after", _frozen_mapping(self.after))

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "before": thaw(self.before),
            "after": thaw(self.after),
            "message": self.message,
        }


@dataclass(frozen=True)
class PlanContext:
    """Everything ``plan`` may look at, all fresh and all data.

    ``facts`` is the target's own document (``TenantFacts`` for tenant steps); ``fleet`` the fleet
    as last known with this target's fresh facts in it (cross-host knowledge: the enterprise root,
    a CA certificate's DER); ``findings`` the fresh findings on this target of the checks the
    playbook fixes; ``host`` the inventory entry (None for the tenant); ``params`` the playbook's
    resolved parameters; ``prior`` the journal's record of earlier steps of this run on this target
    (``step id -> ApplyResult``), for steps that only act after another changed something.
    """

    target: str
    facts: EndpointFacts | RrasFacts | CaFacts | TenantFacts
    fleet: FleetFacts
    findings: tuple[Finding, ...]
    at: datetime
    host: Host | None = None
    params: Mapping[str, FrozenJson] = field(default_factory=lambda: MappingProxyType({}))
    prior: Mapping[str, ApplyResult] = field(default_factory=lambda: MappingProxyType({}))

    def findings_of(self, *check_ids: str) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.check_id in check_ids)


class Connection(Protocol):
    """What ``apply`` and ``rollback`` talk to for one target.

    ``run`` executes a shipped script over the target's WinRM session (opened on first use) and
    returns the validated output model; ``intune`` is the tenant's Graph client.  Both raise
    :class:`~orchestrator.errors.TransportError` subclasses; ``intune`` raises ``ConfigError`` when
    no tenant is configured.
    """

    @property
    def target(self) -> str: ...

    @property
    def host(self) -> Host | None: ...

    def run(self, invocation: Invocation[Any], /) -> Any: ...

    @property
    def intune(self) -> IntuneClient: ...

    @property
    def now(self) -> datetime: ...


@runtime_checkable
class Action(Protocol):
    """One kind of change.  Implementations are stateless singletons registered by name."""

    name: ClassVar[str]
    summary: ClassVar[str]
    target_kind: ClassVar[TargetKind]
    arguments: ClassVar[tuple[ArgSpec, ...]]
    reversible: ClassVar[bool]

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        """The exact change from ``ctx`` (fresh facts), without any side effect."""
        ...

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        """Make the planned change: read the current state first, do nothing if already right."""
        ...

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Restore ``before`` (what ``apply`` returned as ``before``); only when ``reversible``."""
        ...


__all__ = [
    "TENANT_TARGET",
    "Action",
    "ActionPlan",
    "ApplyResult",
    "ArgSpec",
    "ArgType",
    "Change",
    "Connection",
    "PlanContext",
    "TargetKind",
    "canonical_json",
]
