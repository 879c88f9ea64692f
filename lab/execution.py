"""Running a pipeline: resolve each command to a handler, apply the host's script faults, stream.

This is the lab's stand-in for the PowerShell engine.  Statements run one after the other; within
a statement each command gets the previous command's output as its input, as ``|`` does.  Nothing
is interpreted: a command the registry does not know fails with the CommandNotFoundException
Windows gives, and parameters are passed to handlers as the values PSRP delivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import psrpcore

from lab.config import FaultSpec
from lab.psrp import PipelineRun, merges_error_to_output
from lab.scripts import ScriptCall, ScriptRegistry, TerminatingError, call_handler, not_recognized
from lab.state import HostState

log = logging.getLogger(__name__)


def split_parameters(command: psrpcore.Command) -> tuple[dict[str, Any], list[Any]]:
    """Named parameters (a switch sent without value arrives as ``None``) and positional arguments."""
    named: dict[str, Any] = {}
    positional: list[Any] = []
    for name, value in command.parameters:
        if name is None:
            positional.append(value)
        else:
            named[name] = value
    return named, positional


def apply_output_faults(outputs: list[object], faults: FaultSpec) -> list[object]:
    """Malformed (truncated) or oversized JSON instead of what the script printed."""
    if faults.oversized_output_bytes:
        return [_oversized(outputs, faults.oversized_output_bytes)]
    if faults.malformed_output:
        return [_truncated(item) if isinstance(item, str) else item for item in outputs]
    return outputs


def _truncated(text: str) -> str:
    # Half a document, as a script killed mid-write or a stray Write-Host would leave it.
    return text[: max(1, len(text) // 2)] if len(text) > 1 else "{"


def _oversized(outputs: list[object], size: int) -> str:
    """One valid JSON document of exactly ``size`` bytes (the script's object plus padding)."""
    document: dict[str, Any] = {}
    if outputs and isinstance(outputs[0], str):
        try:
            parsed = json.loads(outputs[0])
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            document = parsed
    document["lab_padding"] = ""
    base = len(json.dumps(document, separators=(",", ":")).encode())
    document["lab_padding"] = "A" * max(size - base, 0)
    return json.dumps(document, separators=(",", ":"))


class PipelineExecutor:
    """Runs the pipelines of one host against a handler registry and the host's fault spec."""

    def __init__(self, state: HostState, registry: ScriptRegistry, faults: FaultSpec) -> None:
        self.state = state
        self.registry = registry
        self.faults = faults

    async def run(self, run: PipelineRun) -> None:
        run.start()
        try:
            if self.faults.slow_command_s:
                await asyncio.sleep(self.faults.slow_command_s)
            for statement in run.statements:
                for output in await self._statement(run, statement):
                    run.write_output(output)
        except TerminatingError as error:
            run.fail(error)
        except asyncio.CancelledError:
            raise  # Signal or Delete: the WS-Management layer decides what the client sees
        except Exception as exc:  # a handler bug must not kill the lab; PowerShell reports it as a failure
            log.exception("handler failed on %s", self.state.name)
            run.fail(TerminatingError(f"Lab handler error: {type(exc).__name__}: {exc}"))
        else:
            run.complete()

    async def _statement(self, run: PipelineRun, statement: Sequence[psrpcore.Command]) -> list[object]:
        piped: list[object] = list(run.input)
        for command in statement:
            piped = await self._command(run, command, piped)
        return piped

    async def _command(
        self, run: PipelineRun, command: psrpcore.Command, piped: list[object]
    ) -> list[object]:
        resolution = self.registry.resolve(command.command_text, command.is_script)
        if resolution.handler is None or resolution.key is None:
            raise not_recognized(resolution.term)
        run.merge_error_to_output = merges_error_to_output(command)
        named, positional = split_parameters(command)
        call = ScriptCall(self.state, resolution.key, named, positional, piped, run)
        for message in self.faults.error_records:
            call.write_error(message)
        if self.faults.terminating_error is not None:
            raise TerminatingError(self.faults.terminating_error)
        outputs = await call_handler(resolution.handler, call)
        return apply_output_faults(outputs, self.faults)
