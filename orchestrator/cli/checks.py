"""``fleetfix checks``: the check catalogue (what fleetfix looks for, and how each problem is fixed)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli.common import OutputFormat, OutputOption, command, emit_json, render_table
from orchestrator.inventory.models import Role

app = typer.Typer(help="The check catalogue.", no_args_is_help=True)

RoleOption = Annotated[
    Role | None,
    typer.Option(
        "--role", help="only checks that read this role's facts (endpoint, rras, ca)", case_sensitive=False
    ),
]


def catalogue_document(role: Role | None = None) -> dict[str, Any]:
    """The JSON document of ``checks list`` (schema in docs/cli-json.md)."""
    # Imported here: the checks load cryptography and the Graph helpers, other commands need neither.
    from orchestrator.checks import catalogue  # noqa: PLC0415

    specs = [spec for spec in catalogue() if role is None or role in spec.roles]
    return {"count": len(specs), "checks": [spec.to_dict() for spec in specs]}


@command
def list_command(*, role: RoleOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List every check: id, severity, what it means, the Windows error codes it explains, its fix."""
    document = catalogue_document(role)
    if output is OutputFormat.json:
        emit_json(document)
        return
    rows = [
        (
            check["id"],
            check["severity"],
            check["title"],
            ", ".join(check["reasons"]),
            ", ".join(check["error_codes"]),
            f"playbook {check['playbook']}" if check["playbook"] else "advice",
        )
        for check in document["checks"]
    ]
    title = f"{document['count']} checks"
    render_table(title, ("id", "severity", "title", "reasons", "error codes", "fix"), rows)


app.command(name="list")(list_command)

__all__ = ["app", "catalogue_document", "list_command"]
