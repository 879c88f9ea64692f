"""WS-Management as a simulated Windows host speaks it: envelopes, faults and the shell service.

Nothing in this package touches a socket: :mod:`lab.wsman.envelope` turns request bytes into a
:class:`~lab.wsman.envelope.WSManRequest` and responses into bytes, and
:class:`~lab.wsman.service.HostService` answers requests.  :mod:`lab.server` does the I/O.
"""
