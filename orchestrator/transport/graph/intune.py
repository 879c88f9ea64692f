"""Intune through Graph: the calls fleetfix's collectors, checks and actions make.

:class:`IntuneClient` turns Graph JSON into small frozen values and back.  Reads that fleetfix
needs from many devices page through collections; writes are idempotent (a sync, a complete
replacement of a collection), so the client's retries can never apply a change twice in effect.

* managed devices: :meth:`~IntuneClient.managed_devices`, :meth:`~IntuneClient.managed_device`
* syncs: :meth:`~IntuneClient.sync_device`, :meth:`~IntuneClient.sync_devices` (``$batch``)
* native VPN profiles (beta ``windows10VpnConfiguration``): :meth:`~IntuneClient.vpn_profiles`,
  :meth:`~IntuneClient.vpn_profile`, :meth:`~IntuneClient.set_vpn_routes`
* ProfileXML profiles (``windows10CustomConfiguration``): :meth:`~IntuneClient.custom_profile`,
  :meth:`~IntuneClient.profile_xml`, :meth:`~IntuneClient.set_profile_xml`
* several ProfileXMLs of one profile in one PATCH: :meth:`~IntuneClient.set_profile_xmls`
* per-profile state: :meth:`~IntuneClient.assignments`, :meth:`~IntuneClient.device_statuses`
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import NotFoundError, ProtocolError, TransportError
from orchestrator.transport.graph.client import BatchItem, GraphClient
from orchestrator.transport.graph.profilexml import VpnRoute, oma_profile_name

NATIVE_VPN_TYPE = "#microsoft.graph.windows10VpnConfiguration"
CUSTOM_TYPE = "#microsoft.graph.windows10CustomConfiguration"
OMA_STRING_TYPE = "#microsoft.graph.omaSettingString"
DEVICE_FIELDS = (
    "id", "deviceName", "azureADDeviceId", "operatingSystem", "osVersion", "lastSyncDateTime",
    "userPrincipalName", "serialNumber", "complianceState", "managedDeviceName",
)  # fmt: skip
_DEVICES = "/deviceManagement/managedDevices"
_CONFIGS = "/deviceManagement/deviceConfigurations"


def _quote(value: str) -> str:
    """A string literal for ``$filter`` (OData doubles single quotes)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class ManagedDevice:
    id: str
    device_name: str
    azure_ad_device_id: str | None
    operating_system: str
    os_version: str
    last_sync: str | None
    user_principal_name: str | None = None
    serial_number: str | None = None
    compliance_state: str | None = None

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> ManagedDevice:
        return cls(
            id=str(data["id"]),
            device_name=str(data.get("deviceName") or ""),
            azure_ad_device_id=data.get("azureADDeviceId") or None,
            operating_system=str(data.get("operatingSystem") or ""),
            os_version=str(data.get("osVersion") or ""),
            last_sync=data.get("lastSyncDateTime"),
            user_principal_name=data.get("userPrincipalName") or None,
            serial_number=data.get("serialNumber") or None,
            compliance_state=data.get("complianceState"),
        )

    @property
    def os_build(self) -> tuple[int, int] | None:
        """(build, UBR) from ``10.0.<build>.<ubr>``; None for another shape."""
        parts = self.os_version.split(".")
        if len(parts) == 4 and all(part.isdigit() for part in parts):
            return int(parts[2]), int(parts[3])
        return None


@dataclass(frozen=True)
class VpnServer:
    address: str
    description: str = ""
    is_default: bool = False


@dataclass(frozen=True)
class NativeVpnProfile:
    """A ``windows10VpnConfiguration``; ``raw`` keeps every field Graph sent."""

    id: str
    display_name: str
    version: int
    connection_name: str
    servers: tuple[VpnServer, ...]
    routes: tuple[VpnRoute, ...]
    split_tunnel: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> NativeVpnProfile:
        if data.get("@odata.type") != NATIVE_VPN_TYPE:
            raise ProtocolError(
                f"configuration {data.get('id')} is {data.get('@odata.type')}, not a VPN profile"
            )
        return cls(
            id=str(data["id"]),
            display_name=str(data.get("displayName") or ""),
            version=int(data.get("version") or 0),
            connection_name=str(data.get("connectionName") or ""),
            servers=tuple(
                VpnServer(
                    str(s.get("address")), str(s.get("description") or ""), bool(s.get("isDefaultServer"))
                )
                for s in data.get("servers") or []
            ),
            routes=tuple(VpnRoute.from_graph(route) for route in data.get("routes") or []),
            split_tunnel=bool(data.get("enableSplitTunneling")),
            raw=data,
        )


@dataclass(frozen=True)
class OmaSetting:
    """One OMA-URI setting; ``value`` is ``****`` for an encrypted string until read in plain text."""

    odata_type: str
    oma_uri: str
    display_name: str
    value: Any
    secret_reference: str | None
    is_encrypted: bool

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> OmaSetting:
        return cls(
            odata_type=str(data.get("@odata.type") or ""),
            oma_uri=str(data.get("omaUri") or ""),
            display_name=str(data.get("displayName") or ""),
            value=data.get("value"),
            secret_reference=data.get("secretReferenceValueId"),
            is_encrypted=bool(data.get("isEncrypted")),
        )

    def to_graph(self, value: Any) -> dict[str, Any]:
        """The setting for a PATCH, with its plain ``value`` (Intune encrypts it again)."""
        return {
            "@odata.type": self.odata_type,
            "displayName": self.display_name,
            "omaUri": self.oma_uri,
            "value": value,
        }


@dataclass(frozen=True)
class CustomProfile:
    id: str
    display_name: str
    version: int
    settings: tuple[OmaSetting, ...]

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> CustomProfile:
        if data.get("@odata.type") != CUSTOM_TYPE:
            raise ProtocolError(
                f"configuration {data.get('id')} is {data.get('@odata.type')}, not a custom profile"
            )
        return cls(
            id=str(data["id"]),
            display_name=str(data.get("displayName") or ""),
            version=int(data.get("version") or 0),
            settings=tuple(OmaSetting.from_graph(s) for s in data.get("omaSettings") or []),
        )

    def vpn_settings(self) -> list[OmaSetting]:
        """The settings that carry a VPNv2 ProfileXML."""
        return [s for s in self.settings if oma_profile_name(s.oma_uri) is not None]


@dataclass(frozen=True)
class Assignment:
    """``group_id`` is None for an all-devices (or all-users) assignment."""

    target_type: str
    group_id: str | None


@dataclass(frozen=True)
class DeviceStatus:
    device_name: str
    status: str
    user_principal_name: str | None
    last_reported: str | None


@dataclass(frozen=True)
class SyncReport:
    """Outcome of a bulk sync: ids synced, ids Intune does not know, and other failures by id."""

    synced: tuple[str, ...]
    not_found: tuple[str, ...]
    failed: dict[str, TransportError]


class IntuneClient:
    """Intune operations over a :class:`GraphClient`."""

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    # --- devices ---------------------------------------------------------------------------------------

    def managed_devices(
        self, *, windows_only: bool = True, name: str | None = None
    ) -> Iterator[ManagedDevice]:
        """Managed devices (Windows only by default), every page."""
        clauses = ["operatingSystem eq 'Windows'"] if windows_only else []
        if name is not None:
            clauses.append(f"deviceName eq {_quote(name)}")
        params = {"$select": ",".join(DEVICE_FIELDS)}
        if clauses:
            params["$filter"] = " and ".join(clauses)
        for item in self.graph.iter_collection(_DEVICES, params=params):
            device = ManagedDevice.from_graph(item)
            # Graph's $filter on operatingSystem is known to let other systems through; check again.
            if not windows_only or device.operating_system.lower() == "windows":
                yield device

    def managed_device(self, device_id: str) -> ManagedDevice:
        response = self.graph.request(
            "GET", f"{_DEVICES}/{device_id}", params={"$select": ",".join(DEVICE_FIELDS)}
        )
        return ManagedDevice.from_graph(response.body)

    def sync_device(self, device_id: str) -> None:
        """Ask the device to check in now (Intune queues the push; the device follows later)."""
        self.graph.request("POST", f"{_DEVICES}/{device_id}/syncDevice")

    def sync_devices(self, device_ids: Iterable[str]) -> SyncReport:
        """``syncDevice`` for many devices through ``$batch``, 20 per call, throttled items retried."""
        ids = list(dict.fromkeys(device_ids))
        items = [
            BatchItem(str(n), "POST", f"{_DEVICES}/{device_id}/syncDevice") for n, device_id in enumerate(ids)
        ]
        results = self.graph.batch(items)
        synced: list[str] = []
        not_found: list[str] = []
        failed: dict[str, TransportError] = {}
        for item, device_id in zip(items, ids, strict=True):
            result = results[item.id]
            if result.ok:
                synced.append(device_id)
            elif result.status == 404:
                not_found.append(device_id)
            else:
                failed[device_id] = result.error(host=self.graph.host, what=f"syncDevice {device_id}")
        return SyncReport(tuple(synced), tuple(not_found), failed)

    # --- native VPN profiles (beta) --------------------------------------------------------------------

    def vpn_profiles(self) -> list[NativeVpnProfile]:
        params = {"$filter": "isof('microsoft.graph.windows10VpnConfiguration')"}
        return [
            NativeVpnProfile.from_graph(item)
            for item in self.graph.iter_collection(_CONFIGS, version="beta", params=params)
        ]

    def vpn_profile(self, profile_id: str) -> NativeVpnProfile:
        return NativeVpnProfile.from_graph(self._configuration(profile_id, "beta"))

    def set_vpn_routes(self, profile_id: str, routes: Sequence[VpnRoute]) -> NativeVpnProfile:
        """Replace the profile's routes (the whole collection) and return the profile as stored."""
        body = {"@odata.type": NATIVE_VPN_TYPE, "routes": [route.to_graph() for route in routes]}
        self.graph.request("PATCH", f"{_CONFIGS}/{profile_id}", version="beta", json=body)
        return self.vpn_profile(profile_id)  # PATCH answers 204: read back what Intune stored

    # --- ProfileXML profiles ------------------------------------------------------------------------------

    def custom_profile(self, profile_id: str) -> CustomProfile:
        return CustomProfile.from_graph(self._configuration(profile_id, "v1.0"))

    def oma_plain_text(self, profile_id: str, secret_reference: str) -> str:
        """The plain text of an encrypted OMA string (needs DeviceManagementConfiguration.ReadWrite.All)."""
        function = f"getOmaSettingPlainTextValue(secretReferenceValueId={_quote(secret_reference)})"
        path = f"{_CONFIGS}/{profile_id}/{function}"
        value = self.graph.request("GET", path).body
        if not isinstance(value, dict) or not isinstance(value.get("value"), str):
            raise ProtocolError(
                f"getOmaSettingPlainTextValue of {profile_id}: no string value", host=self.graph.host
            )
        return str(value["value"])

    def setting_value(self, profile_id: str, setting: OmaSetting) -> Any:
        if setting.is_encrypted and setting.secret_reference:
            return self.oma_plain_text(profile_id, setting.secret_reference)
        return setting.value

    def profile_xml(self, profile_id: str) -> dict[str, str]:
        """The ProfileXML of each VPNv2 setting of a custom profile, by OMA-URI, in plain text."""
        profile = self.custom_profile(profile_id)
        return {s.oma_uri: str(self.setting_value(profile_id, s)) for s in profile.vpn_settings()}

    def set_profile_xml(self, profile_id: str, oma_uri: str, xml: str) -> CustomProfile:
        """Replace one ProfileXML; every other setting is sent back unchanged (collections are replaced)."""
        profile = self.custom_profile(profile_id)
        if oma_uri not in {s.oma_uri for s in profile.settings}:
            raise NotFoundError(f"{profile_id} has no OMA setting {oma_uri}", host=self.graph.host)
        settings = [
            s.to_graph(xml if s.oma_uri == oma_uri else self.setting_value(profile_id, s))
            for s in profile.settings
        ]
        body = {"@odata.type": CUSTOM_TYPE, "omaSettings": settings}
        self.graph.request("PATCH", f"{_CONFIGS}/{profile_id}", json=body)
        return self.custom_profile(profile_id)

    def set_profile_xmls(self, profile_id: str, xml_by_uri: Mapping[str, str]) -> CustomProfile:
        """Replace several ProfileXMLs of one profile in a single PATCH (every other setting is sent
        back unchanged): one write, one version bump, so devices see one update rather than one per
        setting, and the profile is never left with only some of its settings changed."""
        profile = self.custom_profile(profile_id)
        missing = sorted(set(xml_by_uri) - {s.oma_uri for s in profile.settings})
        if missing:
            raise NotFoundError(f"{profile_id} has no OMA setting {missing[0]}", host=self.graph.host)
        settings = []
        for s in profile.settings:
            value = xml_by_uri[s.oma_uri] if s.oma_uri in xml_by_uri else self.setting_value(profile_id, s)
            settings.append(s.to_graph(value))
        body = {"@odata.type": CUSTOM_TYPE, "omaSettings": settings}
        self.graph.request("PATCH", f"{_CONFIGS}/{profile_id}", json=body)
        return self.custom_profile(profile_id)

    # --- state per profile ----------------------------------------------------------------------------------

    def assignments(self, profile_id: str) -> list[Assignment]:
        items = self.graph.iter_collection(f"{_CONFIGS}/{profile_id}/assignments")
        return [
            Assignment(str(a.get("target", {}).get("@odata.type", "")), a.get("target", {}).get("groupId"))
            for a in items
        ]

    def device_statuses(self, profile_id: str) -> Iterator[DeviceStatus]:
        for item in self.graph.iter_collection(f"{_CONFIGS}/{profile_id}/deviceStatuses"):
            yield DeviceStatus(
                device_name=str(item.get("deviceDisplayName") or ""),
                status=str(item.get("status") or "unknown"),
                user_principal_name=item.get("userPrincipalName"),
                last_reported=item.get("lastReportedDateTime"),
            )

    def _configuration(self, profile_id: str, version: str) -> dict[str, Any]:
        body = self.graph.request("GET", f"{_CONFIGS}/{profile_id}", version=version).body
        if not isinstance(body, dict):
            raise ProtocolError(f"GET configuration {profile_id}: not a JSON object", host=self.graph.host)
        return body


__all__ = [
    "CUSTOM_TYPE",
    "DEVICE_FIELDS",
    "NATIVE_VPN_TYPE",
    "Assignment",
    "CustomProfile",
    "DeviceStatus",
    "IntuneClient",
    "ManagedDevice",
    "NativeVpnProfile",
    "OmaSetting",
    "SyncReport",
    "VpnServer",
]
