"""PowerShell remoting over WinRM (pypsrp 0.9.1): one runspace pool per host, shipped scripts only.

* :mod:`.session` -- :class:`WinRMSession` (the only module that does I/O) and :class:`ScriptResult`
* :mod:`.options` -- pypsrp ``WSMan`` settings from the inventory (auth, TLS, encryption)
* :mod:`.policy` -- timeouts, the per-host deadline, retries and the output cap
* :mod:`.output` -- one JSON document per script, validated against its schema
* :mod:`.translate` -- library exceptions -> :mod:`orchestrator.errors`
"""

from orchestrator.transport.winrm.options import WSManOptions, wsman_options
from orchestrator.transport.winrm.policy import DEFAULT_POLICY, TransportPolicy
from orchestrator.transport.winrm.session import ScriptResult, WinRMSession

__all__ = [
    "DEFAULT_POLICY",
    "ScriptResult",
    "TransportPolicy",
    "WSManOptions",
    "WinRMSession",
    "wsman_options",
]
