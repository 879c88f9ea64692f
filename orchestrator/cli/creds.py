"""``fleetfix creds``: the encrypted credential vault that ``vault:NAME`` references point at.

Secrets are read from stdin (CI) or a hidden prompt, stored encrypted, and never printed: every
output here shows names, usernames and timestamps only.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from orchestrator.cli.common import (
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    record_audit,
    render_table,
)
from orchestrator.cli.common import stderr as err_console
from orchestrator.cli.common import stdout as out_console
from orchestrator.credentials.secret import Secret
from orchestrator.credentials.vault import EntryInfo, Vault, check_name
from orchestrator.errors import InputError

app = typer.Typer(
    help="Store WinRM and Graph secrets in the encrypted vault; hosts refer to them as vault:NAME.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="Entry name; inventories refer to it as vault:NAME.")]


def _vault(ctx: typer.Context) -> Vault:
    return Vault.from_settings(app_state(ctx).settings)


def _secret_from_stdin() -> Secret:
    """The first line of stdin without its line ending: ``printf %s "$PW" | fleetfix creds set x``."""
    line = sys.stdin.readline()
    value = line.removesuffix("\n").removesuffix("\r")
    if not value:
        raise InputError("the first line of stdin is empty", field="secret")
    return Secret(value)  # registered for redaction before anything else can log it; the vault checks it


def _secret_from_prompt(name: str) -> Secret:
    # click asks twice with hidden input and asks again until both match; prompts go to stderr so
    # that --output json keeps stdout for the document.
    value: str = typer.prompt(f"Secret for vault:{name}", hide_input=True, confirmation_prompt=True, err=True)
    return Secret(value)


def _username(given: str | None, interactive: bool) -> str:
    if given is not None:
        return given
    if not interactive:
        raise InputError("required when the secret comes from stdin", field="--username")
    entered: str = typer.prompt("Username", err=True)
    return entered


@app.command("set")
@command
def set_command(
    ctx: typer.Context,
    name: NameArgument,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Account to log in as, e.g. CONTOSO\\svc-vpn.")
    ] = None,
    stdin: Annotated[
        bool,
        typer.Option(
            "--stdin", help="Read the secret from the first line of stdin (implied when not a tty)."
        ),
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Add or replace a credential. The secret comes from stdin or a hidden prompt, never an argument."""
    check_name(name)
    interactive = not stdin and sys.stdin.isatty()
    user = _username(username, interactive)
    secret = _secret_from_prompt(name) if interactive else _secret_from_stdin()
    info = _vault(ctx).set(name, user, secret)
    record_audit(ctx, "creds.set", info.reference, {"username": info.username})
    if output is OutputFormat.json:
        emit_json(info.to_dict())
    else:
        out_console.print(
            f"stored {info.reference} (username {info.username})", markup=False, highlight=False
        )


@app.command("list")
@command
def list_command(ctx: typer.Context, output: OutputOption = OutputFormat.table) -> None:
    """Show stored credentials: names, usernames and when they changed (never secrets)."""
    vault = _vault(ctx)
    entries = vault.list()
    if output is OutputFormat.json:
        emit_json({"file": str(vault.path), "credentials": [entry.to_dict() for entry in entries]})
        return
    if not entries:
        err_console.print(
            f"no credentials in {vault.path}; add one with: fleetfix creds set NAME", markup=False
        )
        return
    render_table(
        f"Credentials in {vault.path}", ["NAME", "USERNAME", "CREATED", "UPDATED"], map(_row, entries)
    )


def _row(entry: EntryInfo) -> tuple[str, str, str, str]:
    data = entry.to_dict()
    return entry.name, entry.username, str(data["created"]), str(data["updated"])


@app.command("delete")
@command
def delete_command(ctx: typer.Context, name: NameArgument, output: OutputOption = OutputFormat.table) -> None:
    """Remove a credential. Hosts that still refer to it will fail to resolve it."""
    check_name(name)
    if not _vault(ctx).delete(name):
        raise InputError(f"no credential vault:{name} to delete", field="NAME")
    record_audit(ctx, "creds.delete", f"vault:{name}")
    if output is OutputFormat.json:
        emit_json({"name": name, "reference": f"vault:{name}", "deleted": True})
    else:
        out_console.print(f"deleted vault:{name}", markup=False, highlight=False)


__all__ = ["app"]
