"""Simulated Windows state: the components a :class:`lab.state.HostState` carries.

Each module is one piece of a Windows host that probes read and action scripts change, kept as
plain data with the semantics Windows gives it (a route with host bits never reaches the routing
table; RRAS settings take effect when RemoteAccess restarts; ``certutil -crl`` publishes a fresh
CRL).  Components know nothing about WinRM; handlers in :mod:`lab.handlers` print them.
"""
