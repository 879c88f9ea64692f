"""``fleetfix demo``: a lab scenario started, swept, scored against its ground truth, and stopped.

One command that shows the whole flow on a machine with nothing else: the lab (started as
``fleetfix lab up --detach`` starts it, :mod:`lab.estate.manage`) builds the scenario's fleet,
Intune tenant and CRL server in a directory and writes an inventory, a ``fleetfix.toml`` and a
vault there; the sweep runs on that configuration; the findings are compared with the lab's
ground truth; the lab stops when the command ends.  The store is the lab directory's own SQLite
file -- never the one a shell's ``FLEETFIX_*`` variables point at.

Exit codes: 0 when the sweep found exactly what the scenario injected, 1 when it missed something
or reported something not injected, 2 bad input (unknown scenario), 3 internal error.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli import sweep as sweep_cli
from orchestrator.cli.common import ExitCode, OutputFormat, OutputOption, command, emit_json, stderr, stdout
from orchestrator.config import Settings, load_settings
from orchestrator.store.models import HostStatus
from orchestrator.sweep.plan import DEFAULT_CONCURRENCY, CollectOptions

if TYPE_CHECKING:
    from lab.estate.runtime import EstateInfo
    from orchestrator.sweep.score import Score
    from orchestrator.sweep.service import SweepResult

DEFAULT_SCENARIO = "seed-article"


@contextlib.contextmanager
def running_scenario(scenario: str, directory: Path) -> Iterator[EstateInfo]:
    """The scenario served by a lab process of its own (its CPU is not the sweep's), as ``fleetfix
    lab up --detach`` starts it; the lab directory is ready when this yields, and the lab is
    stopped when the block ends, however it ends."""
    from lab.estate.manage import LabHandle, start_detached  # noqa: PLC0415 (the lab loads for the demo)

    info = start_detached(scenario, directory)
    try:
        yield info
    finally:
        LabHandle(directory).down()


def scenario_settings(directory: Path) -> Settings:
    """The lab directory's ``fleetfix.toml``, its data directory and store forced (see module doc)."""
    data = directory / "data"
    return load_settings(
        directory / "fleetfix.toml", data_dir=data, store_url=f"sqlite:///{data / 'fleetfix.db'}"
    )


def ground_truth(directory: Path) -> list[dict[str, Any]]:
    """The running lab's truth entries (``host``, ``check_id``, ``reason``, ``subject``, ``fault`` ...)."""
    from lab.estate.manage import LabHandle  # noqa: PLC0415

    truth: list[dict[str, Any]] = LabHandle(directory).get("/truth")["truth"]
    return truth


def graded(result: SweepResult, truth: list[dict[str, Any]]) -> Score:
    from orchestrator.sweep.score import score  # noqa: PLC0415

    not_collected = [record.host for record in result.hosts if record.status is not HostStatus.OK]
    return score(result.findings, truth, not_collected=not_collected)


@contextlib.contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    directory = Path(tempfile.mkdtemp(prefix="fleetfix-demo-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@command
def demo_command(
    *,
    scenario: Annotated[
        str,
        typer.Option("--scenario", help="built-in scenario (healthy, seed-article, mixed-1k ...) or YAML"),
    ] = DEFAULT_SCENARIO,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="lab directory to keep (default: a temporary one, removed afterwards)"),
    ] = None,
    concurrency: sweep_cli.ConcurrencyOption = DEFAULT_CONCURRENCY,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Start a lab scenario, sweep it, show the findings against its ground truth, stop the lab."""
    from orchestrator.inventory import load_inventory  # noqa: PLC0415

    table = output is OutputFormat.table
    with _workdir(directory) as workdir:
        if table:
            stderr.print(f"starting the lab (scenario {scenario}) in {workdir}", highlight=False)
        with running_scenario(scenario, workdir) as info:
            settings = scenario_settings(workdir)
            hosts = tuple(load_inventory(settings.inventory))
            options = CollectOptions(concurrency=concurrency)
            result = sweep_cli.run(
                settings, hosts, selector=None, options=options, progress=table, environ={}
            )
            truth = ground_truth(workdir)
        from orchestrator.reports.notify import after_sweep  # noqa: PLC0415 (webhooks: docs/reports.md)

        result = after_sweep(settings, result)  # the lab is stopped; never raises, failures are notes
        grade = graded(result, truth)
        if table:
            _render(result, grade, info, kept=directory is not None)
        else:
            _emit(result, grade, scenario, workdir, kept=directory is not None)
    raise typer.Exit(int(ExitCode.OK if grade.exact else ExitCode.FINDINGS))


def _emit(result: SweepResult, grade: Score, scenario: str, workdir: Path, *, kept: bool) -> None:
    from orchestrator.sweep.report import sweep_document  # noqa: PLC0415

    emit_json(
        {
            "scenario": scenario,
            "directory": str(workdir) if kept else None,
            "truth": grade.to_dict(),
            "sweep": sweep_document(result),
        }
    )


def _render(result: SweepResult, grade: Score, info: EstateInfo, *, kept: bool) -> None:
    sweep_cli.render(result)
    verdict = "exactly what was injected" if grade.exact else "NOT what was injected"
    stdout.print(
        f"ground truth of scenario {info.scenario}: {len(grade.expected)} findings expected, "
        f"{len(grade.matched)} found, {len(grade.unexpected)} false alarms "
        f"(precision {grade.precision:.0%}, recall {grade.recall:.0%}): {verdict}",
        highlight=False,
    )
    for line in grade.diff_lines():
        stdout.print(f"  {line}", highlight=False)
    where = f"its directory {info.directory} is kept" if kept else "its temporary directory is removed"
    stderr.print(f"the lab is stopped; {where}", highlight=False)


__all__ = ["demo_command", "graded", "ground_truth", "running_scenario", "scenario_settings"]
