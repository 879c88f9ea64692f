"""``fleetfix db``: the store's schema. SQLite is migrated on first use; PostgreSQL, shared by
several workers, is upgraded on purpose with ``fleetfix db upgrade``.

The store (SQLAlchemy, Alembic: about 0.4 s of imports) is imported inside the commands, so that
every other ``fleetfix`` command starts without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from orchestrator.cli.common import (
    ExitCode,
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    stdout,
)

if TYPE_CHECKING:
    from orchestrator.store import MigrationResult

app = typer.Typer(help="Create or upgrade the store's schema.", no_args_is_help=True)


def upgrade_document(result: MigrationResult) -> dict[str, Any]:
    """The JSON document of ``db upgrade`` (schema in docs/cli-json.md)."""
    return {"url": result.url, "from": result.before, "to": result.after, "changed": result.changed}


def current_document(url: str, current: str | None, head: str) -> dict[str, Any]:
    """The JSON document of ``db current`` (schema in docs/cli-json.md)."""
    return {"url": url, "current": current, "head": head, "up_to_date": current == head}


@app.command("upgrade")
@command
def upgrade_command(ctx: typer.Context, output: OutputOption = OutputFormat.table) -> None:
    """Apply the migrations this fleetfix ships; prints the revision before and after."""
    from orchestrator import store  # noqa: PLC0415 - see the module docstring

    engine = store.create_store_engine(app_state(ctx).settings.store_url_resolved)
    try:
        result = store.upgrade_engine(engine)
        if result.changed:
            details = {"from": result.before, "to": result.after}
            store.append_audit(engine, store.local_actor(), "db.upgrade", result.url, details)
    finally:
        engine.dispose()
    if output is OutputFormat.json:
        emit_json(upgrade_document(result))
    elif result.changed:
        stdout.print(
            f"upgraded {result.url} from {result.before or '(empty)'} to {result.after}", highlight=False
        )
    else:
        stdout.print(f"{result.url} is already at {result.after}", highlight=False)


@app.command("current")
@command
def current_command(ctx: typer.Context, output: OutputOption = OutputFormat.table) -> None:
    """Show the database's schema revision and this fleetfix's newest; exit 1 if it is behind."""
    from orchestrator import store  # noqa: PLC0415 - see the module docstring
    from orchestrator.store.migrate import check_known  # noqa: PLC0415

    engine = store.create_store_engine(app_state(ctx).settings.store_url_resolved)
    try:
        current = store.current_revision(engine)
    finally:
        engine.dispose()
    check_known(current, engine.url)
    document = current_document(store.mask_url(engine.url), current, store.head_revision())
    if output is OutputFormat.json:
        emit_json(document)
    else:
        state = "up to date" if document["up_to_date"] else "behind: run `fleetfix db upgrade`"
        stdout.print(
            f"{document['url']}: revision {current or '(empty)'}, newest {document['head']} ({state})",
            highlight=False,
        )
    if not document["up_to_date"]:
        raise typer.Exit(int(ExitCode.FINDINGS))
