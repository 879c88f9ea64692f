"""``fleetfix audit``: prove the audit log intact, and read it.

The store is imported inside the commands, as in ``fleetfix db``, to keep other commands fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli.common import (
    ExitCode,
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    render_table,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from orchestrator.store import AuditEntry, AuditVerification

app = typer.Typer(help="Verify and read the hash-chained audit log.", no_args_is_help=True)

ExpectHeadOption = Annotated[
    str | None,
    typer.Option(
        "--expect-head",
        help="a head recorded earlier (SEQ:HASH as printed by this command, or HASH): it must still be "
        "in the chain, which catches a rewrite of the whole log",
    ),
]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="how many of the newest entries")]
ActionOption = Annotated[str | None, typer.Option("--action", help="only entries with this action")]

_SHORT_HASH = 12


def verification_document(url: str, result: AuditVerification) -> dict[str, Any]:
    """The JSON document of ``audit verify`` (schema in docs/cli-json.md)."""
    failure = result.failure
    return {
        "url": url,
        "intact": result.ok,
        "entries_verified": result.entries,
        "head": None if result.head is None else {**result.head.to_dict(), "anchor": str(result.head)},
        "expected_head_seq": result.anchor_seq,
        "failure": None if failure is None else failure.to_dict(),
    }


def entries_document(url: str, entries: list[AuditEntry]) -> dict[str, Any]:
    """The JSON document of ``audit show`` (schema in docs/cli-json.md)."""
    return {"url": url, "count": len(entries), "entries": [entry.to_dict() for entry in entries]}


def _print_verification(url: str, result: AuditVerification) -> None:
    failure = result.failure
    if failure is not None:
        where = "" if failure.seq is None else f" at entry {failure.seq}"
        stderr.print(
            f"[bold red]audit chain broken{where}:[/] {failure.message} ({failure.problem})", highlight=False
        )
        return
    entries = "1 entry" if result.entries == 1 else f"{result.entries} entries"
    stdout.print(f"audit log intact: {entries} in {url}", highlight=False)
    if result.head is not None and result.head.seq:
        stdout.print(f"head {result.head} (record it to verify against later)", highlight=False)
    if result.anchor_seq is not None:
        stdout.print(f"recorded head found at entry {result.anchor_seq}", highlight=False)


@app.command("verify")
@command
def verify_command(
    ctx: typer.Context, expect_head: ExpectHeadOption = None, output: OutputOption = OutputFormat.table
) -> None:
    """Check the hash chain from the first entry to the head; exit 1 naming the first bad entry."""
    from orchestrator.store import ExpectedHead, open_store, verify_audit  # noqa: PLC0415 - see docstring

    # a malformed --expect-head is bad input (exit 2) before the store is touched
    expected = ExpectedHead.parse(expect_head) if expect_head is not None else None
    with open_store(app_state(ctx).settings) as store:
        result = verify_audit(store.engine, expected)
    if output is OutputFormat.json:
        emit_json(verification_document(store.url, result))
    else:
        _print_verification(store.url, result)
    if not result.ok:
        raise typer.Exit(int(ExitCode.FINDINGS))


def _row(entry: AuditEntry) -> tuple[object, ...]:
    details = json.dumps(dict(entry.details), sort_keys=True, ensure_ascii=False) if entry.details else ""
    when = entry.ts.strftime("%Y-%m-%d %H:%M:%S")
    return (entry.seq, when, entry.actor, entry.action, entry.target, details, entry.hash[:_SHORT_HASH])


@app.command("show")
@command
def show_command(
    ctx: typer.Context,
    limit: LimitOption = 20,
    action: ActionOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the newest audit entries, oldest first."""
    from orchestrator.store import list_audit, open_store  # noqa: PLC0415 - see docstring

    with open_store(app_state(ctx).settings) as store:
        entries = list_audit(store.engine, limit, action=action)
    if output is OutputFormat.json:
        emit_json(entries_document(store.url, entries))
        return
    columns = ("seq", "time (UTC)", "actor", "action", "target", "details", "hash")
    render_table(f"audit log: {store.url}", columns, (_row(entry) for entry in entries))
