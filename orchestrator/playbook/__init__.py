"""Remediation playbooks: the YAML format, its loader, references, and the catalogue.

* :mod:`.model` -- :class:`Playbook` and its parts (frozen pydantic models of the format)
* :mod:`.loader` -- :func:`load_playbook`: one file, every error ``file:line: field: message``
* :mod:`.refs` -- ``${params.NAME}`` / ``${facts.path}``: :func:`resolve_args`, :func:`evaluate_when`
* :mod:`.params` -- :func:`parse_param_overrides` for ``--param NAME=VALUE``
* :mod:`.catalog` -- :func:`load_playbooks`: shipped playbooks plus the admin's directories

The format is documented in docs/playbooks.md.
"""

from orchestrator.playbook.catalog import PlaybookCatalog, load_playbooks
from orchestrator.playbook.loader import Registries, load_playbook, parse_playbook
from orchestrator.playbook.model import (
    MaxFail,
    Parameter,
    ParamValue,
    Playbook,
    PlaybookSource,
    Risk,
    Rollback,
    Rollout,
    Step,
    Verify,
)
from orchestrator.playbook.params import parse_param_overrides
from orchestrator.playbook.refs import Reference, Scope, evaluate_when, parse_template, resolve_args

__all__ = [
    "MaxFail",
    "ParamValue",
    "Parameter",
    "Playbook",
    "PlaybookCatalog",
    "PlaybookSource",
    "Reference",
    "Registries",
    "Risk",
    "Rollback",
    "Rollout",
    "Scope",
    "Step",
    "Verify",
    "evaluate_when",
    "load_playbook",
    "load_playbooks",
    "parse_param_overrides",
    "parse_playbook",
    "parse_template",
    "resolve_args",
]
