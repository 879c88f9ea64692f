"""Intune as an inventory source: planning, the generated file, merging, and the CLI end to end."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from textwrap import dedent

from lab.graph import AppCertificate, Device, TenantConfig, TenantLab, numbered_devices
from orchestrator.inventory import load_inventory
from orchestrator.inventory.intune import (
    SyncOptions,
    intune_file,
    merge_intune_hosts,
    plan_sync,
    render_intune_inventory,
    write_intune_inventory,
)
from orchestrator.inventory.models import Host, IntuneIds, Source
from orchestrator.transport.graph.intune import ManagedDevice
from tests.clirun import Cli
from tests.graph.support import SECRET, SECRET_APP, apps

NOW = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
OPTIONS = SyncOptions(
    credential="vault:endpoint-admin", domain="corp.example.com", tags={"managed": "intune"}
)


def device(
    device_id: str,
    name: str,
    *,
    aad: str | None = None,
    last_sync: str = "2025-02-01T00:00:00Z",
    os: str = "Windows",
) -> ManagedDevice:
    return ManagedDevice(device_id, name, aad or f"aad-{device_id}", os, "10.0.22631.4460", last_sync)


def hand_host(name: str, address: str, aad: str | None = None) -> Host:
    ids = IntuneIds(managed_device_id="pinned", azure_ad_device_id=aad) if aad else None
    return Host(name=name, role="endpoint", address=address, credential="vault:x", intune=ids)


def test_plan_keeps_the_newest_record_and_skips_unusable_devices() -> None:
    plan = plan_sync(
        [
            device("d1", "EP-1", last_sync="2025-01-01T00:00:00Z"),
            device("d2", "ep-1", last_sync="2025-02-01T00:00:00Z"),  # re-enrolled: the live record
            device("d3", "Jane's Surface"),
            device("d4", "MAC-1", os="macOS"),
            device("d5", "EP_2"),  # a valid host name, but not a DNS label for the FQDN
        ],
        OPTIONS,
    )
    assert [(h.name, h.address, h.ids.managed_device_id) for h in plan.hosts] == [
        ("ep-1", "ep-1.corp.example.com", "d2")
    ]
    assert {s.managed_device_id: s.reason.split(":")[0] for s in plan.skipped} == {
        "d1": "stale record",
        "d3": "device name is not a valid host name",
        "d4": "not Windows (macOS)",
        "d5": "device name is not a valid DNS label",
    }


def test_merge_matches_by_name_address_or_azure_ad_id() -> None:
    hand = (
        hand_host("vpn-laptop", "10.0.0.5", aad="aad-x"),
        hand_host("EP-2", "10.0.0.6"),
        hand_host("kiosk", "ep-3.corp.example.com"),
    )
    synced = [
        Host(
            name=n,
            role="endpoint",
            address=f"{n.lower()}.corp.example.com",
            credential="vault:y",
            source=Source.INTUNE,
            intune=IntuneIds(managed_device_id=i, azure_ad_device_id=a),
        )
        for n, i, a in (
            ("LAPTOP-7", "m1", "AAD-X"),
            ("ep-2", "m2", None),
            ("EP-3", "m3", None),
            ("EP-4", "m4", None),
        )
    ]
    merged = {host.name: host for host in merge_intune_hosts(hand, synced)}
    assert {
        name: (h.source.value, h.intune.managed_device_id if h.intune else None) for name, h in merged.items()
    } == {
        "vpn-laptop": ("inventory+intune", "m1"),
        "EP-2": ("inventory+intune", "m2"),
        "kiosk": ("inventory+intune", "m3"),
        "EP-4": ("intune", "m4"),
    }
    assert merged["EP-2"].address == "10.0.0.6"  # the hand-written host wins
    assert merged["EP-2"].credential == hand[1].credential


def test_generated_file_loads_and_merges(tmp_path: Path) -> None:
    hand = tmp_path / "inventory.yaml"
    hand.write_text(
        dedent("""\
            groups:
              laptops: {tags: {kind: laptop}}
            hosts:
              EP-0002: {role: endpoint, address: 10.1.0.2, credential: vault:special}
        """),
        encoding="utf-8",
    )
    plan = plan_sync(
        [device("d1", "EP-0001"), device("d2", "EP-0002")], SyncOptions("vault:ep", groups=("laptops",))
    )
    path = intune_file(tmp_path / "data")
    write_intune_inventory(
        path, render_intune_inventory(plan, SyncOptions("vault:ep", groups=("laptops",)), NOW)
    )
    assert path.read_text(encoding="utf-8").startswith(
        "# Written by `fleetfix inventory sync-intune` at 2025-03-01T12:00:00Z"
    )
    inventory = load_inventory([hand], intune_file=path)
    ep1, ep2 = inventory["EP-0001"], inventory["EP-0002"]
    assert (ep1.source, ep1.address, ep1.groups, ep1.tags, str(ep1.credential)) == (
        Source.INTUNE,
        "ep-0001",
        ("laptops",),
        {"kind": "laptop"},
        "vault:ep",
    )
    assert ep1.intune is not None
    assert ep1.intune.managed_device_id == "d1"
    assert (ep2.source, ep2.address, str(ep2.credential)) == (Source.BOTH, "10.1.0.2", "vault:special")
    assert ep2.intune is not None
    assert ep2.intune.azure_ad_device_id == "aad-d2"


def test_sync_intune_command_end_to_end(app_cert: AppCertificate, cli: Cli, tmp_path: Path) -> None:
    devices = (
        *numbered_devices(3),
        Device(id="stale", device_name="EP-0003", last_sync="2023-01-01T00:00:00Z"),
    )
    with TenantLab(TenantConfig(apps=apps(app_cert), devices=devices, page_size=2)) as lab:
        (tmp_path / "inventory.yaml").write_text(
            "hosts:\n  EP-0001: {role: endpoint, address: 10.9.0.1, credential: vault:mine}\n",
            encoding="utf-8",
        )
        (tmp_path / "fleetfix.toml").write_text(
            dedent(f"""\
                data_dir = "data"
                inventory = ["inventory.yaml"]
                [graph]
                tenant_id = "{lab.info.tenant_id}"
                client_id = "{SECRET_APP}"
                authority = "{lab.info.base_url}"
                graph_url = "{lab.info.base_url}"
                client_secret = "env:FLEETFIX_TEST_GRAPH_SECRET"
                ca_bundle = "{lab.info.ca_bundle}"
            """),
            encoding="utf-8",
        )
        cli.env["FLEETFIX_TEST_GRAPH_SECRET"] = SECRET
        args = (
            "--config",
            "fleetfix.toml",
            "inventory",
            "sync-intune",
            "--credential",
            "vault:ep",
            "--domain",
            "corp.test",
        )
        dry = cli.json(*args, "--dry-run")
        assert (dry["dry_run"], dry["count"], dry["added"], dry["matched"]) == (
            True,
            3,
            ["EP-0001", "EP-0002", "EP-0003"],
            ["EP-0001"],
        )
        assert [s["managed_device_id"] for s in dry["skipped"]] == ["stale"]
        assert not (tmp_path / "data" / "intune-inventory.yaml").exists()
        done = cli.json(*args)
        assert done["file"].endswith("intune-inventory.yaml")
        assert cli.json(*args)["added"] == []  # a second sync changes nothing
        listed = cli.json("--config", "fleetfix.toml", "inventory", "list")
        sources = {
            h["name"]: (h["source"], h["address"], (h["intune"] or {}).get("managed_device_id"))
            for h in listed["hosts"]
        }
        assert sources == {
            "EP-0001": ("inventory+intune", "10.9.0.1", "dev-0001"),
            "EP-0002": ("intune", "ep-0002.corp.test", "dev-0002"),
            "EP-0003": ("intune", "ep-0003.corp.test", "dev-0003"),
        }
        table = cli.run("--config", "fleetfix.toml", "inventory", "list", "--limit", "EP-0002")
        assert table.returncode == 0
        assert "source" in table.stdout
        assert "intune" in table.stdout
        # --inventory replaces the configured inventory, Intune hosts included
        only = cli.json("--config", "fleetfix.toml", "inventory", "list", "--inventory", "inventory.yaml")
        assert [h["source"] for h in only["hosts"]] == ["inventory"]


def test_sync_intune_errors(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "fleetfix.toml").write_text('data_dir = "data"\n', encoding="utf-8")
    missing = cli.run("--config", "fleetfix.toml", "inventory", "sync-intune", "-o", "json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["error"]["field"] == "--credential"
    unconfigured = cli.run(
        "--config", "fleetfix.toml", "inventory", "sync-intune", "--credential", "vault:x", "-o", "json"
    )
    assert unconfigured.returncode == 2
    assert json.loads(unconfigured.stdout)["error"]["kind"] == "config"
