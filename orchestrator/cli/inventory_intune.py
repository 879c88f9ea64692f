"""``fleetfix inventory sync-intune``: merge the tenant's managed Windows devices into the inventory.

Registered on the ``inventory`` group by :mod:`orchestrator.cli.inventory`.

Lists the devices through Graph (settings ``[graph]``), plans hosts for them
(:func:`orchestrator.inventory.intune.plan_sync`) and writes the generated inventory file in the
data directory; ``--dry-run`` only reports.  The Graph client and msal are imported inside the
command, so other inventory commands start without them.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import (
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    render_table,
    stderr,
)
from orchestrator.config import Settings
from orchestrator.credentials.reference import parse_reference
from orchestrator.errors import InputError
from orchestrator.inventory.intune import (
    SyncOptions,
    SyncPlan,
    intune_file,
    merge_intune_hosts,
    plan_sync,
    render_intune_inventory,
    write_intune_inventory,
)
from orchestrator.inventory.loader import load_inventory
from orchestrator.inventory.models import Host, Source


def _options(
    credential: str | None, domain: str | None, groups: list[str] | None, tags: list[str] | None
) -> SyncOptions:
    if not credential:
        raise InputError(
            "synced hosts need a WinRM credential: pass --credential vault:NAME", field="--credential"
        )
    try:
        parse_reference(credential)
    except ValueError as exc:
        raise InputError(str(exc), field="--credential") from None
    parsed_tags: dict[str, str] = {}
    for item in tags or []:
        key, _, value = item.partition("=")
        if not key:
            raise InputError(f"tag {item!r} has no key; write KEY=VALUE", field="--tag")
        parsed_tags[key] = value
    return SyncOptions(credential=credential, domain=domain, groups=tuple(groups or ()), tags=parsed_tags)


def _matched(settings: Settings, planned: list[Host]) -> list[str]:
    """Names of the configured hand-written hosts that are the same machines as synced devices."""
    if not settings.inventory:
        return []
    merged = merge_intune_hosts(load_inventory(settings.inventory).hosts, planned)
    return [host.name for host in merged if host.source is Source.BOTH]


def _document(
    plan: SyncPlan, path: str, matched: list[str], previous: set[str], dry_run: bool
) -> dict[str, Any]:
    names = [host.name for host in plan.hosts]
    return {
        "file": path,
        "dry_run": dry_run,
        "count": len(names),
        "added": sorted(set(names) - previous),
        "removed": sorted(previous - set(names)),
        "matched": matched,
        "skipped": [vars(skip) for skip in plan.skipped],
    }


@command
def sync_intune(  # noqa: PLR0917 - typer passes options positionally
    ctx: typer.Context,
    credential: Annotated[
        str | None,
        typer.Option("--credential", help="WinRM credential reference for the synced hosts (vault:NAME)"),
    ] = None,
    domain: Annotated[
        str | None, typer.Option("--domain", help="DNS suffix: address = <device name>.<domain>")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="group for every synced host (repeatable)")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="KEY=VALUE tag for every synced host (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would change; write nothing")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Merge Intune's managed Windows devices into the inventory (a generated file in the data dir)."""
    from orchestrator.credentials.vault import Vault  # noqa: PLC0415
    from orchestrator.transport.graph import open_intune  # noqa: PLC0415

    options = _options(credential, domain, group, tag)
    settings = app_state(ctx).settings
    with open_intune(settings, vault=Vault.from_settings(settings)) as intune:
        plan = plan_sync(intune.managed_devices(), options)
    path = intune_file(settings.data_dir)
    text = render_intune_inventory(plan, options, datetime.datetime.now(datetime.UTC))
    previous = set(_previous_names(path))
    planned = _planned_hosts(plan, options)
    matched = _matched(settings, planned)
    if not dry_run:
        write_intune_inventory(path, text)
    document = _document(plan, str(path), matched, previous, dry_run)
    if output is OutputFormat.json:
        emit_json(document)
        return
    verb = "would write" if dry_run else "wrote"
    stderr.print(f"{verb} {document['count']} hosts to {path}", markup=False, highlight=False)
    render_table(
        "changes",
        ("added", "removed", "matched hand-written"),
        [(", ".join(document["added"]), ", ".join(document["removed"]), ", ".join(matched))],
    )
    if plan.skipped:
        render_table(
            "skipped devices",
            ("device", "id", "reason"),
            ((s.device_name, s.managed_device_id, s.reason) for s in plan.skipped),
        )


def _previous_names(path: Path) -> list[str]:
    import yaml  # noqa: PLC0415

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    hosts = data.get("hosts") if isinstance(data, dict) else None
    return [str(name) for name in hosts] if isinstance(hosts, dict) else []


def _planned_hosts(plan: SyncPlan, options: SyncOptions) -> list[Host]:
    return [
        Host(
            name=host.name,
            role="endpoint",
            address=host.address,
            credential=options.credential,
            source=Source.INTUNE,
            intune=host.ids,
        )
        for host in plan.hosts
    ]


__all__ = ["sync_intune"]
