"""``fleetfix findings list``: the findings of a stored sweep, and how they changed since the one before.

Reads the store only (no host is contacted).  ``--status open`` (the default) lists what is wrong
as of the sweep, ``new`` what appeared since the previous sweep, ``resolved`` what the sweep no
longer found on hosts it collected.  Exit code 1 when open or new findings are listed, else 0.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.common import (
    ExitCode,
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    stderr,
)
from orchestrator.cli.inventory import InventoryOption, LimitOption, selected_hosts
from orchestrator.errors import InputError
from orchestrator.sweep.diff import FindingStatus

app = typer.Typer(help="Findings of stored sweeps.", no_args_is_help=True)

RunOption = Annotated[
    str | None, typer.Option("--run", help="sweep run id (default: the newest completed sweep)")
]
StatusOption = Annotated[
    FindingStatus,
    typer.Option("--status", case_sensitive=False, help="open (all current, new included), new, or resolved"),
]
CheckOption = Annotated[
    list[str] | None, typer.Option("--check", help="only this check id (repeat for several)")
]


@app.command("list")
@command
def list_findings(
    ctx: typer.Context,
    *,
    run: RunOption = None,
    status: StatusOption = FindingStatus.OPEN,
    check: CheckOption = None,
    limit: LimitOption = None,
    inventory: InventoryOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the findings of a sweep (the newest by default), filtered by status, check and hosts."""
    from orchestrator.store import open_store  # noqa: PLC0415 (the store loads only when used)
    from orchestrator.store.sweeps import get_sweep, latest_sweep  # noqa: PLC0415
    from orchestrator.sweep.history import stored_diff  # noqa: PLC0415
    from orchestrator.sweep.report import findings_document, select_findings  # noqa: PLC0415

    hosts = None if limit is None else [host.name for host in selected_hosts(ctx, inventory, limit)]
    with open_store(app_state(ctx).settings) as store, store.transaction() as session:
        sweep = get_sweep(session, run) if run is not None else latest_sweep(session)
        if sweep is None:
            raise InputError("there is no completed sweep yet: run `fleetfix sweep` first", field="--run")
        diff = stored_diff(session, sweep)
    selected = select_findings(diff, status, check_ids=check or (), hosts=hosts)
    if output is OutputFormat.json:
        emit_json(findings_document(sweep, diff, selected, status))
    elif selected:
        from orchestrator.cli.sweep import render_findings  # noqa: PLC0415

        render_findings(f"{len(selected)} {status.value} findings of sweep {sweep.id}", selected)
    else:
        stderr.print(f"no {status.value} findings in sweep {sweep.id}", highlight=False)
    listed_open = bool(selected) and status is not FindingStatus.RESOLVED
    raise typer.Exit(int(ExitCode.FINDINGS if listed_open else ExitCode.OK))


__all__ = ["app", "list_findings"]
