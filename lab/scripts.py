"""Script identity and the handler registry: how a simulated host "runs" PowerShell without PowerShell.

Every script fleetfix ships starts with the line ``# fleetfix-script: <id>``.  The host reads that
id from the received script text with a strict regular expression and calls the Python handler
registered for it.  The script body is never interpreted, and parameter values reach the handler
as data (``call.params``), exactly as PSRP delivered them.  Text without a valid header, or with an
id nobody registered, fails the way Windows fails on an unknown command: a terminating
``CommandNotFoundException`` ("The term '…' is not recognized as the name of a cmdlet, …").

Writing a handler::

    @script_handler("diag.echo")
    def echo(call: ScriptCall) -> list[object]:
        value = str(call.params.get("Value") or "")
        return [json.dumps({"value": value, "length": len(value)}, separators=(",", ":"))]

A handler returns its output objects (or ``None``), may write other streams through ``call``, and
raises :class:`TerminatingError` for a ``throw``.  It may be ``async`` when it must wait (a command
that runs until it is stopped); plain functions run on the lab's event loop and must be quick.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.state import HostState

SCRIPT_ID_PATTERN = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?:\.[a-z][a-z0-9]*(?:-[a-z0-9]+)*)+"
SCRIPT_HEADER = re.compile(rf"\A# fleetfix-script: ({SCRIPT_ID_PATTERN})\r?(?:\n|\Z)")
_FIRST_TOKEN = re.compile(r"[^\s;|(){}]+")


def parse_script_id(script_text: str) -> str | None:
    """The id in the script's first line, or ``None`` when the first line is not exactly a header."""
    match = SCRIPT_HEADER.match(script_text)
    return match.group(1) if match else None


def command_term(command_text: str, is_script: bool) -> str:
    """The name PowerShell would call "not recognized" for this command or script."""
    if not is_script:
        return command_text.strip()
    script_id = parse_script_id(command_text)
    if script_id is not None:
        return script_id
    for line in command_text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            token = _FIRST_TOKEN.search(stripped)
            return (token.group(0) if token else stripped)[:200]
    return command_text.strip()[:200]


class TerminatingError(Exception):
    """Raise from a handler to make the pipeline fail, as ``throw`` or ``-ErrorAction Stop`` would."""

    def __init__(
        self,
        message: str,
        *,
        error_id: str = "RuntimeException",
        category: str = "OperationStopped",
        exception_type: str = "System.Management.Automation.RuntimeException",
        target: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.category = category
        self.exception_type = exception_type
        self.target = target


def not_recognized(term: str) -> TerminatingError:
    """The error Windows PowerShell 5.1 raises for an unknown command."""
    return TerminatingError(
        f"The term '{term}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again.",
        error_id="CommandNotFoundException",
        category="ObjectNotFound",
        exception_type="System.Management.Automation.CommandNotFoundException",
        target=term,
    )


class StreamSink(Protocol):
    """Where a running pipeline writes; implemented by :class:`lab.psrp.PipelineRun`."""

    def write_output(self, value: object) -> None: ...

    def write_error(self, message: str, error_id: str, category: str, target: object) -> None: ...

    def write_warning(self, message: str) -> None: ...

    def write_verbose(self, message: str) -> None: ...

    def write_debug(self, message: str) -> None: ...

    def write_information(self, message: object, source: str) -> None: ...

    def write_progress(self, activity: str, status: str, percent: int) -> None: ...


@dataclass
class ScriptCall:
    """What a handler gets: the host, the script id, the parameters, pipeline input and the streams."""

    host: HostState
    script_id: str
    params: Mapping[str, Any]
    args: Sequence[Any]
    input: Sequence[Any]
    sink: StreamSink = field(repr=False)

    def write_output(self, value: object) -> None:
        """Output written now, before the handler returns (for commands that stream)."""
        self.sink.write_output(value)

    def write_error(
        self,
        message: str,
        *,
        error_id: str = "Microsoft.PowerShell.Commands.WriteErrorException",
        category: str = "NotSpecified",
        target: object = None,
    ) -> None:
        """A non-terminating error record, as ``Write-Error`` writes it."""
        self.sink.write_error(message, error_id, category, target)

    def write_warning(self, message: str) -> None:
        self.sink.write_warning(message)

    def write_verbose(self, message: str) -> None:
        self.sink.write_verbose(message)

    def write_debug(self, message: str) -> None:
        self.sink.write_debug(message)

    def write_information(self, message: object, source: str = "") -> None:
        self.sink.write_information(message, source)

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        self.sink.write_progress(activity, status, percent)

    def record_change(self, what: str, before: Any, after: Any) -> None:
        """Log a state change made by this script (see :meth:`HostState.record_change`)."""
        self.host.record_change(self.script_id, what, before, after)

    def param(self, name: str) -> Any:
        """A parameter's value by name (PowerShell matches parameter names without case), or None."""
        wanted = name.casefold()
        return next((value for key, value in self.params.items() if key.casefold() == wanted), None)

    def mandatory(self, name: str) -> str:
        """A ``[Parameter(Mandatory)] [string]``: an empty value fails binding, as on a host that
        cannot prompt for it."""
        value = self.param(name)
        if value is None or str(value) == "":
            raise TerminatingError(
                f"Cannot bind argument to parameter '{name}' because it is an empty string.",
                error_id=f"ParameterArgumentValidationErrorEmptyStringNotAllowed,{self.script_id}",
                category="InvalidData",
                exception_type="System.Management.Automation.ParameterBindingValidationException",
            )
        return str(value)


HandlerResult = Iterable[object] | None
Handler = Callable[[ScriptCall], HandlerResult | Awaitable[HandlerResult]]


@dataclass(frozen=True)
class Resolution:
    """What a received command resolved to: a handler and the id it was registered under, or nothing."""

    term: str
    key: str | None
    handler: Handler | None


class ScriptRegistry:
    """Handlers by script id, plus (for tests and fidelity replays) handlers by command name."""

    def __init__(self) -> None:
        self._scripts: dict[str, Handler] = {}
        self._commands: dict[str, Handler] = {}

    def script(self, script_id: str) -> Callable[[Handler], Handler]:
        """Decorator: register the handler of the shipped script ``script_id``."""
        if not re.fullmatch(SCRIPT_ID_PATTERN, script_id):
            raise ValueError(f"invalid script id {script_id!r}: lowercase dotted words, e.g. diag.echo")

        def register(handler: Handler) -> Handler:
            if script_id in self._scripts:
                raise ValueError(f"script id {script_id!r} already has a handler")
            self._scripts[script_id] = handler
            return handler

        return register

    def command(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: register a handler for a command sent by name (``add_cmdlet``), case-insensitive."""

        def register(handler: Handler) -> Handler:
            self._commands[name.lower()] = handler
            return handler

        return register

    def resolve(self, command_text: str, is_script: bool) -> Resolution:
        term = command_term(command_text, is_script)
        if is_script:
            script_id = parse_script_id(command_text)
            handler = self._scripts.get(script_id) if script_id else None
            return Resolution(term=term, key=script_id if handler else None, handler=handler)
        handler = self._commands.get(command_text.strip().lower())
        return Resolution(term=term, key=command_text.strip() if handler else None, handler=handler)

    def script_ids(self) -> frozenset[str]:
        return frozenset(self._scripts)

    def merged(self, other: ScriptRegistry) -> ScriptRegistry:
        """A new registry with this one's handlers overridden by ``other``'s."""
        merged = ScriptRegistry()
        merged._scripts = {**self._scripts, **other._scripts}
        merged._commands = {**self._commands, **other._commands}
        return merged


_DEFAULT = ScriptRegistry()
script_handler = _DEFAULT.script


def default_registry() -> ScriptRegistry:
    """The registry with the handlers of every script the product ships."""
    # Imported here, not at the top: the handler modules import this module to register.
    import lab.handlers  # noqa: F401, PLC0415

    return _DEFAULT


async def call_handler(handler: Handler, call: ScriptCall) -> list[object]:
    """Run a sync or async handler and normalise what it returned to a list of output objects."""
    result = handler(call)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return []
    if isinstance(result, str | bytes):  # a bare string is one output, not a list of characters
        return [result]
    return list(result)
