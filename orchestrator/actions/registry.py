"""Actions by name: what playbook steps may call.

Each action module registers its singleton with :func:`register`; :func:`get_action` is how the
playbook loader validates a step's ``action`` and the engine finds the implementation.
"""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import TypeVar

from orchestrator.actions.model import Action
from orchestrator.errors import InputError

A = TypeVar("A", bound=Action)

_ACTIONS: dict[str, Action] = {}


def register(action: A) -> A:
    """Add ``action`` under its name; a second action with the same name is a defect."""
    if action.name in _ACTIONS:
        raise ValueError(f"action {action.name!r} is registered twice")
    _ACTIONS[action.name] = action
    return action


def actions() -> MappingProxyType[str, Action]:
    """Every registered action by name (importing :mod:`orchestrator.actions` registers them all)."""
    return MappingProxyType(_ACTIONS)


def get_action(name: str, *, field: str = "action") -> Action:
    """The action called ``name``, or InputError naming the known ones (and the closest)."""
    action = _ACTIONS.get(name)
    if action is not None:
        return action
    known = sorted(_ACTIONS)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(f"unknown action {name!r} (known: {', '.join(known)}){hint}", field=field)


__all__ = ["actions", "get_action", "register"]
