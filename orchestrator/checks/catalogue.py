"""The shipped check catalogue: importing the domain modules registers their checks, in this order."""

from __future__ import annotations

from orchestrator.checks import crl, events, intune, os, pki, profiles, routes, rras, rrasconfig
from orchestrator.checks.model import CheckSpec
from orchestrator.checks.registry import REGISTRY

DOMAIN_MODULES = (pki, rras, rrasconfig, crl, routes, intune, profiles, os, events)


def catalogue() -> tuple[CheckSpec, ...]:
    """Every shipped check's spec, sorted by id."""
    return tuple(sorted(REGISTRY.specs(), key=lambda spec: spec.id))


__all__ = ["DOMAIN_MODULES", "catalogue"]
