"""The ``fleetfix`` command line. Thin: parses options, calls the services, renders results."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from orchestrator import __version__
from orchestrator.cli import audit, creds, db, exec_probe, init, inventory
from orchestrator.cli import beat as beat_cli
from orchestrator.cli import checks as checks_cli
from orchestrator.cli import demo as demo_cli
from orchestrator.cli import findings as findings_cli
from orchestrator.cli import lab as lab_cli
from orchestrator.cli import playbooks as playbooks_cli
from orchestrator.cli import report as report_cli
from orchestrator.cli import run as run_cli
from orchestrator.cli import sweep as sweep_cli
from orchestrator.cli import worker as worker_cli
from orchestrator.cli.common import AppState
from orchestrator.logs import configure_logging

app = typer.Typer(
    name="fleetfix",
    help="Find and fix Always On VPN misconfigurations across a Windows fleet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(inventory.app, name="inventory")
app.add_typer(lab_cli.app, name="lab")
app.add_typer(creds.app, name="creds")
app.add_typer(db.app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(checks_cli.app, name="checks")
app.command(name="init")(init.init_command)
app.command(name="exec-probe")(exec_probe.exec_probe_command)
app.command(name="sweep")(sweep_cli.sweep_command)
app.command(name="demo")(demo_cli.demo_command)
app.add_typer(findings_cli.app, name="findings")
app.add_typer(report_cli.app, name="report")
app.add_typer(playbooks_cli.app, name="playbooks")
app.command(name="run")(run_cli.run_command)
app.add_typer(run_cli.runs_app, name="runs")
app.command(name="beat")(beat_cli.beat_command)
app.command(name="worker")(worker_cli.worker_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fleetfix {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="fleetfix.toml to use (default: $FLEETFIX_CONFIG, ./fleetfix.toml)"
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    overrides = {"log_level": log_level} if log_level else {}
    ctx.obj = AppState(config_path=config, overrides=overrides)
    configure_logging(log_level or "WARNING")


def main() -> None:
    app(prog_name="fleetfix")


__all__ = ["app", "main"]
logging.getLogger("fleetfix").addHandler(logging.NullHandler())
