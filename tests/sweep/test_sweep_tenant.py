"""The tenant collector over a fake Intune client: which calls, and one unreadable ProfileXML."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from orchestrator.errors import ForbiddenError
from orchestrator.sweep.tenant import collect_tenant
from orchestrator.transport.graph.intune import (
    CUSTOM_TYPE,
    NATIVE_VPN_TYPE,
    Assignment,
    CustomProfile,
    DeviceStatus,
    ManagedDevice,
    NativeVpnProfile,
    OmaSetting,
)
from tests.sweep.support import T0

DEVICE_URI = "./Device/Vendor/MSFT/VPNv2/Contoso%20Device%20Tunnel/ProfileXML"
USER_URI = "./User/Vendor/MSFT/VPNv2/Contoso%20User%20Tunnel/ProfileXML"


class FakeGraph:
    def iter_collection(self, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert "windows10CustomConfiguration" in kwargs["params"]["$filter"]
        yield from ({"id": "custom-1"}, {"id": "not-vpn"})


class FakeIntune:
    graph = FakeGraph()

    def managed_devices(self) -> Iterator[ManagedDevice]:
        yield ManagedDevice.from_graph(
            {"id": "d1", "deviceName": "EP-0001", "operatingSystem": "Windows", "osVersion": "10.0.22000.469"}
        )

    def vpn_profiles(self) -> list[NativeVpnProfile]:
        return [
            NativeVpnProfile.from_graph(
                {"@odata.type": NATIVE_VPN_TYPE, "id": "native-1", "displayName": "User Tunnel",
                 "connectionName": "Contoso User Tunnel",
                 "routes": [{"destinationPrefix": "172.21.12.0", "prefixSize": 21}]}
            )
        ]  # fmt: skip

    def custom_profile(self, profile_id: str) -> CustomProfile:
        string = "#microsoft.graph.omaSettingString"
        settings: list[dict[str, Any]] = [
            {"@odata.type": string, "omaUri": DEVICE_URI, "value": "<VPNProfile/>"},
            {"@odata.type": string, "omaUri": USER_URI, "value": "****", "isEncrypted": True,
             "secretReferenceValueId": "ref-1"},
        ]  # fmt: skip
        if profile_id != "custom-1":
            settings = [{"omaUri": "./Device/Vendor/MSFT/Policy/Config/X", "value": 1}]
        data = {
            "@odata.type": CUSTOM_TYPE,
            "id": profile_id,
            "displayName": profile_id,
            "omaSettings": settings,
        }
        return CustomProfile.from_graph(data)

    def setting_value(self, profile_id: str, setting: OmaSetting) -> Any:
        if setting.is_encrypted:
            raise ForbiddenError("needs DeviceManagementConfiguration.ReadWrite.All", host="graph.test")
        return setting.value

    def assignments(self, profile_id: str) -> list[Assignment]:
        return [Assignment("#microsoft.graph.allDevicesAssignmentTarget", None)]

    def device_statuses(self, profile_id: str) -> Iterator[DeviceStatus]:
        yield DeviceStatus("EP-0001", "succeeded", None, "2026-03-01T00:00:00Z")


def test_devices_native_and_custom_vpn_profiles_with_one_unreadable_setting() -> None:
    facts = collect_tenant(FakeIntune(), at=T0)  # type: ignore[arg-type]
    assert facts.collected_at == T0
    assert [device.device_name for device in facts.devices] == ["EP-0001"]
    native, custom = facts.vpn_profiles
    assert (native.kind, native.connection_name, native.assigned) == ("native", "Contoso User Tunnel", True)
    assert native.routes[0].destination_prefix == "172.21.12.0"
    assert native.device_statuses is not None
    assert native.device_statuses[0].status == "succeeded"
    assert custom.kind == "custom"
    assert [(s.name, s.xml) for s in custom.profile_xml] == [
        ("Contoso Device Tunnel", "<VPNProfile/>"),
        ("Contoso User Tunnel", None),
    ]
    (error,) = facts.errors
    assert error.section == "vpn_profiles"
    assert "ReadWrite.All" in error.message
