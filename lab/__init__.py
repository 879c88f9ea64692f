"""The simulated fleet: WinRM/PSRP hosts that the real pypsrp client talks to over loopback.

Public API (what tests and ``fleetfix lab up`` use):

* :class:`FleetConfig`, :class:`HostConfig`, :class:`FaultSpec`, :class:`Account`, … and
  :func:`numbered_fleet` describe a fleet as data (:mod:`lab.config`);
* :class:`Lab` (background thread) and :class:`LabProcess` (child process) start it and give a
  :class:`LabInfo` with every host's :class:`HostEndpoint` and the CA bundle (:mod:`lab.runtime`);
* :func:`script_handler`, :class:`ScriptCall`, :class:`TerminatingError` and
  :class:`ScriptRegistry` define what the shipped scripts do on a simulated host
  (:mod:`lab.scripts`), against :class:`HostState` (:mod:`lab.state`).

A whole Always On VPN estate (endpoints, RRAS, CA, Intune tenant, CRL server) built from a
scenario, with ground truth, lives in :mod:`lab.estate` (``EstateLab``, ``build_estate``,
``derive_truth``, ``manage``) and :mod:`lab.scenarios` (``load_scenario``); the simulated Windows
state in :mod:`lab.windows`.  ``fleetfix lab`` drives it.

Design notes, the psrpcore shims and the fidelity status are in ``lab/README.md``.
"""

from lab.config import Account, AuthMode, FaultSpec, Flap, FleetConfig, HostConfig, Latency, numbered_fleet
from lab.runtime import Lab, LabProcess
from lab.scripts import ScriptCall, ScriptRegistry, TerminatingError, default_registry, script_handler
from lab.server import HostEndpoint, LabInfo
from lab.state import Change, HostState

__all__ = [
    "Account",
    "AuthMode",
    "Change",
    "FaultSpec",
    "Flap",
    "FleetConfig",
    "HostConfig",
    "HostEndpoint",
    "HostState",
    "Lab",
    "LabInfo",
    "LabProcess",
    "Latency",
    "ScriptCall",
    "ScriptRegistry",
    "TerminatingError",
    "default_registry",
    "numbered_fleet",
    "script_handler",
]
