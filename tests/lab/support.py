"""Helpers for the lab tests: the real pypsrp client against lab hosts, shipped scripts, test handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from lab import HostEndpoint, Lab, ScriptCall, ScriptRegistry, default_registry
from lab.config import LAB_PASSWORD, LAB_USERNAME

REPO = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO / "orchestrator" / "scripts"


def shipped_script(script_id: str) -> str:
    return (SCRIPTS_DIR / f"{script_id}.ps1").read_text(encoding="utf-8")


def script_with_id(script_id: str, body: str = "param()\n") -> str:
    """A script text carrying an id header, for handlers the tests register themselves."""
    return f"# fleetfix-script: {script_id}\n{body}"


def wsman(
    endpoint: HostEndpoint,
    *,
    auth: str = "basic",
    tls: bool = True,
    ca_bundle: Path | None = None,
    username: str = LAB_USERNAME,
    password: str = LAB_PASSWORD,
    **overrides: Any,
) -> WSMan:
    """A pypsrp WSMan for a lab host with tight timeouts (the lab answers in milliseconds)."""
    port = endpoint.https_port if tls else endpoint.http_port
    options: dict[str, Any] = {
        "port": port,
        "ssl": tls,
        "auth": auth,
        "username": username,
        "password": password,
        "no_proxy": True,
        "operation_timeout": 5,
        "read_timeout": 10,
        "connection_timeout": 5,
        "reconnection_retries": 0,
        "reconnection_backoff": 0.1,
    }
    if tls:
        options["cert_validation"] = str(ca_bundle) if ca_bundle else True
    elif auth == "basic":
        options["encryption"] = "never"  # pypsrp refuses Basic over HTTP otherwise
    options.update(overrides)
    return WSMan(endpoint.address, **options)


def run(pool: RunspacePool, script: str, **params: Any) -> PowerShell:
    """Invoke one script with named parameters on an open pool; returns the finished PowerShell."""
    ps = PowerShell(pool)
    ps.add_script(script)
    for name, value in params.items():
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


class Captured:
    """Parameters as test handlers received them, by script id."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = {}


def lab_registry(captured: Captured) -> ScriptRegistry:
    """The shipped handlers plus a few test-only ones (streaming, never-ending, capturing)."""
    extra = ScriptRegistry()

    @extra.script("test.capture")
    def capture(call: ScriptCall) -> list[object]:
        captured.calls.setdefault(call.script_id, []).append(dict(call.params))
        return ["captured"]

    @extra.script("test.stream")
    async def stream(call: ScriptCall) -> None:
        count = int(call.params.get("Count", 3))
        interval = float(call.params.get("Interval", 0.5))
        for index in range(count):
            await asyncio.sleep(interval)
            call.write_output(f"tick {index}")

    @extra.script("test.forever")
    async def forever(call: ScriptCall) -> None:
        call.write_output("started")
        await asyncio.Event().wait()

    return default_registry().merged(extra)


def start_lab(fleet: Any, captured: Captured) -> Iterator[Lab]:
    with Lab(fleet, registry=lab_registry(captured)) as lab:
        yield lab
