"""The lab directory: what ``fleetfix lab up`` leaves for fleetfix to use the lab at once.

* ``inventory.yaml`` — every host with its address, WinRM settings and ``vault:lab``;
* ``fleetfix.toml`` — ``data_dir = "data"``, that inventory, and the simulated Intune tenant in
  ``[graph]`` (client secret ``vault:lab-graph``), so ``fleetfix -c DIR/fleetfix.toml inventory
  list`` and ``exec-probe`` work right away;
* ``data/credentials.json`` and ``data/master.key`` — the vault with the lab accounts (lab material:
  loopback only, never a real secret);
* ``ca.pem`` — the CA bundle of the WinRM and Graph listeners;
* ``lab.json`` (mode 0600) — where the lab listens, its pid and the control token.

Paths in the files are relative to the directory, so it can be moved while the lab is down.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.config import LAB_PASSWORD, LAB_USERNAME, HostConfig
from lab.estate.build import BuiltEstate
from lab.estate.model import EndpointUser
from lab.server import LabInfo

STATE_FILE = "lab.json"
INVENTORY_FILE = "inventory.yaml"
CONFIG_FILE = "fleetfix.toml"
DATA_DIR = "data"
WINRM_CREDENTIAL = "lab"
GRAPH_CREDENTIAL = "lab-graph"


@dataclass(frozen=True)
class TenantAccess:
    tenant_id: str
    client_id: str
    secret: str
    base_url: str


def _winrm(config: HostConfig, info: LabInfo, auth: str) -> dict[str, Any]:
    endpoint = info.endpoint(config.name)
    https = endpoint.https_port is not None
    settings: dict[str, Any] = {
        "transport": "https" if https else "http",
        "port": endpoint.https_port if https else endpoint.http_port,
        "auth": auth,
    }
    if https:
        settings["ca_bundle"] = "ca.pem"
    return settings


def inventory(built: BuiltEstate, info: LabInfo) -> dict[str, Any]:
    """The inventory of every lab host, grouped by role, endpoints tagged with their Intune ids."""
    auth = built.scenario.winrm.auth
    hosts: dict[str, Any] = {}
    for config in built.fleet.hosts:
        entry: dict[str, Any] = {
            "role": config.role,
            "address": config.address,
            "groups": [config.role],
            "winrm": _winrm(config, info, auth),
        }
        user = built.estate.host(config.name).find(EndpointUser)
        if user is not None and user.intune_device_id is not None:
            entry["intune"] = {"managed_device_id": user.intune_device_id, "device_name": config.name}
        hosts[config.name.lower()] = entry
    groups = {role: {"tags": {"lab": built.scenario.name}} for role in ("endpoint", "rras", "ca")}
    return {"defaults": {"credential": f"vault:{WINRM_CREDENTIAL}"}, "groups": groups, "hosts": hosts}


def config_text(tenant: TenantAccess | None) -> str:
    lines = [
        "# Written by `fleetfix lab up`: this lab's hosts, vault and Intune tenant.",
        f'data_dir = "{DATA_DIR}"',
        f'inventory = ["{INVENTORY_FILE}"]',
    ]
    if tenant is not None:
        lines += [
            "",
            "[graph]",
            f'tenant_id = "{tenant.tenant_id}"',
            f'client_id = "{tenant.client_id}"',
            f'client_secret = "vault:{GRAPH_CREDENTIAL}"',
            f'authority = "{tenant.base_url}"',
            f'graph_url = "{tenant.base_url}"',
            'ca_bundle = "ca.pem"',
        ]
    return "\n".join(lines) + "\n"


def write_vault(directory: Path, tenant: TenantAccess | None) -> None:
    """The lab accounts in the lab's own vault (its key file sits next to it, as fleetfix makes one)."""
    from orchestrator.credentials.masterkey import MasterKeySource, generate_master_key  # noqa: PLC0415
    from orchestrator.credentials.vault import Vault  # noqa: PLC0415

    data = directory / DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    key = data / "master.key"
    if not key.exists():  # made here, quietly: the lab's key needs no "back it up" warning
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(generate_master_key() + "\n")
    vault = Vault(data / "credentials.json", MasterKeySource(key, {}))
    vault.set(WINRM_CREDENTIAL, LAB_USERNAME, LAB_PASSWORD)
    if tenant is not None:
        vault.set(GRAPH_CREDENTIAL, tenant.client_id, tenant.secret)


def write_workspace(directory: Path, built: BuiltEstate, info: LabInfo, tenant: TenantAccess | None) -> None:
    (directory / INVENTORY_FILE).write_text(
        "# Written by `fleetfix lab up`.\n" + yaml.safe_dump(inventory(built, info), sort_keys=False),
        encoding="utf-8",
    )
    (directory / CONFIG_FILE).write_text(config_text(tenant), encoding="utf-8")
    write_vault(directory, tenant)


def write_state(directory: Path, state: dict[str, Any]) -> Path:
    path = directory / STATE_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    return path


def read_state(directory: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data


def remove_state(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)


__all__ = [
    "CONFIG_FILE",
    "DATA_DIR",
    "GRAPH_CREDENTIAL",
    "INVENTORY_FILE",
    "STATE_FILE",
    "WINRM_CREDENTIAL",
    "TenantAccess",
    "config_text",
    "inventory",
    "read_state",
    "remove_state",
    "write_state",
    "write_workspace",
]
