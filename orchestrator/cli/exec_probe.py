"""``fleetfix exec-probe HOST PROBE_ID``: run one shipped probe on one host and print its result.

For admins debugging a host ("what does fleetfix see there?") and for tests.  Only probes from the
catalog can run, with typed ``--param NAME=VALUE`` values that travel as PSRP parameters; the
probe's JSON output is validated against its schema before it is printed.
"""

from __future__ import annotations

import difflib
import time
from typing import TYPE_CHECKING, Annotated, Any

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
from orchestrator.cli.inventory import InventoryOption, inventory_paths
from orchestrator.credentials.resolve import resolve_credential
from orchestrator.credentials.secret import Credential
from orchestrator.errors import InputError
from orchestrator.inventory import Host, load_inventory
from orchestrator.scripts import Invocation, ScriptKind, get_script

if TYPE_CHECKING:
    from orchestrator.transport.winrm import ScriptResult

DEFAULT_TIMEOUT_S = 60.0

ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="probe parameter NAME=VALUE (repeat for several); sent as data"),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1.0,
        help="seconds the whole session with the host may take (connect, open, probe, close)",
    ),
]


@command
def exec_probe_command(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Argument(metavar="HOST", help="Host name as the inventory spells it (case-insensitive).")
    ],
    probe: Annotated[str, typer.Argument(metavar="PROBE_ID", help="Probe id, e.g. host.info or diag.echo.")],
    *,
    param: ParamOption = None,
    inventory: InventoryOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_S,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run one shipped probe on one host over WinRM and print its validated JSON result."""
    # Everything that can be judged locally is checked before a connection is made.
    invocation = get_script(probe, kind=ScriptKind.PROBE, field="PROBE_ID").parse_params(param or [])
    target = _find_host(ctx, inventory, host)
    credential = _credential(ctx, target)
    started = time.monotonic()
    result = _run(target, credential, invocation, timeout)
    document = probe_document(result, elapsed_ms=round((time.monotonic() - started) * 1000))
    if output is OutputFormat.json:
        emit_json(document)
        return
    _render(document)


def probe_document(result: ScriptResult[Any], *, elapsed_ms: int) -> dict[str, Any]:
    """The JSON document of ``exec-probe`` (schema in docs/cli-json.md)."""
    return {
        "host": result.host,
        "probe": result.script_id,
        "result": result.value.model_dump(mode="json"),
        "errors": list(result.errors),
        "elapsed_ms": elapsed_ms,
    }


def _find_host(ctx: typer.Context, given: list[Any] | None, name: str) -> Host:
    hosts = load_inventory(inventory_paths(ctx, given))
    found = hosts.get(name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, [h.name for h in hosts], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(f"no host {name!r} in the inventory{hint}", field="HOST")


def _credential(ctx: typer.Context, host: Host) -> Credential:
    vault = None
    if host.credential.scheme == "vault":
        from orchestrator.credentials.vault import Vault  # noqa: PLC0415 (cryptography only when needed)

        vault = Vault.from_settings(app_state(ctx).settings)
    return resolve_credential(host.credential, username=host.winrm.username, vault=vault)


def _run(
    host: Host, credential: Credential, invocation: Invocation[Any], timeout_s: float
) -> ScriptResult[Any]:
    # Imported here: pypsrp and its HTTP stack load only for commands that reach hosts.
    from orchestrator.transport.winrm import TransportPolicy, WinRMSession  # noqa: PLC0415

    with WinRMSession(host, credential, policy=TransportPolicy(deadline_s=timeout_s)) as session:
        return session.run(invocation)


def _render(document: dict[str, Any]) -> None:
    for message in document["errors"]:
        stderr.print(f"[yellow]non-terminating error:[/] {message}", markup=True, highlight=False)
    title = f"{document['probe']} on {document['host']} ({document['elapsed_ms']} ms)"
    render_table(title, ("key", "value"), sorted(document["result"].items()))


__all__ = ["exec_probe_command", "probe_document"]
