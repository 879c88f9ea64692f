"""Intune operations against the lab tenant: paging, $batch, profiles, and what devices receive."""

from __future__ import annotations

import time

import pytest

from lab.graph import AppCertificate, Device, TenantConfig, TenantLab, numbered_devices
from orchestrator.errors import NotFoundError, ProtocolError, ServiceError, ThrottledError
from orchestrator.transport.graph import BatchItem, VpnRoute
from orchestrator.transport.graph.profilexml import parse_profile_xml, replace_routes
from tests.graph.support import (
    CUSTOM_ID,
    NATIVE_ID,
    OLD_WIN11,
    apps,
    graph_client,
    intune,
    make_tenant_config,
)


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def routes_of(tenant: TenantLab, device_id: str, name: str) -> list[tuple[str, int]] | None:
    for profile in tenant.control.device(device_id)["profiles"]:
        if profile["name"] == name:
            return [(r["prefix"], r["prefix_size"]) for r in profile["routes"]]
    return None


def test_paging_over_ten_thousand_devices(app_cert: AppCertificate) -> None:
    config = TenantConfig(apps=apps(app_cert), devices=numbered_devices(10_050), enrolled_with_profiles=False)
    with TenantLab(config) as lab:
        client = intune(lab.info)
        devices = list(client.managed_devices())
        assert len(devices) == 10_050
        assert len({d.id for d in devices}) == 10_050
        assert devices[-1].device_name == "EP-10050"
        assert client.graph.stats.requests == 11  # 1000 per page


def test_filter_by_name_and_non_windows_guard(app_cert: AppCertificate) -> None:
    devices = (
        *numbered_devices(3),
        Device(id="mac", device_name="MAC-1", operating_system="macOS", os_version="14.4"),
    )
    with TenantLab(TenantConfig(apps=apps(app_cert), devices=devices)) as lab:
        client = intune(lab.info)
        assert [d.id for d in client.managed_devices(name="ep-0002")] == ["dev-0002"]
        assert len(list(client.managed_devices(windows_only=False))) == 4
        assert {d.operating_system for d in client.managed_devices()} == {"Windows"}


def test_batch_with_mixed_results(tenant: TenantLab) -> None:
    client = graph_client(tenant.info)
    sync = "/deviceManagement/managedDevices/{}/syncDevice"
    items = [
        BatchItem("ok", "POST", sync.format("dev-0001")),
        BatchItem("missing", "POST", sync.format("dev-nope")),
        BatchItem("get", "GET", "/deviceManagement/managedDevices/dev-0002"),
        BatchItem("bad", "GET", "/deviceManagement/nothingHere"),
        BatchItem("dependent", "POST", sync.format("dev-0003"), depends_on=("missing",)),
        BatchItem(
            "patch", "PATCH", f"/deviceManagement/deviceConfigurations/{NATIVE_ID}", body={"routes": []}
        ),
    ]
    results = client.batch(items)
    assert {key: r.status for key, r in results.items()} == {
        "ok": 204,
        "missing": 404,
        "get": 200,
        "bad": 400,
        "dependent": 424,
        "patch": 400,  # @odata.type missing
    }
    assert results["get"].body["deviceName"] == "EP-0002"
    error = results["missing"].error(host="graph", what="syncDevice")
    assert isinstance(error, NotFoundError)
    assert error.request_id == results["missing"].headers["request-id"]


def test_batch_items_throttled_are_retried_until_done(app_cert: AppCertificate) -> None:
    from lab.graph import BucketLimits, Limits  # noqa: PLC0415

    limits = Limits(
        devices=BucketLimits(write_per_app=7, any_per_app=50, write_per_tenant=50, any_per_tenant=100)
    )
    config = make_tenant_config(app_cert, limits=limits, time_scale=0.02)  # 7 writes per 0.4 s
    with TenantLab(config) as lab:
        client = intune(lab.info)
        ids = [f"dev-{i:04d}" for i in range(1, 25)]
        report = client.sync_devices(ids)
        assert report.synced == tuple(ids)
        assert client.graph.stats.throttled > 0  # no budget: it had to bounce off the limit
        writes = lab.control.writes()
        assert all(writes["syncDevice", device] == 1 for device in ids)


def test_patch_routes_reaches_device_on_sync(app_cert: AppCertificate) -> None:
    with TenantLab(make_tenant_config(app_cert, sync_delay_s=0.2)) as lab:
        client = intune(lab.info)
        profile = client.vpn_profile(NATIVE_ID)
        assert profile.routes == (VpnRoute("10.0.0.0", 8),)
        new_routes = [VpnRoute("10.0.0.0", 8), VpnRoute("172.21.8.0", 21)]
        updated = client.set_vpn_routes(NATIVE_ID, new_routes)
        assert updated.routes == tuple(new_routes)
        assert updated.version == profile.version + 1
        name = profile.connection_name
        # Windows 11 22631 keeps the old profile until it checks in.
        assert routes_of(lab, "dev-0001", name) == [("10.0.0.0", 8)]
        # Windows 11 22000.318 loses the profile at once (KB5008353 fixed this in 22000.469).
        assert routes_of(lab, OLD_WIN11, name) is None
        report = client.sync_devices(["dev-0001", OLD_WIN11])
        assert report.synced == ("dev-0001", OLD_WIN11)
        assert routes_of(lab, "dev-0001", name) == [("10.0.0.0", 8)]  # the check-in comes later
        wait_for(lambda: routes_of(lab, "dev-0001", name) == [("10.0.0.0", 8), ("172.21.8.0", 21)])
        wait_for(lambda: routes_of(lab, OLD_WIN11, name) == [("10.0.0.0", 8), ("172.21.8.0", 21)])
        assert lab.control.writes()["patch", NATIVE_ID] == 1
        statuses = {s.device_name: s.status for s in client.device_statuses(NATIVE_ID)}
        assert statuses["EP-0001"] == "compliant"
        assert statuses["EP-0002"] == "unknown"  # not synced yet: still holds version 1


def test_profile_xml_read_masked_then_plain_and_rewritten(app_cert: AppCertificate) -> None:
    with TenantLab(make_tenant_config(app_cert)) as lab:
        client = intune(lab.info)
        custom = client.custom_profile(CUSTOM_ID)
        (setting,) = custom.vpn_settings()
        assert setting.value == "****"
        assert setting.is_encrypted
        xml = client.profile_xml(CUSTOM_ID)[setting.oma_uri]
        routes = parse_profile_xml(xml).routes
        assert [str(r) for r in routes] == ["10.0.0.0/8", "172.21.12.0/21"]
        bad = [r for r in routes if not r.is_network_address()]
        assert [str(r.normalized()) for r in bad] == ["172.21.8.0/21"]  # the seed article's mistake
        fixed = replace_routes(xml, [r.normalized() for r in routes])
        client.set_profile_xml(CUSTOM_ID, setting.oma_uri, fixed)
        assert client.profile_xml(CUSTOM_ID)[setting.oma_uri] == fixed
        client.sync_device("dev-0005")
        wait_for(
            lambda: routes_of(lab, "dev-0005", "Contoso User Tunnel") == [("10.0.0.0", 8), ("172.21.8.0", 21)]
        )


def test_assignments(tenant: TenantLab) -> None:
    (assignment,) = intune(tenant.info).assignments(NATIVE_ID)
    assert assignment.target_type == "#microsoft.graph.allDevicesAssignmentTarget"
    assert assignment.group_id is None


def test_not_found_and_native_profile_needs_beta(tenant: TenantLab) -> None:
    client = intune(tenant.info)
    with pytest.raises(NotFoundError) as caught:
        client.managed_device("dev-gone")
    assert caught.value.request_id
    with pytest.raises(ProtocolError, match="not a VPN profile"):
        client.vpn_profile(CUSTOM_ID)
    body = {"@odata.type": "#microsoft.graph.windows10VpnConfiguration", "routes": []}
    with pytest.raises(ProtocolError, match="400 BadRequest"):
        client.graph.request("PATCH", f"/deviceManagement/deviceConfigurations/{NATIVE_ID}", json=body)


def test_503_burst_longer_than_the_retries_is_a_service_error(app_cert: AppCertificate) -> None:
    from lab.graph import ErrorBurst, Faults  # noqa: PLC0415

    faults = Faults(bursts=(ErrorBurst(status=503, count=100),))
    with TenantLab(make_tenant_config(app_cert, faults=faults)) as lab:
        client = intune(lab.info)
        with pytest.raises(ServiceError, match="503"):
            client.sync_device("dev-0001")
        assert client.graph.stats.unavailable == 8  # every attempt of the policy
        assert ("syncDevice", "dev-0001") not in lab.control.writes()


def test_throttled_beyond_the_policy_raises_with_retry_after(app_cert: AppCertificate) -> None:
    from lab.graph import BucketLimits, Limits  # noqa: PLC0415
    from orchestrator.transport.graph import RetryPolicy  # noqa: PLC0415

    limits = Limits(
        devices=BucketLimits(write_per_app=1, any_per_app=50, write_per_tenant=50, any_per_tenant=50)
    )
    with TenantLab(make_tenant_config(app_cert, limits=limits)) as lab:  # 20-second windows
        client = intune(lab.info, retry=RetryPolicy(max_attempts=3, max_retry_after_s=1.0))
        client.sync_device("dev-0001")
        with pytest.raises(ThrottledError) as caught:
            client.sync_device("dev-0002")
        assert caught.value.retry_after is not None
        assert 0 < caught.value.retry_after <= 20
        assert caught.value.request_id
