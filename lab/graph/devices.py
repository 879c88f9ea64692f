"""What a managed device has received from Intune: the device side of the simulated tenant.

The tenant talks to devices only through :class:`DeviceSide`, so anything that models a Windows
host can stand behind an Intune device: :class:`InTenantDevice` is the default, and a simulated
WinRM host's state can implement the same four members, so one object is seen through WinRM and
through Graph alike.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

KB5008353_FIXED = (22000, 469)
"""Windows 11 21H2 builds below 22000.469 lose an updated VPN profile until the next sync."""


@dataclass(frozen=True)
class DeliveredProfile:
    """A VPN profile as a device holds it after Intune delivered it (what ``Get-VpnConnection`` shows)."""

    name: str
    profile_id: str
    version: int
    source: Literal["native", "custom"]
    servers: tuple[str, ...]
    routes: tuple[tuple[str, int], ...]
    split_tunnel: bool
    profile_xml: str | None = None  # custom profiles: the ProfileXML text Intune delivered

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "profile_id": self.profile_id,
            "version": self.version,
            "source": self.source,
            "servers": list(self.servers),
            "routes": [{"prefix": prefix, "prefix_size": size} for prefix, size in self.routes],
            "split_tunnel": self.split_tunnel,
        }


@runtime_checkable
class DeviceSide(Protocol):
    """The Windows end of an Intune managed device, as the tenant sees and changes it."""

    @property
    def os_build(self) -> tuple[int, int]:
        """(build, UBR), e.g. (22000, 318) for Windows 11 21H2 before KB5008353."""
        ...

    def vpn_profiles(self) -> Mapping[str, DeliveredProfile]:
        """Intune-delivered VPN profiles by connection name."""
        ...

    def deliver_profiles(self, profiles: Sequence[DeliveredProfile]) -> None:
        """Install or replace these profiles (a check-in); others the device holds stay."""
        ...

    def remove_profile(self, name: str, *, reason: str) -> None:
        """Delete a profile: ``"unassigned"`` (Intune removes it and its MDM nodes) or
        ``"KB5008353"`` (Windows deleted it on an update; Intune's intent stays cached)."""
        ...


def loses_profile_on_update(os_build: tuple[int, int]) -> bool:
    """True for Windows 11 21H2 builds that delete an updated VPN profile (fixed in 22000.469)."""
    return os_build[0] == KB5008353_FIXED[0] and os_build < KB5008353_FIXED


class InTenantDevice:
    """The default device side: profiles in a dict, safe to read from another thread."""

    def __init__(self, os_build: tuple[int, int]) -> None:
        self._os_build = os_build
        self._profiles: dict[str, DeliveredProfile] = {}
        self._lock = threading.Lock()

    @property
    def os_build(self) -> tuple[int, int]:
        return self._os_build

    def vpn_profiles(self) -> Mapping[str, DeliveredProfile]:
        with self._lock:
            return dict(self._profiles)

    def deliver_profiles(self, profiles: Sequence[DeliveredProfile]) -> None:
        with self._lock:
            for profile in profiles:
                self._profiles[profile.name] = profile

    def remove_profile(self, name: str, *, reason: str) -> None:
        with self._lock:
            self._profiles.pop(name, None)


__all__ = ["KB5008353_FIXED", "DeliveredProfile", "DeviceSide", "InTenantDevice", "loses_profile_on_update"]
