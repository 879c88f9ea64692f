"""Handlers of the scripts fleetfix ships (``orchestrator/scripts/*.ps1``), one module per family.

Importing this package registers them on :func:`lab.scripts.default_registry`.
"""

from lab.handlers import actions_endpoint, actions_server, ca, diag, endpoint, host, rras

__all__ = ["actions_endpoint", "actions_server", "ca", "diag", "endpoint", "host", "rras"]
