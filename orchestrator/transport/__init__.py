"""Transports: the only code that talks to remote hosts and services.

* :mod:`.winrm` -- PowerShell remoting (pypsrp): one runspace pool per host, shipped scripts only

Each transport translates its libraries' exceptions into :mod:`orchestrator.errors` at the boundary.
Nothing is imported here, so using one transport does not load the others' libraries.
"""
