"""Inventory hosts that point at lab hosts, the lab account as a credential, a recording registry."""

from __future__ import annotations

from typing import Any

from lab import HostEndpoint, LabInfo, ScriptRegistry, default_registry
from lab.config import LAB_PASSWORD, LAB_USERNAME
from lab.scripts import Resolution
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.inventory.models import Host

LAB_CREDENTIAL = Credential(LAB_USERNAME, Secret(LAB_PASSWORD))


def lab_host(info: LabInfo, name: str, *, tls: bool = True, auth: str = "basic", **winrm: Any) -> Host:
    """The inventory entry an admin would write for lab host ``name``."""
    endpoint: HostEndpoint = info.endpoint(name)
    settings: dict[str, Any] = {
        "transport": "https" if tls else "http",
        "port": endpoint.https_port if tls else endpoint.http_port,
        "auth": auth,
        "ca_bundle": str(info.ca_bundle),
    } | winrm
    return Host.model_validate(
        {
            "name": name,
            "role": endpoint.role,
            "address": endpoint.address,
            "winrm": settings,
            "credential": "vault:lab",
        }
    )


class RecordingRegistry(ScriptRegistry):
    """The shipped handlers, remembering every script text the lab was asked to run."""

    def __init__(self) -> None:
        super().__init__()
        self._shipped = default_registry()
        self.received: list[str] = []

    def resolve(self, command_text: str, is_script: bool) -> Resolution:
        self.received.append(command_text)
        return self._shipped.resolve(command_text, is_script)

    def script_ids(self) -> frozenset[str]:
        return self._shipped.script_ids()
