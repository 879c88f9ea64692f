"""The check catalogue: pure functions from facts to findings.

* :mod:`.model` -- :class:`Severity`, :class:`CheckSpec`, :class:`Finding`
* :mod:`.registry` -- the registry and its ``host_check`` / ``fleet_check`` decorators
* :mod:`.context` -- :class:`CheckOptions` and the per-run :class:`CheckContext`
* :mod:`.run` -- :func:`run_checks`
* one module per domain: :mod:`.pki`, :mod:`.rras`, :mod:`.rrasconfig`, :mod:`.crl`,
  :mod:`.routes`, :mod:`.intune`, :mod:`.profiles`, :mod:`.os`, :mod:`.events`
* helpers: :mod:`.trust` (chains, revocation), :mod:`.certs`, :mod:`.prefixes`,
  :mod:`.errorcodes` (the 20227 code table), :mod:`.ipsec`, :mod:`.tunnels`

Nothing here reads a clock or the network: ``run_checks(fleet, at=...)`` is reproducible.
"""

from orchestrator.checks.catalogue import catalogue
from orchestrator.checks.context import CheckContext, CheckOptions
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import FLEET_HOST, REGISTRY, CheckRegistry, fleet_check, host_check
from orchestrator.checks.routes import INTUNE_HOST
from orchestrator.checks.run import run_checks

__all__ = [
    "FLEET_HOST",
    "INTUNE_HOST",
    "REGISTRY",
    "CheckContext",
    "CheckOptions",
    "CheckRegistry",
    "CheckSpec",
    "Finding",
    "Severity",
    "catalogue",
    "fleet_check",
    "host_check",
    "run_checks",
]
