"""The PSRP side of a simulated shell: psrpcore's server runspace pool, driven without I/O.

A :class:`PoolSession` is one WS-Management shell (one runspace pool).  The WS-Management layer
feeds it the bytes it received (``creationXml``, ``Command`` arguments, ``Send`` streams) and takes
the fragments to put in ``Receive`` responses; pipelines that become ready to run are handed back
to the caller, who runs them (:mod:`lab.execution`) and writes their streams through
:class:`PipelineRun`.

Pinned to psrpcore 0.3.1.  Shims, each needed for the *unmodified* pypsrp 0.9.1 client or for
Windows fidelity, and each marked ``SHIM`` in the code:

1. ``<I64 N="CI">`` → ``<I64 N="ci">``.  pypsrp serialises the call id of SET_MAX/MIN_RUNSPACES,
   GET_AVAILABLE_RUNSPACES and RESET_RUNSPACE_STATE with an upper-case name; psrpcore only reads
   ``ci`` and raises ``AttributeError``.  Windows accepts both.  The rewrite keeps the length and
   only misses a name split across two fragments, which these tiny messages never are.
2. The server pipeline must exist before its CREATE_PIPELINE is processed (psrpcore looks it up
   by id), so :meth:`PoolSession.add_pipeline` reads the pipeline id from the PSRP message header
   of the first fragment.  The pipeline is keyed on that id, not on the WS-Management CommandId:
   old pypsrp versions wrote the GUID with a different byte order there, and Windows did not care.
3. ``ServerPipeline.start()`` sends a PIPELINE_STATE Running message that Windows never sends;
   the private ``_change_state(Running, emit=False)`` moves the state without it.
4. psrpcore has no public "this pipeline failed" call: the private
   ``_change_state(Failed, error=ErrorRecord)`` sends the PIPELINE_STATE Failed that ``throw`` gives.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psrpcore
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PipelineResultTypes,
    PSInvocationState,
    PSVersion,
)

from lab.scripts import TerminatingError

log = logging.getLogger(__name__)

FRAGMENT_SIZE = 32_768
_FRAGMENT_HEADER = 21
_PID_OFFSET = _FRAGMENT_HEADER + 24  # fragment header, destination, message type, runspace pool id
_HRESULT_RUNTIME = -2146233087
_EXCEPTION_BASES = {
    "System.Management.Automation.CommandNotFoundException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
    "System.Management.Automation.RuntimeException": ["System.SystemException"],
}


def _shim_ci(data: bytes) -> bytes:
    # SHIM 1 (see module docstring).
    return data.replace(b'<I64 N="CI">', b'<I64 N="ci">')


def pipeline_id_of(first_fragment: bytes) -> uuid.UUID:
    """The pipeline id in the PSRP message header carried by a start fragment (SHIM 2)."""
    if len(first_fragment) < _PID_OFFSET + 16 or not first_fragment[16] & 0x1:
        raise ValueError("not the start fragment of a PSRP message")
    return uuid.UUID(bytes_le=first_fragment[_PID_OFFSET : _PID_OFFSET + 16])


def error_record(error: TerminatingError) -> ErrorRecord:
    """The ErrorRecord PowerShell would put in PIPELINE_STATE for this terminating error."""
    exception = NETException(Message=error.message, HResult=_HRESULT_RUNTIME)
    bases = _EXCEPTION_BASES.get(error.exception_type, ["System.SystemException"])
    exception.PSObject.type_names = [error.exception_type, *bases, *exception.PSTypeNames]
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=ErrorCategoryInfo(
            Category=ErrorCategory[error.category],
            Reason=error.exception_type.rsplit(".", 1)[-1],
            TargetName=None if error.target is None else str(error.target),
            TargetType=None if error.target is None else "String",
        ),
        TargetObject=error.target,
        FullyQualifiedErrorId=error.error_id,
    )


@dataclass
class PipelineRun:
    """One pipeline of a pool: its commands, its input, and the streams a handler writes to.

    Implements :class:`lab.scripts.StreamSink`.  ``statements`` is filled when CREATE_PIPELINE has
    been processed; each statement is a list of commands piped into each other.
    """

    command_id: str
    pipe: psrpcore.ServerPipeline
    session: PoolSession = field(repr=False)
    statements: list[list[psrpcore.Command]] = field(default_factory=list)
    input: list[Any] = field(default_factory=list)
    no_input: bool = True
    merge_error_to_output: bool = False
    finished: bool = False

    @property
    def running(self) -> bool:
        return self.pipe.state == PSInvocationState.Running

    def start(self) -> None:
        self.pipe._change_state(PSInvocationState.Running, emit=False)  # SHIM 3

    def _written(self) -> None:
        self.session.drain()

    def write_output(self, value: object) -> None:
        self.pipe.write_output(value)
        self._written()

    def write_error(self, message: str, error_id: str, category: str, target: object) -> None:
        exception = NETException(Message=message, HResult=-2146233088)
        if error_id == "Microsoft.PowerShell.Commands.WriteErrorException":
            exception.PSObject.type_names = [error_id, "System.SystemException", *exception.PSTypeNames]
        category_info = ErrorCategoryInfo(
            Category=ErrorCategory[category], Reason=error_id.rsplit(".", 1)[-1]
        )
        if self.merge_error_to_output:  # 2>&1: the record travels as output, as Windows sends it
            record = ErrorRecord(
                Exception=exception,
                CategoryInfo=category_info,
                TargetObject=target,
                FullyQualifiedErrorId=error_id,
            )
            self.pipe.write_output(record)
        else:
            self.pipe.write_error(
                exception,
                category_info=category_info,
                target_object=target,
                fully_qualified_error_id=error_id,
            )
        self._written()

    def write_warning(self, message: str) -> None:
        self.pipe.write_warning(message)
        self._written()

    def write_verbose(self, message: str) -> None:
        self.pipe.write_verbose(message)
        self._written()

    def write_debug(self, message: str) -> None:
        self.pipe.write_debug(message)
        self._written()

    def write_information(self, message: object, source: str) -> None:
        try:
            self.pipe.write_information(message, source)
        except psrpcore.InvalidProtocolVersion:
            return  # a protocol 2.1/2.2 client has no information stream; PowerShell drops it too
        self._written()

    def write_progress(self, activity: str, status: str, percent: int) -> None:
        self.pipe.write_progress(activity, 0, status, percent_complete=percent)
        self._written()

    def complete(self) -> None:
        if self.running:
            self.pipe.complete()
        self.finished = True
        self._written()

    def fail(self, error: TerminatingError) -> None:
        if self.running:
            self.pipe._change_state(PSInvocationState.Failed, error=error_record(error))  # SHIM 4
        self.finished = True
        self._written()

    def stop(self) -> None:
        """Ctrl+C from the client: PIPELINE_STATE Stopped with a PipelineStoppedException."""
        if self.running:
            self.pipe.stop()
        self.finished = True
        self._written()


class PoolSession:
    """One runspace pool, fed with client bytes, giving back fragments per target.

    ``on_data`` is called whenever new fragments are ready (the WS-Management layer wakes its
    long-polling Receives with it).  Targets are ``None`` for the pool itself and the
    WS-Management CommandId (upper case) for a pipeline.
    """

    def __init__(
        self,
        ps_version: str,
        on_data: Callable[[], None] = lambda: None,
        fragment_size: int = FRAGMENT_SIZE,
    ) -> None:
        self.pool = psrpcore.ServerRunspacePool(
            application_private_data={"PSVersionTable": {"PSVersion": PSVersion(ps_version)}}
        )
        self.on_data = on_data
        self.fragment_size = fragment_size
        self.runs: dict[str, PipelineRun] = {}
        self._by_pipeline: dict[uuid.UUID, PipelineRun] = {}
        self._outbox: dict[str | None, deque[bytes]] = {}

    # -- input -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[PipelineRun]:
        """Process client bytes; returns the pipelines that are now ready to run."""
        self.pool.receive_data(psrpcore.PSRPPayload(_shim_ci(data), psrpcore.StreamType.default, None))
        ready: list[PipelineRun] = []
        while (event := self.pool.next_event()) is not None:
            run = self._handle(event)
            if run is not None:
                ready.append(run)
        self.drain()
        return ready

    def add_pipeline(self, command_id: str, first_fragment: bytes) -> PipelineRun:
        """Register the pipeline a Command creates, before its CREATE_PIPELINE is fed (SHIM 2)."""
        pipeline_id = pipeline_id_of(first_fragment)
        run = PipelineRun(command_id, psrpcore.ServerPipeline(self.pool, pipeline_id), self)
        self.runs[command_id] = run
        self._by_pipeline[pipeline_id] = run
        return run

    def remove(self, command_id: str) -> PipelineRun | None:
        """Forget a pipeline (Signal Terminate); fragments still queued for it are dropped."""
        run = self.runs.pop(command_id, None)
        if run is not None:
            self._by_pipeline.pop(run.pipe.pipeline_id, None)
            self.pool.pipeline_table.pop(run.pipe.pipeline_id, None)
            self._outbox.pop(command_id, None)
        return run

    def _handle(self, event: psrpcore.PSRPEvent[Any, Any]) -> PipelineRun | None:
        run = self._by_pipeline.get(event.pipeline_id) if event.pipeline_id else None
        if isinstance(event, psrpcore.CreatePipelineEvent) and run is not None:
            return self._created(run, event)
        if isinstance(event, psrpcore.GetCommandMetadataEvent) and run is not None:
            run.start()
            run.fail(TerminatingError("The fleetfix lab does not simulate GetCommandMetadata."))
        elif isinstance(event, psrpcore.PipelineInputEvent) and run is not None:
            run.input.append(event.data)
        elif isinstance(event, psrpcore.EndOfPipelineInputEvent) and run is not None:
            return run
        elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
            self.pool.runspace_availability_response(event.ci, self._available_runspaces())
        elif isinstance(
            event,
            psrpcore.SetMaxRunspacesEvent | psrpcore.SetMinRunspacesEvent | psrpcore.ResetRunspaceStateEvent,
        ):
            self.pool.runspace_availability_response(event.ci, True)
        else:
            log.debug("PSRP event handled by psrpcore or ignored: %r", event)
        return None

    def _created(self, run: PipelineRun, event: psrpcore.CreatePipelineEvent) -> PipelineRun | None:
        pipeline = event.pipeline
        run.statements = split_statements(pipeline.commands)
        run.no_input = pipeline.no_input
        return run if run.no_input else None

    def _available_runspaces(self) -> int:
        busy = sum(1 for run in self.runs.values() if run.running)
        return max(self.pool.max_runspaces - busy, 0)

    # -- output ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Move everything psrpcore queued into the per-target outboxes and wake the receivers."""
        moved = False
        while (payload := self.pool.data_to_send(self.fragment_size)) is not None:
            target: str | None = None
            if payload.pipeline_id is not None:
                run = self._by_pipeline.get(payload.pipeline_id)
                if run is None:
                    continue  # the pipeline was terminated: nobody will receive this
                target = run.command_id
            self._outbox.setdefault(target, deque()).append(payload.data)
            moved = True
        if moved:
            self.on_data()

    def pending(self, target: str | None) -> bool:
        return bool(self._outbox.get(target))

    def take(self, target: str | None, fits: Callable[[Sequence[bytes], bytes], bool]) -> list[bytes]:
        """Pop queued fragments for ``target`` while ``fits(taken, next)`` allows (always one)."""
        queue = self._outbox.get(target)
        taken: list[bytes] = []
        while queue and (not taken or fits(taken, queue[0])):
            taken.append(queue.popleft())
        return taken


def split_statements(commands: Sequence[psrpcore.Command]) -> list[list[psrpcore.Command]]:
    """Group a pipeline's commands into statements (``add_statement`` ends one)."""
    statements: list[list[psrpcore.Command]] = [[]]
    for command in commands:
        statements[-1].append(command)
        if command.end_of_statement:
            statements.append([])
    return [statement for statement in statements if statement]


def merges_error_to_output(command: psrpcore.Command) -> bool:
    """Whether ``2>&1`` (MergeError=Output, or the MergeMyResult/MergeToResult pair) applies."""
    return bool(
        command.merge_error == PipelineResultTypes.Output
        or (command.merge_my == PipelineResultTypes.Error and command.merge_to == PipelineResultTypes.Output)
    )
