"""A whole scenario served from one event loop: WinRM fleet, Intune tenant, CRL server, control API.

:class:`EstateServer` is the :class:`lab.runner.Server` that ``python -m lab estate`` and
``fleetfix lab up`` run; :class:`EstateLab` runs it in a thread of this process for tests, with
direct access to the estate.  Start order matters: the CRL server's port is bound first because
every certificate names it; the estate is built; then the listeners open and the lab directory is
written (:mod:`lab.estate.workspace`).
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import unquote, urlsplit

from lab.config import FaultSpec
from lab.estate.build import BuiltEstate, build_estate
from lab.estate.control import ControlApi, change_dict
from lab.estate.model import Clock, utc_now
from lab.estate.truth import derive_truth
from lab.estate.tunnels import active_connections
from lab.estate.web import Reply, WebListener
from lab.estate.workspace import TenantAccess, remove_state, write_state, write_workspace
from lab.graph.server import TenantInfo, TenantServer
from lab.http import HttpRequest
from lab.runner import ThreadRunner, WorkDir
from lab.scenarios.model import Scenario
from lab.scripts import ScriptRegistry, default_registry
from lab.server import FleetServer, LabInfo

READY_PREFIX = "FLEETFIX-ESTATE-READY "
T = TypeVar("T")


@dataclass(frozen=True)
class EstateInfo:
    """Where a running estate listens; what ``lab.json`` holds (plus the pid and control token)."""

    scenario: str
    seed: str
    directory: Path
    fleet: LabInfo
    tenant: TenantInfo | None
    crl_base_url: str
    control_url: str
    control_token: str
    started_at: str
    pid: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "directory": str(self.directory),
            "pid": self.pid,
            "started_at": self.started_at,
            "crl_base_url": self.crl_base_url,
            "control_url": self.control_url,
            "control_token": self.control_token,
            "tenant": None if self.tenant is None else self.tenant.to_dict(),
            "fleet": self.fleet.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EstateInfo:
        tenant = data.get("tenant")
        return cls(
            scenario=data["scenario"],
            seed=data["seed"],
            directory=Path(data["directory"]),
            fleet=LabInfo.from_dict(data["fleet"]),
            tenant=None if tenant is None else TenantInfo.from_dict(tenant),
            crl_base_url=data["crl_base_url"],
            control_url=data["control_url"],
            control_token=data["control_token"],
            started_at=data["started_at"],
            pid=int(data["pid"]),
        )


class EstateServer:
    """Serve one scenario until :meth:`stop`; everything runs on the caller's event loop."""

    def __init__(
        self,
        scenario: Scenario,
        directory: Path,
        *,
        registry: ScriptRegistry | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.scenario = scenario
        self.directory = directory
        self.registry = registry or default_registry()
        self.clock = clock
        self.built: BuiltEstate | None = None
        self.fleet: FleetServer | None = None
        self.tenant: TenantServer | None = None
        self.crl = WebListener(self._crl_reply)
        self.control = WebListener(self._control_reply)
        self._token = secrets.token_urlsafe(24)
        self._api = ControlApi(self._token, {"/status": self.status, "/truth": self.truth,
                                             "/changes": self.changes, "/faults": self.faults,
                                             "/connections": self.connections})  # fmt: skip
        self.info: EstateInfo | None = None

    @property
    def estate_built(self) -> BuiltEstate:
        if self.built is None:
            raise RuntimeError("the estate is not running")
        return self.built

    async def start(self) -> EstateInfo:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.crl.bind()
        self.built = build_estate(self.scenario, cdp_base_url=self.crl.base_url, clock=self.clock)
        self.fleet = FleetServer(
            self.built.fleet, self.directory, self.registry, states=self.built.estate.hosts
        )
        try:
            fleet_info = await self.fleet.start()
            tenant_info = await self._start_tenant()
            await self.crl.start()
            control_url = await self.control.start()
        except BaseException:
            await self.stop()
            raise
        self.info = EstateInfo(
            scenario=self.scenario.name,
            seed=self.scenario.seed,
            directory=self.directory,
            fleet=fleet_info,
            tenant=tenant_info,
            crl_base_url=self.crl.base_url,
            control_url=control_url,
            control_token=self._token,
            started_at=_iso(self.clock()),
            pid=os.getpid(),
        )
        write_workspace(self.directory, self.built, fleet_info, self._tenant_access(tenant_info))
        write_state(self.directory, self.info.to_dict())
        return self.info

    async def _start_tenant(self) -> TenantInfo | None:
        built = self.estate_built
        if built.tenant is None:
            return None
        self.tenant = TenantServer(built.tenant.config, self.directory, state=built.tenant.state)
        return await self.tenant.start()

    def _tenant_access(self, info: TenantInfo | None) -> TenantAccess | None:
        tenant = self.estate_built.tenant
        if tenant is None or info is None:
            return None
        client_id = tenant.config.apps[0].client_id
        return TenantAccess(tenant.config.tenant_id, client_id, tenant.secret, info.base_url)

    async def stop(self) -> None:
        for listener in (self.control, self.crl):
            await listener.stop()
        if self.tenant is not None:
            await self.tenant.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        if self.info is not None:
            remove_state(self.directory)
        self.info = None

    # -- what the control API and the CRL server answer ---------------------------------------------

    def status(self) -> dict[str, Any]:
        built = self.estate_built
        counts = {role: sum(1 for _ in built.estate.by_role(role)) for role in ("endpoint", "rras", "ca")}
        info = self.info
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "pid": os.getpid(),
            "started_at": info.started_at if info else None,
            "directory": str(self.directory),
            "hosts": counts,
            "faults_injected": len(built.estate.injected),
            "winrm": {
                "transport": self.scenario.winrm.transport,
                "addressing": self.scenario.winrm.addressing,
            },
            "tenant_url": info.tenant.base_url if info and info.tenant else None,
            "crl_base_url": self.crl.base_url,
            "control_url": info.control_url if info else None,
            "rss_mb": _rss_mb(),
        }

    def truth(self) -> dict[str, Any]:
        """Every finding a sweep must report, and the hosts a sweep cannot fully reach."""
        built = self.estate_built
        entries = [entry.to_dict() for entry in derive_truth(built.estate, built.tenant_state)]
        transport = {
            config.name: config.faults.model_dump(exclude_defaults=True)
            for config in built.fleet.hosts
            if config.faults != FaultSpec()
        }
        return {"truth": entries, "transport_faults": transport}

    def changes(self) -> dict[str, list[dict[str, Any]]]:
        hosts = sorted(self.estate_built.estate.hosts.values(), key=lambda state: state.name)
        return {state.name: [change_dict(c) for c in state.change_log()] for state in hosts if state.changes}

    def connections(self) -> dict[str, int]:
        """Sessions up per RRAS node (``Get-RemoteAccessConnectionStatistics | Measure-Object``)."""
        estate = self.estate_built.estate
        now = estate.now()
        estate.refresh_crls()
        return {
            state.name: len(active_connections(estate, state.name, now)) for state in estate.rras_servers()
        }

    def faults(self) -> list[dict[str, Any]]:
        return [
            {"host": item.host, "fault": item.fault, "subject": item.subject, "params": dict(item.params)}
            for item in self.estate_built.estate.injected
        ]

    async def _control_reply(self, request: HttpRequest) -> Reply:
        return await self._api(request)

    async def _crl_reply(self, request: HttpRequest) -> Reply:
        """The CDP and AIA: ``/CertEnroll/<CA>.crl`` (base), ``<CA>+.crl`` (delta), ``<CA>.crt``."""
        estate = self.estate_built.estate
        path = unquote(urlsplit(request.target).path)
        if request.method != "GET" or not path.startswith("/CertEnroll/"):
            return Reply(404)
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".crt"):
            certificate = estate.ca_certificate_file(name)
            return Reply(404) if certificate is None else Reply(200, certificate, "application/pkix-cert")
        estate.refresh_crls()
        crl = estate.crl_at(request.target)
        return Reply(404) if crl is None else Reply(200, crl.der, "application/pkix-crl")


def _rss_mb() -> float | None:
    """This process's resident memory (Linux), for the scale figures."""
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


class EstateLab:
    """A scenario served from a daemon thread of this process (tests, notebooks)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        directory: Path | None = None,
        registry: ScriptRegistry | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._dir = WorkDir(directory)
        self.server = EstateServer(scenario, self._dir.path, registry=registry, clock=clock)
        self._runner = ThreadRunner(self.server, name="fleetfix-estate", start_timeout_s=600.0)

    @property
    def info(self) -> EstateInfo:
        return self._runner.info

    @property
    def built(self) -> BuiltEstate:
        return self.server.estate_built

    def run(self, func: Callable[[], T], timeout: float = 600.0) -> T:
        """Run ``func`` on the lab's event loop (where state may be read and changed)."""
        return self._runner.loop.run(func, timeout)

    def truth(self) -> dict[str, Any]:
        return self.run(self.server.truth)

    def changes(self) -> dict[str, list[dict[str, Any]]]:
        return self.run(self.server.changes)

    def start(self) -> EstateInfo:
        return self._runner.start()

    def stop(self) -> None:
        if self._runner.loop.running:
            self._runner.stop()
            self._dir.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


__all__ = ["READY_PREFIX", "EstateInfo", "EstateLab", "EstateServer"]
