"""The action library that playbook steps call: ``plan()`` and ``apply()`` per action.

Importing this package registers every shipped action (:mod:`orchestrator.actions.registry`).
"""

from orchestrator.actions import endpoint as _endpoint  # noqa: F401 (registers the endpoint actions)
from orchestrator.actions import intune as _intune  # noqa: F401 (registers the Intune actions)
from orchestrator.actions import server as _server  # noqa: F401 (registers the RRAS and CA actions)
from orchestrator.actions.model import (
    TENANT_TARGET,
    Action,
    ActionPlan,
    ApplyResult,
    ArgSpec,
    ArgType,
    Change,
    Connection,
    PlanContext,
    TargetKind,
)
from orchestrator.actions.registry import actions, get_action, register

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
    "actions",
    "get_action",
    "register",
]
