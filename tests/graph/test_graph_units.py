"""Pure parts of the Graph client and the lab tenant, without sockets."""

from __future__ import annotations

import datetime
from typing import NotRequired, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.graph.config import Limits
from lab.graph.devices import loses_profile_on_update
from lab.graph.service import GraphFailure, device_filter
from lab.graph.throttle import Throttle, retry_after_header
from orchestrator.errors import (
    AuthFailedError,
    ForbiddenError,
    NotFoundError,
    ProtocolError,
    ServiceError,
    ThrottledError,
)
from orchestrator.transport.graph.budget import (
    Bucket,
    BudgetLimits,
    LocalBudget,
    RequestKind,
    SlidingWindowLog,
    classify,
)
from orchestrator.transport.graph.policy import RetryPolicy, chunk_batch, error_for, parse_retry_after
from orchestrator.transport.graph.profilexml import (
    ProfileXmlError,
    VpnRoute,
    oma_profile_name,
    parse_profile_xml,
    replace_routes,
)

# --- budget ----------------------------------------------------------------------------------------


def test_classify() -> None:
    assert classify("POST", "/deviceManagement/managedDevices/x/syncDevice") == RequestKind(
        Bucket.DEVICES, True
    )
    assert classify("get", "/deviceManagement/deviceConfigurations") == RequestKind(
        Bucket.CONFIGURATION, False
    )
    assert classify("POST", "/$batch") == RequestKind(Bucket.OTHER, True)


def test_limit_keys() -> None:
    limits = BudgetLimits()
    assert limits.keys(RequestKind(Bucket.DEVICES, True)) == [("devices:any", 2000), ("devices:write", 200)]
    assert limits.keys(RequestKind(Bucket.CONFIGURATION, False)) == [("configuration:any", 1000)]
    assert limits.keys(RequestKind(Bucket.OTHER, True)) == []
    assert limits.scaled(0.05).window_s == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive window"):
        BudgetLimits(devices_write=0)


def test_sliding_window_waits_for_the_oldest_permit() -> None:
    log = SlidingWindowLog(limit=3, window_s=10.0)
    for now in (0.0, 1.0, 2.0):
        assert log.wait(now) == 0.0
        log.take(now)
    assert log.wait(5.0) == pytest.approx(5.0)  # the permit of t=0 frees at t=10
    assert log.wait(5.0, count=2) == pytest.approx(6.0)  # two permits: t=1 must go too
    assert log.wait(10.0) == 0.0
    with pytest.raises(ValueError, match="never fit"):
        log.wait(0.0, count=4)


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=60), st.integers(1, 6))
def test_local_budget_never_exceeds_its_limit_in_any_window(gaps: list[float], limit: int) -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    budget = LocalBudget(
        BudgetLimits(window_s=1.0, headroom=0.0, devices_write=limit), clock=lambda: clock[0], sleep=sleep
    )
    granted = []
    for gap in gaps:
        clock[0] += gap
        budget.acquire(RequestKind(Bucket.DEVICES, True))
        granted.append(clock[0])
    for start in granted:
        assert sum(start <= t < start + 1.0 for t in granted) <= limit


# --- retry policy and errors ---------------------------------------------------------------------------


def test_retry_policy() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=3.0, max_retry_after_s=30)
    assert policy.delay(0, 7.0, lambda: 0.0) == 7.0  # Retry-After wins
    assert policy.delay(0, None, lambda: 0.0) == 0.5  # half of 1 s at the low end of the jitter
    assert policy.delay(1, None, lambda: 1.0) == 2.0
    assert policy.delay(2, None, lambda: 1.0) == 3.0  # capped
    assert policy.delay(3, None, lambda: 1.0) is None  # attempts used up
    assert policy.delay(0, 31.0, lambda: 0.0) is None  # longer than we wait: give up as throttled


def test_parse_retry_after() -> None:
    now = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0.250") == 0.25
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthFailedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (429, ThrottledError),
        (503, ServiceError),
        (400, ProtocolError),
    ],
)
def test_error_for(status: int, kind: type[Exception]) -> None:
    body = {"error": {"code": "Code", "message": "text", "innerError": {"request-id": "rid-1"}}}
    error = error_for(status, body, {}, host="graph", what="GET /x", retry_after=2.0)
    assert isinstance(error, kind)
    assert error.request_id == "rid-1"
    assert f"GET /x: {status} Code: text" in str(error)
    assert error_for(status, None, {"request-id": "rid-2"}, host="g", what="w").request_id == "rid-2"


class BatchItem(TypedDict):
    """The part of a ``$batch`` request item that decides how the items are split."""

    id: str
    dependsOn: NotRequired[list[str]]


def test_chunk_batch_keeps_dependency_chains_together() -> None:
    items: list[BatchItem] = [{"id": str(i)} for i in range(25)]
    items[21] = {"id": "21", "dependsOn": ["3"]}
    chunks = chunk_batch(items)
    assert [len(chunk) for chunk in chunks] == [20, 5]
    (with_dependency,) = [chunk for chunk in chunks if {"id": "21", "dependsOn": ["3"]} in chunk]
    assert {"id": "3"} in with_dependency
    assert sorted(item["id"] for chunk in chunks for item in chunk) == sorted(item["id"] for item in items)
    with pytest.raises(ValueError, match="unknown request"):
        chunk_batch([{"id": "a", "dependsOn": ["b"]}])
    chain = [{"id": "0"}] + [{"id": str(i), "dependsOn": [str(i - 1)]} for i in range(1, 21)]
    with pytest.raises(ValueError, match="exceeds the batch limit"):
        chunk_batch(chain)


# --- routes and ProfileXML ---------------------------------------------------------------------------

XML = (
    "<VPNProfile><NativeProfile><Servers>vpn1.example;vpn2.example</Servers>"
    "<NativeProtocolType>IKEv2</NativeProtocolType><RoutingPolicyType>SplitTunnel</RoutingPolicyType>"
    "</NativeProfile><AlwaysOn>true</AlwaysOn>"
    "<Route><Address>172.21.12.0</Address><PrefixSize>21</PrefixSize></Route>"
    "<Route><Address>10.1.0.0</Address><PrefixSize>16</PrefixSize><ExclusionRoute>true</ExclusionRoute></Route>"
    "</VPNProfile>"
)


def test_route_network_address() -> None:
    host_bits = VpnRoute("172.21.12.0", 21)
    assert not host_bits.is_network_address()
    assert host_bits.normalized() == VpnRoute("172.21.8.0", 21)
    assert VpnRoute("10.0.0.0", 8).is_network_address()
    assert VpnRoute("2001:db8::", 32).is_network_address()
    with pytest.raises(ValueError, match="out of range"):
        VpnRoute("10.0.0.0", 33)
    assert VpnRoute.from_graph({"destinationPrefix": "10.0.0.0", "prefixSize": 8}).to_graph() == {
        "destinationPrefix": "10.0.0.0",
        "prefixSize": 8,
    }


def test_parse_and_replace_routes() -> None:
    profile = parse_profile_xml(XML)
    assert profile.servers == ("vpn1.example", "vpn2.example")
    assert profile.routing_policy == "SplitTunnel"
    assert profile.routes == (VpnRoute("172.21.12.0", 21), VpnRoute("10.1.0.0", 16, exclusion=True))
    fixed = replace_routes(XML, [route.normalized() for route in profile.routes])
    assert parse_profile_xml(fixed).routes == (VpnRoute("172.21.8.0", 21), VpnRoute("10.1.0.0", 16, True))
    assert "<AlwaysOn>true</AlwaysOn>" in fixed
    assert fixed.index("<AlwaysOn>") < fixed.index("<Route>")  # Route stays last, as the schema wants


@pytest.mark.parametrize(
    "bad",
    [
        "<VPNProfile><Route><Address>x</Address><PrefixSize>8</PrefixSize></Route></VPNProfile>",
        "<VPNProfile><Route>",
        "<Other/>",
        '<!DOCTYPE a [<!ENTITY x "y">]><VPNProfile/>',
    ],
)
def test_bad_profile_xml(bad: str) -> None:
    with pytest.raises(ProfileXmlError):
        parse_profile_xml(bad)


def test_oma_profile_name() -> None:
    assert oma_profile_name("./User/Vendor/MSFT/VPNv2/Contoso%20AOVPN/ProfileXML") == (
        "User",
        "Contoso AOVPN",
    )
    assert oma_profile_name("./device/Vendor/MSFT/VPNv2/Dev/ProfileXML") == ("Device", "Dev")
    assert oma_profile_name("./Device/Vendor/MSFT/Policy/Config/X") is None


# --- the lab's own rules -----------------------------------------------------------------------------


def test_lab_throttle_fixed_windows() -> None:
    throttle = Throttle(Limits(), window_s=20.0, start=0.0)
    for _ in range(100):
        assert throttle.admit("app", "configuration", True, 1.0).retry_after is None
    verdict = throttle.admit("app", "configuration", True, 5.0)
    assert verdict.retry_after == pytest.approx(15.0)
    assert verdict.counter == "configuration/write/app/app"
    assert throttle.admit("other-app", "configuration", True, 5.0).retry_after is None  # per app
    assert throttle.admit("app", "configuration", False, 5.0).retry_after is None  # reads still fit
    assert throttle.admit("app", "configuration", True, 20.0).retry_after is None  # next window
    assert throttle.admit("app", None, True, 5.0).retry_after is None  # outside Intune
    assert retry_after_header(14.2, scaled=False) == "15"
    assert retry_after_header(0.142, scaled=True) == "0.142"


def test_lab_device_filter() -> None:
    device = {"deviceName": "EP-O'Neil", "operatingSystem": "Windows", "azureADDeviceId": "abc"}
    assert device_filter("operatingSystem eq 'windows' and deviceName eq 'ep-o''neil'")(device)
    assert device_filter("startswith(deviceName,'EP-')")(device)
    assert not device_filter("azureADDeviceId eq 'abd'")(device)
    with pytest.raises(GraphFailure, match="Invalid filter"):
        device_filter("lastSyncDateTime gt 2024-01-01")


def test_kb5008353_builds() -> None:
    assert loses_profile_on_update((22000, 318))
    assert not loses_profile_on_update((22000, 469))
    assert not loses_profile_on_update((22631, 100))
    assert not loses_profile_on_update((19045, 100))  # Windows 10
