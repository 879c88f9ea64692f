"""The simulated Intune tenant: Entra ID and Microsoft Graph over HTTPS on loopback.

Real msal and httpx code talks to it as to ``login.microsoftonline.com`` and
``graph.microsoft.com``.  Public API:

* :class:`TenantConfig` and its parts (:class:`AppRegistration`, :class:`Device`,
  :class:`NativeVpnProfile`, :class:`CustomVpnProfile`, :class:`Limits`, :class:`Faults`) and
  :func:`numbered_devices` describe a tenant as data (:mod:`lab.graph.config`);
* :class:`TenantLab` (thread) and :class:`TenantProcess` (child process) serve it and give a
  :class:`TenantInfo` and a :class:`TenantControl` (:mod:`lab.graph.runtime`);
* :class:`DeviceSide` is how the tenant reaches a device's delivered VPN profiles;
  :class:`InTenantDevice` is the default (:mod:`lab.graph.devices`);
* :func:`write_app_certificate` makes an app registration's certificate (PEM and PFX).

Design notes are in ``lab/graph/README.md``.
"""

from lab.graph.appcert import AppCertificate, write_app_certificate
from lab.graph.config import (
    ALL_DEVICES,
    ALL_ROLES,
    AppRegistration,
    BucketLimits,
    CustomVpnProfile,
    Device,
    ErrorBurst,
    Faults,
    Limits,
    NativeVpnProfile,
    Route,
    Server,
    TenantConfig,
    numbered_devices,
)
from lab.graph.devices import DeliveredProfile, DeviceSide, InTenantDevice, loses_profile_on_update
from lab.graph.runtime import TenantControl, TenantLab, TenantProcess
from lab.graph.server import TenantInfo
from lab.graph.state import TenantState

__all__ = [
    "ALL_DEVICES",
    "ALL_ROLES",
    "AppCertificate",
    "AppRegistration",
    "BucketLimits",
    "CustomVpnProfile",
    "DeliveredProfile",
    "Device",
    "DeviceSide",
    "ErrorBurst",
    "Faults",
    "InTenantDevice",
    "Limits",
    "NativeVpnProfile",
    "Route",
    "Server",
    "TenantConfig",
    "TenantControl",
    "TenantInfo",
    "TenantLab",
    "TenantProcess",
    "TenantState",
    "loses_profile_on_update",
    "numbered_devices",
    "write_app_certificate",
]
