"""``fleetfix inventory``: see which hosts fleetfix knows and which ones a ``--limit`` selects, and
bring in the tenant's managed Windows devices from Intune (``sync-intune``).

The options and :func:`selected_hosts` are meant for every command that works on hosts, so that
``--inventory`` and ``--limit`` behave the same everywhere.  The configured inventory includes the
hosts synced from Intune; ``--inventory`` replaces both (docs/inventory.md, "Hosts from Intune").
"""

from __future__ import annotations

from collections.abc import Sequence
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
from orchestrator.cli.inventory_intune import sync_intune
from orchestrator.errors import InputError
from orchestrator.inventory import Host, Inventory, load_inventory, parse_selector, select
from orchestrator.inventory.intune import intune_file

app = typer.Typer(help="Inspect the inventory and --limit selections.", no_args_is_help=True)
app.command("sync-intune")(sync_intune)

LimitOption = Annotated[
    str | None,
    typer.Option(
        "--limit", "-l", help="select hosts, e.g. 'role:endpoint and not tag:ring=canary' (docs/inventory.md)"
    ),
]
InventoryOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--inventory", "-i", help="inventory YAML file; repeat for several (replaces the config's list)"
    ),
]


def inventory_paths(ctx: typer.Context, given: Sequence[Path] | None) -> list[Path]:
    """The inventory files to load: ``--inventory`` if given, else the config's ``inventory`` list."""
    if given:
        return list(given)
    configured = app_state(ctx).settings.inventory
    if not configured and _synced_file(ctx) is None:
        raise InputError(
            "no inventory: set `inventory` in fleetfix.toml or pass --inventory PATH", field="inventory"
        )
    return list(configured)


def _synced_file(ctx: typer.Context) -> Path | None:
    path = intune_file(app_state(ctx).settings.data_dir)
    return path if path.is_file() else None


def load_selected_inventory(ctx: typer.Context, inventory: Sequence[Path] | None) -> Inventory:
    """``--inventory`` files alone, or the configured files plus the hosts synced from Intune."""
    paths = inventory_paths(ctx, inventory)
    return load_inventory(paths, intune_file=None if inventory else _synced_file(ctx))


def selected_hosts(
    ctx: typer.Context, inventory: Sequence[Path] | None, limit: str | None
) -> tuple[Host, ...]:
    """Load the inventory and apply ``--limit``. The selector is parsed first: a typo fails fast."""
    selector = parse_selector(limit) if limit is not None else None
    return select(load_selected_inventory(ctx, inventory), selector)


def hosts_document(hosts: Sequence[Host]) -> dict[str, Any]:
    """The JSON document of ``inventory list`` (schema in docs/cli-json.md)."""
    return {"count": len(hosts), "hosts": [host.model_dump(mode="json") for host in hosts]}


def _tags_text(host: Host) -> str:
    return ", ".join(f"{key}={value}" if value else key for key, value in host.tags.items())


def _table_row(host: Host) -> tuple[str, ...]:
    return (
        host.name,
        host.role.value,
        host.address,
        f"{host.winrm.transport.value}:{host.winrm.port}",
        host.winrm.auth.value,
        ", ".join(host.groups),
        _tags_text(host),
        str(host.credential),
        host.source.value,
    )


@app.command("list")
@command
def list_hosts(
    ctx: typer.Context,
    limit: LimitOption = None,
    inventory: InventoryOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the hosts of the inventory (those matching --limit), sorted by name."""
    hosts = selected_hosts(ctx, inventory, limit)
    if output is OutputFormat.json:
        emit_json(hosts_document(hosts))
        return
    if not hosts:
        stderr.print("no hosts match" if limit is not None else "the inventory has no hosts")
        return
    render_table(
        f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}",
        ("name", "role", "address", "transport:port", "auth", "groups", "tags", "credential", "source"),
        (_table_row(host) for host in hosts),
    )


__all__ = [
    "InventoryOption",
    "LimitOption",
    "app",
    "hosts_document",
    "inventory_paths",
    "load_selected_inventory",
    "selected_hosts",
]
