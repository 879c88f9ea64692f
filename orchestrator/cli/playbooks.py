"""``fleetfix playbooks``: the remediation playbooks fleetfix knows (shipped and the admin's own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    render_table,
    stdout,
)

if TYPE_CHECKING:
    from orchestrator.playbook import PlaybookCatalog

app = typer.Typer(help="The remediation playbooks (docs/playbooks.md).", no_args_is_help=True)


def _catalog(ctx: typer.Context) -> PlaybookCatalog:
    # Imported here: the playbook loader brings in the action and check registries.
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415

    return load_playbooks(app_state(ctx).settings)


def list_document(catalog: PlaybookCatalog) -> dict[str, Any]:
    """The JSON document of ``playbooks list`` (schema in docs/cli-json.md)."""
    return {"count": len(catalog), "playbooks": [playbook.summary_dict() for playbook in catalog]}


@command
def list_command(ctx: typer.Context, *, output: OutputOption = OutputFormat.table) -> None:
    """List the playbooks: id, the hosts they run on, their risk, the checks they fix, and where
    each comes from (shipped, or the admin file that replaces or adds it)."""
    document = list_document(_catalog(ctx))
    if output is OutputFormat.json:
        emit_json(document)
        return
    rows = [
        (
            item["id"],
            item["target"],
            item["risk"],
            ", ".join(item["fixes"]),
            item["source"] + (" (replaces shipped)" if item["replaces_shipped"] else ""),
        )
        for item in document["playbooks"]
    ]
    render_table(f"{document['count']} playbooks", ("id", "target", "risk", "fixes", "source"), rows)


@command
def show_command(
    ctx: typer.Context,
    playbook_id: Annotated[str, typer.Argument(metavar="ID", help="playbook id (fleetfix playbooks list)")],
    *,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show one playbook: description, parameters, steps with their arguments, verification,
    rollback and rollout defaults."""
    document = _catalog(ctx).get(playbook_id).to_dict()
    if output is OutputFormat.json:
        emit_json(document)
        return
    _print_header(document)
    _print_parameters(document["parameters"])
    _print_steps(document["tenant_steps"], document["steps"])
    _print_tail(document)


def _line(label: str, value: object) -> None:
    stdout.print(f"[bold]{label}:[/] {escape(str(value))}", highlight=False)


def _print_header(document: dict[str, Any]) -> None:
    stdout.print(f"[bold]{escape(document['id'])}[/]", highlight=False)
    _line("fixes", ", ".join(document["fixes"]))
    _line("target", document["target"])
    _line("risk", document["risk"])
    source = document["source"]
    if document["replaces_shipped"]:
        source += " (replaces the shipped playbook)"
    _line("source", source)
    stdout.print()
    # A folded YAML description keeps one newline between paragraphs; show them apart.
    paragraphs = [line for line in document["description"].splitlines() if line.strip()]
    stdout.print(escape("\n\n".join(paragraphs)), highlight=False)
    stdout.print()


def _print_parameters(parameters: Sequence[dict[str, Any]]) -> None:
    if not parameters:
        return
    rows = [
        (
            parameter["name"],
            parameter["type"],
            "(required)" if parameter["required"] else _shown(parameter["default"]),
            _constraints(parameter),
            parameter["description"],
        )
        for parameter in parameters
    ]
    render_table("parameters", ("name", "type", "default", "constraints", "description"), rows)


def _constraints(parameter: dict[str, Any]) -> str:
    parts = []
    if parameter["pattern"] is not None:
        parts.append(f"pattern {parameter['pattern']}")
    if parameter["min"] is not None:
        parts.append(f"min {parameter['min']}")
    if parameter["max"] is not None:
        parts.append(f"max {parameter['max']}")
    if parameter["choices"] is not None:
        parts.append("one of " + ", ".join(str(choice) for choice in parameter["choices"]))
    return "; ".join(parts)


def _shown(value: object) -> str:
    """A value as a YAML writer would spell it: ``""``, ``true``, ``[a, b]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return str(value)


def _print_steps(tenant_steps: Sequence[dict[str, Any]], steps: Sequence[dict[str, Any]]) -> None:
    rows = [("tenant (once)", step) for step in tenant_steps] + [("each host", step) for step in steps]
    render_table(
        "steps",
        ("runs", "id", "action", "args", "condition"),
        [
            (
                runs,
                step["id"],
                step["action"],
                ", ".join(f"{name}={_shown(value)}" for name, value in step["args"].items()),
                _condition(step),
            )
            for runs, step in rows
        ],
    )


def _condition(step: dict[str, Any]) -> str:
    parts = []
    if step["when_changed"]:
        parts.append("if " + " or ".join(step["when_changed"]) + " changed")
    if step["when"] is not None:
        parts.append(f"when {step['when']}")
    return "; ".join(parts)


def _print_tail(document: dict[str, Any]) -> None:
    verify, rollback, rollout = document["verify"], document["rollback"], document["rollout"]
    _line(
        "verify",
        f"{', '.join(verify['checks'])} no longer reported, polled every {verify['interval_s']} s "
        f"for up to {verify['timeout_s']} s",
    )
    restore = "restore the captured before-values" if rollback["on_verify_failure"] else "none"
    _line("rollback on failed verification", restore)
    waves = "one host at a time" if rollout["serial"] else f"waves of {rollout['wave_size']}"
    _line("rollout", f"canary {rollout['canary']}, then {waves}; max fail {rollout['max_fail']}")


app.command(name="list")(list_command)
app.command(name="show")(show_command)

__all__ = ["app", "list_command", "list_document", "show_command"]
