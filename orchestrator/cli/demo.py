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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli import sweep as sweep_cli
from orchestrator.cli.common import (
    ExitCode,
    OutputFormat,
    OutputOption,
    command,
    emit_json,
    render_table,
    stderr,
    stdout,
)
from orchestrator.config import Settings, load_settings
from orchestrator.store.models import HostStatus
from orchestrator.sweep.plan import DEFAULT_CONCURRENCY, CollectOptions

if TYPE_CHECKING:
    from lab.estate.runtime import EstateInfo
    from orchestrator.engine.runs import RunView
    from orchestrator.inventory import Host
    from orchestrator.store import Store
    from orchestrator.store.sweeps import FindingRecord
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
    fix: Annotated[
        bool,
        typer.Option("--fix/--no-fix", help="apply the shipped playbooks to the findings, then sweep again"),
    ] = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Start a lab scenario, sweep it, score the findings against its ground truth, fix them with
    the shipped playbooks, sweep again, stop the lab."""
    from orchestrator.inventory import load_inventory  # noqa: PLC0415
    from orchestrator.reports.notify import after_sweep  # noqa: PLC0415 (webhooks: docs/reports.md)

    table = output is OutputFormat.table
    remediation: Remediation | None = None
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
            grade = graded(result, truth)
            if table:
                _render(result, grade, info)
            if fix:
                remediation = remediate(settings, hosts, result, options=options, progress=table)
        result = after_sweep(settings, result)  # the lab is stopped; never raises, failures are notes
        if table:
            _render_remediation(remediation)
            where = "its directory is kept" if directory is not None else "its temporary directory is removed"
            stderr.print(f"the lab is stopped; {where}", highlight=False)
        else:
            _emit(result, grade, scenario, workdir, kept=directory is not None, remediation=remediation)
    good = grade.exact and (remediation is None or remediation.clean)
    raise typer.Exit(int(ExitCode.OK if good else ExitCode.FINDINGS))


# Servers before devices: a device's tunnel is judged against the RRAS servers and the CA's CRLs.
_ROLE_ORDER = {"ca": 0, "rras": 1, "endpoint": 2}
MAX_ROUNDS = 3
"""Sweep-and-fix rounds at most: a fix can expose another finding (an updated Intune profile is
deleted on Windows 11 devices without KB5008353 until they resync), which the next round fixes."""


@dataclass(frozen=True)
class Remediation:
    """What the demo's fixing did: each playbook's run, round by round, and the last sweep."""

    runs: tuple[RunView, ...]
    after: SweepResult
    rounds: int

    @property
    def remediable_left(self) -> tuple[FindingRecord, ...]:
        return remediable(self.after)

    @property
    def clean(self) -> bool:
        return not self.remediable_left and all(run.status.value == "succeeded" for run in self.runs)


def remediable(result: SweepResult) -> tuple[FindingRecord, ...]:
    """The findings of a sweep that a shipped playbook fixes."""
    return tuple(record for record in result.findings if record.playbook)


def remediate(
    settings: Settings,
    hosts: tuple[Host, ...],
    swept: SweepResult,
    *,
    options: CollectOptions,
    progress: bool,
) -> Remediation:
    """Apply every shipped playbook the findings name (servers first, then the playbooks that
    change Intune, then the rest), approved by whoever runs the demo (it is a lab), sweep again,
    and repeat while that leaves something a playbook fixes and the last round made progress."""
    from orchestrator.store import open_store  # noqa: PLC0415

    runs: list[RunView] = []
    after, rounds = swept, 0
    while remediable(after) and rounds < MAX_ROUNDS:
        rounds += 1
        before = {record.fingerprint for record in remediable(after)}
        with open_store(settings) as store:
            runs += _fix_round(settings, store, hosts, after, progress=progress)
        after = sweep_cli.run(settings, hosts, selector=None, options=options, progress=False, environ={})
        if {record.fingerprint for record in remediable(after)} == before:
            break  # nothing moved: another round would do the same
    return Remediation(tuple(runs), after, rounds)


def _fix_round(
    settings: Settings, store: Store, hosts: tuple[Host, ...], swept: SweepResult, *, progress: bool
) -> list[RunView]:
    from orchestrator.cli.run import launch_playbook  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415

    catalog = load_playbooks(settings)

    def order(playbook_id: str) -> tuple[int, bool, str]:
        playbook = catalog.get(playbook_id)
        return (_ROLE_ORDER.get(playbook.target.value, 9), not playbook.tenant_steps, playbook_id)

    runs = []
    for playbook_id in sorted(
        {record.playbook for record in remediable(swept) if record.playbook}, key=order
    ):
        if progress:
            stderr.print(f"applying {playbook_id}", highlight=False)
        view = launch_playbook(settings, store, playbook_id, hosts, progress=progress, environ={})
        if view is not None:
            runs.append(view)
    return runs


def _emit(
    result: SweepResult,
    grade: Score,
    scenario: str,
    workdir: Path,
    *,
    kept: bool,
    remediation: Remediation | None,
) -> None:
    from orchestrator.sweep.report import sweep_document  # noqa: PLC0415

    document: dict[str, Any] = {
        "scenario": scenario,
        "directory": str(workdir) if kept else None,
        "truth": grade.to_dict(),
        "sweep": sweep_document(result),
        "remediation": None,
    }
    if remediation is not None:
        document["remediation"] = {
            "runs": [run.to_dict() for run in remediation.runs],
            "resweep": sweep_document(remediation.after),
            "rounds": remediation.rounds,
            "remediable_left": len(remediation.remediable_left),
            "clean": remediation.clean,
        }
    emit_json(document)


def _render(result: SweepResult, grade: Score, info: EstateInfo) -> None:
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


def _render_remediation(remediation: Remediation | None) -> None:
    if remediation is None:
        return
    rows = [
        (run.playbook_id or "", run.status.value, run.status_message or "", run.id)
        for run in remediation.runs
    ]
    render_table(
        f"playbooks applied ({remediation.rounds} round{'s' if remediation.rounds != 1 else ''})",
        ("playbook", "status", "outcome", "run"),
        rows,
    )
    after = remediation.after.summary["findings"]
    left = remediation.remediable_left
    stdout.print(
        f"after the fixes: {after['total']} findings ({after['resolved']} resolved), "
        f"{len(left)} that a playbook could fix"
        + ("" if left else "; the rest need a person (advice in `fleetfix findings list`)"),
        highlight=False,
    )
    if left:
        sweep_cli.render_findings("still remediable", [(record, _still_open()) for record in left])


def _still_open() -> Any:
    from orchestrator.sweep.diff import Change  # noqa: PLC0415

    return Change.STILL_OPEN


__all__ = [
    "Remediation",
    "demo_command",
    "graded",
    "ground_truth",
    "remediate",
    "running_scenario",
    "scenario_settings",
]
