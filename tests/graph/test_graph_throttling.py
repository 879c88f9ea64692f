"""429 storms, 503 bursts and the shared request budget: every write lands exactly once.

The tenant runs on a time scale (one-second or shorter windows) with small limits, so storms
happen in a second; the lab counts every accepted write per device and profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import redis

from lab.graph import (
    AppCertificate,
    BucketLimits,
    ErrorBurst,
    Faults,
    Limits,
    NativeVpnProfile,
    TenantConfig,
    TenantLab,
    numbered_devices,
)
from orchestrator.transport.graph import BudgetLimits, IntuneClient, RetryPolicy, VpnRoute
from orchestrator.transport.graph.budget import LocalBudget, RedisBudget, RequestBudget
from tests.graph.support import apps, intune

STORM_RETRY = RetryPolicy(max_attempts=60, base_delay_s=0.02, max_delay_s=0.2)
DEVICES = 120
PROFILES = 12
# Per window: devices 20 writes per app, configuration 5; the tenant-wide limits are higher.
LIMITS = Limits(
    devices=BucketLimits(write_per_app=20, any_per_app=60, write_per_tenant=40, any_per_tenant=120),
    configuration=BucketLimits(write_per_app=5, any_per_app=30, write_per_tenant=10, any_per_tenant=60),
)
TIME_SCALE = 0.02  # 20 s -> 0.4 s


def storm_tenant(app_cert: AppCertificate, faults: Faults | None = None) -> TenantLab:
    profiles = tuple(NativeVpnProfile(id=f"vpn-{i:02d}", connection_name=f"VPN {i}") for i in range(PROFILES))
    config = TenantConfig(
        apps=apps(app_cert),
        devices=numbered_devices(DEVICES),
        profiles=profiles,
        limits=LIMITS,
        time_scale=TIME_SCALE,
        faults=faults or Faults(),
        enrolled_with_profiles=False,
    )
    return TenantLab(config)


def matching_budget(budget_factory: Callable[[BudgetLimits], RequestBudget]) -> RequestBudget:
    """fleetfix's budget for the storm tenant's per-app limits and window."""
    limits = BudgetLimits(
        window_s=20.0 * TIME_SCALE,
        devices_write=LIMITS.devices.write_per_app,
        devices_any=LIMITS.devices.any_per_app,
        configuration_write=LIMITS.configuration.write_per_app,
        configuration_any=LIMITS.configuration.any_per_app,
    )
    return budget_factory(limits)


def work(client: IntuneClient, device_ids: list[str], profile_ids: list[str], threads: int = 8) -> None:
    """Single-request syncs and PATCHes from many threads at once."""
    route = [VpnRoute("10.0.0.0", 8)]
    with ThreadPoolExecutor(threads) as pool:
        jobs: list[Future[object]] = [pool.submit(client.sync_device, device) for device in device_ids]
        jobs += [pool.submit(client.set_vpn_routes, profile, route) for profile in profile_ids]
        for job in jobs:
            job.result()


def assert_each_write_once(lab: TenantLab, device_ids: list[str], profile_ids: list[str]) -> None:
    writes = lab.control.writes()
    expected = {("syncDevice", d): 1 for d in device_ids} | {("patch", p): 1 for p in profile_ids}
    assert writes == expected


DEVICE_IDS = [f"dev-{i:04d}" for i in range(1, DEVICES + 1)]
PROFILE_IDS = [f"vpn-{i:02d}" for i in range(PROFILES)]


@pytest.mark.slow
def test_storm_of_429_and_503_bursts_loses_and_duplicates_nothing(app_cert: AppCertificate) -> None:
    bursts = tuple(
        ErrorBurst(status=status, after_requests=at, count=6)
        for status, at in ((503, 10), (504, 70), (503, 130))
    )
    with storm_tenant(app_cert, Faults(bursts=bursts)) as lab:
        client = intune(lab.info, retry=STORM_RETRY)
        work(client, DEVICE_IDS, PROFILE_IDS)
        stats = client.graph.stats
        assert stats.throttled > 0  # no budget: the client bounced off the limits
        assert stats.unavailable == 18
        assert_each_write_once(lab, DEVICE_IDS, PROFILE_IDS)


def test_batch_storm_loses_and_duplicates_nothing(app_cert: AppCertificate) -> None:
    bursts = (ErrorBurst(status=503, after_requests=2, count=3),)
    with storm_tenant(app_cert, Faults(bursts=bursts)) as lab:
        client = intune(lab.info, retry=STORM_RETRY)
        report = client.sync_devices([*DEVICE_IDS, "dev-missing"])
        assert report.synced == tuple(DEVICE_IDS)
        assert report.not_found == ("dev-missing",)
        assert client.graph.stats.throttled > 0
        assert client.graph.stats.unavailable == 3
        assert_each_write_once(lab, DEVICE_IDS, [])


def test_local_budget_stays_under_the_limits(app_cert: AppCertificate) -> None:
    with storm_tenant(app_cert) as lab:
        budget = matching_budget(LocalBudget)
        clients = [intune(lab.info, retry=STORM_RETRY, budget=budget) for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:
            halves = [(DEVICE_IDS[:60], PROFILE_IDS[:6]), (DEVICE_IDS[60:], PROFILE_IDS[6:])]
            for job in [pool.submit(work, c, d, p, 4) for c, (d, p) in zip(clients, halves, strict=True)]:
                job.result()
        assert sum(c.graph.stats.throttled for c in clients) == 0
        assert lab.control.state()["throttled"] == {}
        assert_each_write_once(lab, DEVICE_IDS, PROFILE_IDS)


@pytest.fixture
def redis_client() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis on 127.0.0.1:6379 is not reachable ({exc}); the shared budget needs it", pytrace=False
        )
    return client


def test_redis_budget_is_shared_by_workers(app_cert: AppCertificate, redis_client: redis.Redis) -> None:
    tenant_key = f"test-{uuid.uuid4().hex}"
    with storm_tenant(app_cert) as lab:
        # Two workers, each with its own Redis connection and budget object: one budget in Redis.
        clients = [
            intune(
                lab.info,
                retry=STORM_RETRY,
                budget=matching_budget(lambda limits: RedisBudget(redis_client, tenant_key, limits)),
            )
            for _ in range(2)
        ]
        with ThreadPoolExecutor(2) as pool:
            halves = [(DEVICE_IDS[:60], PROFILE_IDS[:6]), (DEVICE_IDS[60:], PROFILE_IDS[6:])]
            for job in [pool.submit(work, c, d, p, 4) for c, (d, p) in zip(clients, halves, strict=True)]:
                job.result()
        assert sum(c.graph.stats.throttled for c in clients) == 0
        assert sum(c.graph.stats.budget_wait_s for c in clients) > 0  # the budget made them wait
        assert_each_write_once(lab, DEVICE_IDS, PROFILE_IDS)
    assert redis_client.keys(f"fleetfix:graph-budget:{tenant_key}:*")  # the counters live in Redis


def test_redis_budget_counts_like_the_local_one(redis_client: redis.Redis) -> None:
    from orchestrator.transport.graph.budget import Bucket, RequestKind  # noqa: PLC0415

    limits = BudgetLimits(window_s=0.5, headroom=0.0, devices_write=3)
    sleeps: list[float] = []
    budget = RedisBudget(redis_client, f"test-{uuid.uuid4().hex}", limits, sleep=sleeps.append)
    write = RequestKind(Bucket.DEVICES, write=True)
    for _ in range(3):
        assert budget.acquire(write) == 0.0
    assert budget._try(limits.keys(write), 1) > 0.3  # the fourth write must wait for the window
    assert budget.acquire(RequestKind(Bucket.OTHER, write=True)) == 0.0  # not an Intune bucket
