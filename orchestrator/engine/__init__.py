"""The run engine: runs as persisted state machines, rolled out in waves under a failure budget and
a change window, with per-host leases, approvals and a re-entrant coordinator (docs/engine.md).

Typical use (the CLI's ``fleetfix run``)::

    run_id = create_run(store, playbook_id="rras-auth", targets=[("ams-rras-1", "rras")],
                        rollout=RolloutOptions(canary=1, wave_size=20,
                                               max_fail=FailureBudget.parse("5%")),
                        window_text="weekend", settings=settings,
                        requested_by=local_actor(), needs_approval=True)
    approve(store, run_id, approver="second.person@corp")
    view = advance(store, run_id, LocalExecutor(store, work, concurrency=16, holder=holder))

The work done on one host is injected (:data:`TargetWork`); the engine only decides who runs when.
"""

from orchestrator.engine.coordinator import CoordinatorPolicy, advance
from orchestrator.engine.executors import Executor, LocalExecutor, default_holder
from orchestrator.engine.leases import HeldBy, Lease
from orchestrator.engine.model import (
    FAILURE_STATES,
    TERMINAL_TARGET_STATES,
    EventKind,
    FailureBudget,
    RolloutOptions,
    RunEvent,
    RunStatus,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    TargetWork,
    WaveKind,
    WaveStatus,
)
from orchestrator.engine.runs import (
    RunOptions,
    RunView,
    TargetView,
    WaveView,
    approve,
    create_run,
    get_run,
    list_runs,
    request_cancel,
    submit_planned,
)
from orchestrator.engine.targets import LeasePolicy, process_target
from orchestrator.engine.waves import WavePlan, plan_waves
from orchestrator.engine.windows import ChangeWindow, resolve_window

__all__ = [
    "FAILURE_STATES",
    "TERMINAL_TARGET_STATES",
    "ChangeWindow",
    "CoordinatorPolicy",
    "EventKind",
    "Executor",
    "FailureBudget",
    "HeldBy",
    "Lease",
    "LeasePolicy",
    "LocalExecutor",
    "RolloutOptions",
    "RunEvent",
    "RunOptions",
    "RunStatus",
    "RunView",
    "TargetOutcome",
    "TargetRole",
    "TargetState",
    "TargetTask",
    "TargetView",
    "TargetWork",
    "WaveKind",
    "WavePlan",
    "WaveStatus",
    "WaveView",
    "advance",
    "approve",
    "create_run",
    "default_holder",
    "get_run",
    "list_runs",
    "plan_waves",
    "process_target",
    "request_cancel",
    "resolve_window",
    "submit_planned",
]
