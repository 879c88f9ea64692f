"""``fleetfix lab``: a simulated Always On VPN estate to sweep and fix, with ground truth.

Thin: parses options, calls :mod:`lab.estate.manage`, renders.  ``lab up`` writes an inventory and
a ``fleetfix.toml`` in the lab directory, so ``fleetfix -c DIR/fleetfix.toml ...`` works against
the lab at once.  JSON shapes are in docs/cli-json.md ("lab").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import OutputFormat, OutputOption, command, emit_json, render_table, stdout

app = typer.Typer(
    help="A simulated fleet (WinRM hosts, Intune tenant, PKI and CRL server) with injected faults.",
    no_args_is_help=True,
)

DEFAULT_DIR = Path("fleetfix-lab")
DirOption = Annotated[
    Path, typer.Option("--dir", help="The lab directory (state, inventory, fleetfix.toml, logs).")
]


def _up_document(info: Any, elapsed_s: float, detached: bool) -> dict[str, Any]:
    directory = Path(info.directory)
    counts: dict[str, int] = {}
    for endpoint in info.fleet.endpoints.values():
        counts[endpoint.role] = counts.get(endpoint.role, 0) + 1
    return {
        "scenario": info.scenario,
        "directory": str(directory),
        "pid": info.pid,
        "detached": detached,
        "config": str(directory / "fleetfix.toml"),
        "inventory": str(directory / "inventory.yaml"),
        "ca_bundle": str(info.fleet.ca_bundle),
        "hosts": counts,
        "tenant_url": info.tenant.base_url if info.tenant else None,
        "crl_base_url": info.crl_base_url,
        "control_url": info.control_url,
        "started_in_s": round(elapsed_s, 2),
    }


def _print_up(document: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        emit_json(document)
        return
    hosts = ", ".join(f"{count} {role}" for role, count in sorted(document["hosts"].items()))
    stdout.print(f"lab {document['scenario']} up in {document['started_in_s']} s: {hosts}", highlight=False)
    stdout.print(f"use it: fleetfix -c {document['config']} inventory list", highlight=False)
    if not document["detached"]:
        stdout.print("serving until Ctrl+C", highlight=False)


@app.command("up")
@command
def up_command(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="Built-in scenario name or a scenario YAML file.")
    ] = "healthy",
    hosts: Annotated[
        int | None, typer.Option("--hosts", min=0, help="Number of endpoints (overrides).")
    ] = None,
    directory: DirOption = DEFAULT_DIR,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; stop with lab down.")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Start the lab: WinRM hosts, Intune tenant, CRL server; write inventory and fleetfix.toml."""
    from lab.estate import manage  # noqa: PLC0415 (the lab loads only for lab commands)

    started = time.monotonic()
    if detach:
        info = manage.start_detached(scenario, directory, hosts=hosts)
        _print_up(_up_document(info, time.monotonic() - started, True), output)
        return
    manage.run_foreground(
        scenario,
        directory,
        hosts=hosts,
        on_ready=lambda info: _print_up(_up_document(info, time.monotonic() - started, False), output),
    )


@app.command("status")
@command
def status_command(directory: DirOption = DEFAULT_DIR, output: OutputOption = OutputFormat.table) -> None:
    """Is a lab running here, and what is it (exit 1 when none is)."""
    from lab.estate.manage import LabHandle  # noqa: PLC0415

    handle = LabHandle(directory)
    if not handle.running():
        document: dict[str, Any] = {"running": False, "directory": str(directory)}
        if output is OutputFormat.json:
            emit_json(document)
        else:
            stdout.print(f"no lab running in {directory}", highlight=False)
        raise typer.Exit(1)
    document = {"running": True, **handle.get("/status")}
    if output is OutputFormat.json:
        emit_json(document)
        return
    rows = [(key, value) for key, value in document.items() if key != "running"]
    render_table(f"lab in {directory}", ("key", "value"), rows)


@app.command("down")
@command
def down_command(directory: DirOption = DEFAULT_DIR, output: OutputOption = OutputFormat.table) -> None:
    """Stop the lab running in the directory (nothing to do is not an error)."""
    from lab.estate.manage import LabHandle  # noqa: PLC0415

    handle = LabHandle(directory)
    pid = handle.pid
    stopped = handle.down()
    if output is OutputFormat.json:
        emit_json({"directory": str(directory), "stopped": stopped, "pid": pid if stopped else None})
        return
    stdout.print(
        f"stopped the lab (pid {pid})" if stopped else f"no lab running in {directory}", highlight=False
    )


@app.command("scenarios")
@command
def scenarios_command(output: OutputOption = OutputFormat.table) -> None:
    """The built-in scenarios and every fault type a scenario can inject."""
    from lab.estate.faults import FAULTS  # noqa: PLC0415
    from lab.scenarios import summaries  # noqa: PLC0415

    scenarios = [
        {"name": s.name, "description": s.description, "endpoints": s.endpoints, "rras": s.rras, "ca": s.ca,
         "faults": s.faults, "path": str(s.path)}
        for s in summaries()
    ]  # fmt: skip
    faults = [
        {"type": f.name, "role": f.role, "summary": f.summary, "source": f.source, "params": list(f.params)}
        for f in FAULTS.values()
    ]
    if output is OutputFormat.json:
        emit_json({"scenarios": scenarios, "fault_types": faults})
        return
    columns = ("name", "endpoints", "rras", "ca", "faults", "description")
    render_table("Scenarios", columns, ([s[c] for c in columns] for s in scenarios))
    render_table(
        "Fault types", ("type", "role", "summary"), ([f["type"], f["role"], f["summary"]] for f in faults)
    )


@app.command("truth")
@command
def truth_command(directory: DirOption = DEFAULT_DIR, output: OutputOption = OutputFormat.table) -> None:
    """Every finding a correct sweep must report now, the fault behind it, and the playbook that fixes it."""
    from lab.estate.manage import LabHandle  # noqa: PLC0415

    handle = LabHandle(directory)
    answer = handle.get("/truth")
    state = handle.require()
    document = {"scenario": state["scenario"], "count": len(answer["truth"]), **answer}
    if output is OutputFormat.json:
        emit_json(document)
        return
    columns = ("host", "check_id", "reason", "subject", "fault", "playbook")
    render_table(
        f"Ground truth ({document['count']})", columns, ([e[c] for c in columns] for e in answer["truth"])
    )


@app.command("changes")
@command
def changes_command(
    directory: DirOption = DEFAULT_DIR,
    host: Annotated[str | None, typer.Option("--host", help="Only this host.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Every state-changing call each host received (scripts over WinRM, Intune check-ins)."""
    from lab.estate.manage import LabHandle  # noqa: PLC0415

    handle = LabHandle(directory)
    hosts: dict[str, list[dict[str, Any]]] = handle.get("/changes")
    if host is not None:
        hosts = {name: items for name, items in hosts.items() if name.lower() == host.lower()}
    document = {
        "scenario": handle.require()["scenario"],
        "count": sum(map(len, hosts.values())),
        "hosts": hosts,
    }
    if output is OutputFormat.json:
        emit_json(document)
        return
    rows = ([c["at"], c["host"], c["script_id"], c["what"]] for items in hosts.values() for c in items)
    render_table(f"Changes ({document['count']})", ("at", "host", "script", "what"), rows)


__all__ = ["app"]
