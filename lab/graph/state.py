"""The tenant's state: managed devices, profiles and assignments, and the record of every write.

Graph requests and the device side meet here: a profile's current JSON is what a device receives
on its next check-in; ``syncDevice`` schedules that check-in ``sync_delay_s`` later; a profile
update removes the profile at once from devices hit by the Windows 11 bug KB5008353 fixed.

Every write that changes the tenant is counted in :attr:`TenantState.writes` by ``(kind, id)``
(``("syncDevice", device_id)``, ``("patch", profile_id)``), so tests can prove that retries under
429 storms and 503 bursts neither lost nor duplicated a write.  Mutated on the server's event loop
only; :meth:`snapshot` and the device sides are safe to read from another thread.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lab.graph import profiles as prof
from lab.graph.config import ALL_DEVICES, CustomVpnProfile, Device, TenantConfig
from lab.graph.devices import DeviceSide, InTenantDevice, loses_profile_on_update


@dataclass(frozen=True)
class DeviceEvent:
    """Something that happened on a device: a delivered or removed profile."""

    seq: int
    device_id: str
    action: str  # "deliver" | "remove"
    profile: str
    version: int | None
    reason: str


class ManagedDevice:
    """A device record: Graph's JSON fields, its groups and its device side."""

    def __init__(self, device: Device, side: DeviceSide) -> None:
        self.id = device.id
        self.groups = frozenset(device.groups)
        self.side = side
        self.json: dict[str, Any] = {
            "id": device.id,
            "deviceName": device.device_name,
            "managedDeviceName": f"{device.user_principal_name.split('@')[0]}_Windows_{device.device_name}",
            "operatingSystem": device.operating_system,
            "osVersion": device.os_version,
            "azureADDeviceId": device.azure_ad_device_id,
            "complianceState": device.compliance_state,
            "managementAgent": "mdm",
            "deviceEnrollmentType": "windowsAzureADJoin",
            "userPrincipalName": device.user_principal_name,
            "serialNumber": device.serial_number,
            "model": device.model,
            "manufacturer": device.manufacturer,
            "enrolledDateTime": "2024-03-01T09:00:00Z",
            "lastSyncDateTime": device.last_sync,
            "deviceActionResults": [],
        }


class TenantState:
    """Devices, profiles and what happened to them."""

    def __init__(
        self,
        config: TenantConfig,
        side_factory: Callable[[Device], DeviceSide] | None = None,
    ) -> None:
        make_side = side_factory or (lambda device: InTenantDevice(device.os_build))
        self.config = config
        self.devices: dict[str, ManagedDevice] = {
            d.id: ManagedDevice(d, make_side(d)) for d in config.devices
        }
        self.secrets = prof.SecretStore(config.tenant_id)
        self.profiles: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, tuple[str, ...]] = {}
        for profile in config.profiles:
            if isinstance(profile, CustomVpnProfile):
                self.profiles[profile.id] = prof.custom_json(profile, self.secrets)
            else:
                self.profiles[profile.id] = prof.native_json(profile)
            self.assignments[profile.id] = profile.assignments
        self.writes: collections.Counter[tuple[str, str]] = collections.Counter()
        self.events: list[DeviceEvent] = []
        self._pending: list[tuple[float, int, str]] = []  # (due, seq, device id): a check-in heap
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        if config.enrolled_with_profiles:
            for device_id in self.devices:
                self.check_in(device_id, reason="enrolment")

    # --- devices ----------------------------------------------------------------------------------

    def request_sync(self, device_id: str, now: float) -> None:
        """``syncDevice``: the device checks in ``sync_delay_s`` later (:meth:`tick` delivers)."""
        device = self.devices[device_id]
        with self._lock:
            self.writes["syncDevice", device_id] += 1
        stamp = prof.now_text()
        device.json["deviceActionResults"] = [
            {"actionName": "syncDevice", "actionState": "pending", "startDateTime": stamp,
             "lastUpdatedDateTime": stamp}
        ]  # fmt: skip
        heapq.heappush(self._pending, (now + self.config.sync_delay_s, next(self._seq), device_id))

    def tick(self, now: float) -> int:
        """Let every device whose check-in is due check in; returns how many did."""
        done = 0
        while self._pending and self._pending[0][0] <= now:
            _, _, device_id = heapq.heappop(self._pending)
            self.check_in(device_id)
            done += 1
        return done

    def check_in(self, device_id: str, reason: str = "check-in") -> None:
        """The device fetches its policies: assigned profiles delivered, unassigned ones removed."""
        device = self.devices[device_id]
        wanted = [
            p
            for pid in self.assigned_profiles(device)
            for p in prof.delivered(self.profiles[pid], self.secrets)
        ]
        names = {p.name for p in wanted}
        ours = set(self.profiles)
        for name, held in device.side.vpn_profiles().items():
            if held.profile_id in ours and name not in names:
                device.side.remove_profile(name, reason="unassigned")
                self._event(device_id, "remove", name, None, "unassigned")
        device.side.deliver_profiles(wanted)
        for profile in wanted:
            self._event(device_id, "deliver", profile.name, profile.version, reason)
        if reason == "enrolment":
            return  # the configured lastSyncDateTime stands for that earlier check-in
        stamp = prof.now_text()
        device.json["lastSyncDateTime"] = stamp
        for result in device.json["deviceActionResults"]:
            result.update(actionState="done", lastUpdatedDateTime=stamp)

    def assigned_profiles(self, device: ManagedDevice) -> list[str]:
        return [
            pid
            for pid, targets in self.assignments.items()
            if ALL_DEVICES in targets or device.groups.intersection(targets)
        ]

    def assigned_devices(self, profile_id: str) -> Iterator[ManagedDevice]:
        return (d for d in self.devices.values() if profile_id in self.assigned_profiles(d))

    # --- profiles ---------------------------------------------------------------------------------

    def patch_profile(self, profile_id: str, body: Mapping[str, Any], *, beta: bool) -> None:
        """Apply a PATCH; raises :class:`~lab.graph.profiles.ProfileError` for a body Intune refuses."""
        profile = self.profiles[profile_id]
        prof.apply_patch(profile, body, self.secrets, beta=beta)
        with self._lock:
            self.writes["patch", profile_id] += 1
        self._profile_changed(profile_id)

    def assign(self, profile_id: str, targets: tuple[str, ...]) -> None:
        self.assignments[profile_id] = targets
        with self._lock:
            self.writes["assign", profile_id] += 1

    def _profile_changed(self, profile_id: str) -> None:
        # KB5008353: on Windows 11 21H2 before 22000.469 the update deletes the profile and does
        # not put it back; the next check-in (a sync) returns it.
        for device in self.devices.values():
            for name, held in device.side.vpn_profiles().items():
                if held.profile_id == profile_id and loses_profile_on_update(device.side.os_build):
                    device.side.remove_profile(name, reason="KB5008353")
                    self._event(device.id, "remove", name, held.version, "KB5008353")

    def device_status(self, device: ManagedDevice, profile_id: str) -> str:
        """Intune's per-device status of a profile: compliant once the current version is delivered."""
        version = self.profiles[profile_id]["version"]
        held = [p for p in device.side.vpn_profiles().values() if p.profile_id == profile_id]
        return "compliant" if held and all(p.version == version for p in held) else "unknown"

    # --- records ----------------------------------------------------------------------------------

    def _event(self, device_id: str, action: str, profile: str, version: int | None, reason: str) -> None:
        event = DeviceEvent(next(self._seq), device_id, action, profile, version, reason)
        with self._lock:
            self.events.append(event)

    def snapshot(self) -> dict[str, Any]:
        """Write counts and device events as JSON-ready data (the control API's ``/_lab/state``)."""
        with self._lock:
            writes = [
                {"kind": kind, "id": ident, "count": count} for (kind, ident), count in self.writes.items()
            ]
            events = [vars(event) for event in self.events]
        return {"writes": writes, "events": events, "pending_syncs": len(self._pending)}


__all__ = ["DeviceEvent", "ManagedDevice", "TenantState"]
