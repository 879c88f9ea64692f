"""Intune as an inventory source: managed Windows devices become hosts.

``fleetfix inventory sync-intune`` lists the tenant's managed Windows devices and writes them to a
generated inventory file in the data directory (:data:`INTUNE_FILE`), in the ordinary inventory
format plus an ``intune:`` block of ids per host.  ``inventory list`` and every command that loads
the configured inventory read that file after the hand-written ones, and merge (docs/inventory.md,
"Hosts from Intune"):

* a hand-written host is *the same machine* as a synced one when its ``intune.azure_ad_device_id``
  equals the device's, or its name equals the device name, or its address equals the synced
  address (the FQDN), all without case;
* the hand-written host then wins for everything it says (role, address, WinRM, credential,
  groups, tags) and gains the Intune ids; its ``source`` is ``inventory+intune``;
* a synced device that matches no hand-written host is a host of its own, ``source: intune``.

Everything here is pure except :func:`write_intune_inventory`; the Graph calls happen in the CLI.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.inventory.models import NAME_PATTERN, Host, IntuneIds, Source, name_key

if TYPE_CHECKING:
    from orchestrator.transport.graph.intune import ManagedDevice

INTUNE_FILE = "intune-inventory.yaml"
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def intune_file(data_dir: Path) -> Path:
    """Where the generated Intune inventory lives."""
    return data_dir / INTUNE_FILE


# --- merging at load time ---------------------------------------------------------------------------


def _keys(host: Host) -> set[str]:
    keys = {f"name:{name_key(host.name)}", f"address:{host.address.casefold()}"}
    if host.intune is not None and host.intune.azure_ad_device_id:
        keys.add(f"aad:{host.intune.azure_ad_device_id.casefold()}")
    return keys


def merge_intune_hosts(hand_written: Sequence[Host], synced: Sequence[Host]) -> tuple[Host, ...]:
    """Hand-written hosts (with Intune ids where a synced device is the same machine) plus the rest."""
    index: dict[str, int] = {}
    for position, host in enumerate(hand_written):
        for key in _keys(host):
            index.setdefault(key, position)
    merged = list(hand_written)
    extra: list[Host] = []
    for device in synced:
        found = sorted({index[key] for key in _keys(device) if key in index})
        if not found:
            extra.append(device)
            continue
        host = merged[found[0]]
        if host.source is Source.INVENTORY:  # the first synced device that matches wins
            merged[found[0]] = host.model_copy(update={"source": Source.BOTH, "intune": device.intune})
    return (*merged, *extra)


# --- planning a sync ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncOptions:
    """What the synced hosts get: a WinRM credential reference, a DNS suffix, groups and tags."""

    credential: str
    domain: str | None = None
    groups: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedHost:
    name: str
    address: str
    ids: IntuneIds


@dataclass(frozen=True)
class Skipped:
    device_name: str
    managed_device_id: str
    reason: str


@dataclass(frozen=True)
class SyncPlan:
    hosts: tuple[PlannedHost, ...]
    skipped: tuple[Skipped, ...]


def plan_sync(devices: Iterable[ManagedDevice], options: SyncOptions) -> SyncPlan:
    """Hosts for the managed Windows devices; devices that cannot be hosts are listed with a reason.

    Intune keeps a record per enrolment, so a re-enrolled machine appears twice under one name: the
    record that synced last is the machine, the others are stale.
    """
    newest: dict[str, ManagedDevice] = {}
    skipped: list[Skipped] = []
    for device in sorted(devices, key=lambda d: d.last_sync or "", reverse=True):
        reason = _unusable(device, options)
        if reason is not None:
            skipped.append(Skipped(device.device_name, device.id, reason))
        elif name_key(device.device_name) in newest:
            kept = newest[name_key(device.device_name)]
            skipped.append(Skipped(device.device_name, device.id, f"stale record: {kept.id} synced later"))
        else:
            newest[name_key(device.device_name)] = device
    hosts = tuple(
        PlannedHost(device.device_name, _address(device.device_name, options.domain), _ids(device))
        for device in sorted(newest.values(), key=lambda d: name_key(d.device_name))
    )
    return SyncPlan(
        hosts, tuple(sorted(skipped, key=lambda s: (name_key(s.device_name), s.managed_device_id)))
    )


def _unusable(device: ManagedDevice, options: SyncOptions) -> str | None:
    if device.operating_system.casefold() != "windows":
        return f"not Windows ({device.operating_system})"
    if not re.fullmatch(NAME_PATTERN, device.device_name):
        return "device name is not a valid host name"
    if not _HOST_LABEL.fullmatch(device.device_name) and options.domain:
        return "device name is not a valid DNS label"
    return None


def _address(name: str, domain: str | None) -> str:
    return f"{name}.{domain.strip('.')}".lower() if domain else name.lower()


def _ids(device: ManagedDevice) -> IntuneIds:
    return IntuneIds(
        managed_device_id=device.id,
        azure_ad_device_id=device.azure_ad_device_id,
        device_name=device.device_name,
        os_version=device.os_version or None,
        last_sync=device.last_sync,
    )


# --- the generated file --------------------------------------------------------------------------------


def render_intune_inventory(plan: SyncPlan, options: SyncOptions, synced_at: datetime.datetime) -> str:
    """The generated inventory file's text (YAML, with a header that says not to edit it)."""
    defaults: dict[str, Any] = {"credential": options.credential}
    if options.tags:
        defaults["tags"] = dict(options.tags)
    hosts: dict[str, Any] = {}
    for host in plan.hosts:
        entry: dict[str, Any] = {"role": "endpoint", "address": host.address}
        if options.groups:
            entry["groups"] = list(options.groups)
        entry["intune"] = host.ids.model_dump(exclude_none=True)
        hosts[host.name] = entry
    header = (
        f"# Written by `fleetfix inventory sync-intune` at {synced_at.strftime('%Y-%m-%dT%H:%M:%SZ')}.\n"
        "# Do not edit: the next sync replaces this file. Change hosts in your own inventory files;\n"
        "# a hand-written host with the same name, address or Azure AD device id wins.\n"
    )
    body = yaml.safe_dump({"defaults": defaults, "hosts": hosts}, sort_keys=False, allow_unicode=True)
    return header + body


def write_intune_inventory(path: Path, text: str) -> None:
    """Replace the file atomically, so a concurrent reader sees the old or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".intune-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


__all__ = [
    "INTUNE_FILE",
    "PlannedHost",
    "Skipped",
    "SyncOptions",
    "SyncPlan",
    "intune_file",
    "merge_intune_hosts",
    "plan_sync",
    "render_intune_inventory",
    "write_intune_inventory",
]
