"""The WinRM shell service of one simulated host: WS-Management actions on PowerShell shells.

:class:`HostService` answers parsed requests (:class:`~lab.wsman.envelope.WSManRequest`) with
response markup or a :class:`~lab.wsman.faults.WSManFault`.  It owns the host's shells; each shell
is a :class:`lab.psrp.PoolSession` plus the tasks running its pipelines.  The only waiting it does
is the Receive long-poll (an asyncio future per shell, no sockets); the HTTP side lives in
:mod:`lab.server`.

Supported: Create (with ``creationXml``), Command, Send, Receive (long-poll answered with the
``w:TimedOut`` fault when OperationTimeout expires, which pypsrp re-polls), Signal (Terminate,
PowerShell Ctrl+C), Delete, Get (shell state for ``is_alive``, and the WinRM config envelope
size).  Not simulated (answered with ``a:ActionNotSupported``): Disconnect, Reconnect, Connect,
Enumerate/Pull, WinRS ``cmd`` shells.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import functools
import logging
import math
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from lab.config import FaultSpec, HostConfig
from lab.execution import PipelineExecutor
from lab.psrp import PipelineRun, PoolSession
from lab.scripts import ScriptRegistry
from lab.state import HostState
from lab.wsman import faults
from lab.wsman import names as n
from lab.wsman.envelope import WSManRequest, element, parse_duration, text

log = logging.getLogger(__name__)

DEFAULT_OPERATION_TIMEOUT_S = 60.0
DEFAULT_IDLE_TIMEOUT_S = 7200.0  # WinRM's default shell IdleTimeOut
SERVER_MAX_ENVELOPE_KB = 500
# WinRM 2.0 (Windows 7 / Server 2008 R2, builds below 9200) assigns shell and command ids itself,
# ignoring the client's, and its CreateResponse carries no rsp:Shell (see the 2.1 recording).
WINRM3_FIRST_BUILD = 9200
_ENVELOPE_OVERHEAD = 1024  # header and ReceiveResponse wrapper of a response
_STREAM_OVERHEAD = 120  # <rsp:Stream Name="stdout" CommandId="…"> and its end tag


@dataclass(frozen=True)
class Reply:
    """A successful response: its action and the markup that goes inside ``s:Body``."""

    action: str
    body: str = ""


@dataclass
class Shell:
    """One WS-Management shell (one runspace pool) and the pipelines running in it."""

    shell_id: str
    resource_uri: str
    owner: str
    client_ip: str
    idle_timeout: str
    session: PoolSession
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _changed: asyncio.Future[None] | None = None

    def notify(self) -> None:
        """New fragments are queued: wake every Receive waiting on this shell."""
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def wait_for_data(self, timeout: float) -> None:
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(asyncio.shield(self._changed), timeout)

    def idle_expired(self, now: float) -> bool:
        try:
            limit = parse_duration(self.idle_timeout)
        except ValueError:
            limit = DEFAULT_IDLE_TIMEOUT_S
        return not self.tasks and now - self.last_used > limit

    def cancel_tasks(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()

    def xml(self, *, detailed: bool) -> str:
        """``rsp:Shell`` with the fields, in the order, Windows Server 2016+ returns them."""
        elapsed = int(time.monotonic() - self.created)
        fields = [
            ("ShellId", self.shell_id),
            ("ResourceUri", self.resource_uri),
            ("Owner", self.owner),
            ("ClientIP", self.client_ip),
            ("ProcessId", str(4000 + zlib.crc32(self.shell_id.encode()) % 4000)),
            ("IdleTimeOut", self.idle_timeout),
            ("InputStreams", "stdin pr"),
            ("OutputStreams", "stdout"),
            ("MaxIdleTimeOut", "PT2147483.647S"),
            ("Locale", "en-US"),
            ("DataLocale", "en-US"),
            ("CompressionMode", "NoCompression"),
            ("ProfileLoaded", "Yes"),
            ("Encoding", "UTF8"),
            ("BufferMode", "Block"),
            ("State", "Connected"),
            ("ShellRunTime", _duration(elapsed)),
            ("ShellInactivity", _duration(0)),
        ]
        if detailed:
            fields += [("MemoryUsed", "58MB"), ("ChildProcesses", "0")]
        children = [element(f"rsp:{tag}", text(value)) for tag, value in fields]
        return f'<rsp:Shell xmlns:rsp="{n.NS_SHELL}">{"".join(children)}</rsp:Shell>'


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


def _encoded_size(fragment: bytes) -> int:
    return 4 * math.ceil(len(fragment) / 3) + _STREAM_OVERHEAD


def _b64(data: str | None) -> bytes:
    try:
        return base64.b64decode(data or "", validate=True)
    except binascii.Error:
        raise faults.invalid_xml("A stream is not valid base64.") from None


class HostService:
    """Answers the WS-Management requests of one host.  All methods run on the lab's event loop."""

    def __init__(self, config: HostConfig, state: HostState, registry: ScriptRegistry) -> None:
        self.config = config
        self.state = state
        self.executor = PipelineExecutor(state, registry, config.faults)
        self.shells: dict[str, Shell] = {}
        # Requests by action name and faults by code: for tests, debugging and a later `lab status`.
        self.stats: collections.Counter[str] = collections.Counter()
        self._actions: dict[str, Callable[[WSManRequest, Shell | None, str, str], Awaitable[Reply]]] = {
            n.ACTION_CREATE: self._create,
            n.ACTION_COMMAND: self._command,
            n.ACTION_SEND: self._send,
            n.ACTION_RECEIVE: self._receive,
            n.ACTION_SIGNAL: self._signal,
            n.ACTION_DELETE: self._delete,
            n.ACTION_GET: self._get,
        }

    @property
    def faults(self) -> FaultSpec:
        return self.config.faults

    async def handle(self, request: WSManRequest, user: str, client_ip: str) -> Reply:
        """Answer one request from an authenticated ``user``; raises :class:`WSManFault`."""
        self.stats[request.action.rsplit("/", 1)[-1]] += 1
        try:
            action = self._actions.get(request.action)
            if action is None:
                raise faults.action_not_supported(request.action)
            shell = self._shell_for(request)
            if shell is not None:
                shell.last_used = time.monotonic()
            return await action(request, shell, user, client_ip)
        except faults.WSManFault as fault:
            self.stats[f"fault:{fault.code}"] += 1
            raise

    def drop_shells(self) -> int:
        """Forget every shell, as a WinRM service restart does; returns how many there were."""
        for shell in self.shells.values():
            shell.cancel_tasks()
        count = len(self.shells)
        self.shells.clear()
        return count

    def reap_idle_shells(self, now: float | None = None) -> int:
        """Remove shells idle for longer than their IdleTimeOut; returns how many went."""
        now = time.monotonic() if now is None else now
        expired = [shell for shell in self.shells.values() if shell.idle_expired(now)]
        for shell in expired:
            shell.cancel_tasks()
            del self.shells[shell.shell_id]
        return len(expired)

    def _shell_for(self, request: WSManRequest) -> Shell | None:
        shell_id = request.selectors.get("ShellId")
        if shell_id is None:
            return None
        shell = self.shells.get(shell_id.upper())
        if shell is None:
            raise (
                faults.unknown_shell_on_get()
                if request.action == n.ACTION_GET
                else faults.unknown_shell(shell_id)
            )
        return shell

    @staticmethod
    def _require(shell: Shell | None) -> Shell:
        if shell is None:
            raise faults.invalid_header("The request does not name a shell (ShellId selector missing).")
        return shell

    # -- actions -----------------------------------------------------------------------------

    async def _create(self, request: WSManRequest, _: Shell | None, user: str, client_ip: str) -> Reply:
        if not request.resource_uri.startswith(n.POWERSHELL_RESOURCE_PREFIX):
            raise faults.resource_not_found(request.resource_uri)
        self._check_quota(user)
        shell_element = request.find("rsp:Shell")
        creation = request.find("rsp:Shell/pwsh:creationXml")
        if shell_element is None or creation is None:
            raise faults.invalid_xml("Create needs rsp:Shell with a creationXml.")
        shell_id = (self._client_id(shell_element.get("ShellId")) or str(uuid.uuid4())).upper()
        idle = request.find("rsp:Shell/rsp:IdleTimeOut")
        shell = Shell(
            shell_id=shell_id,
            resource_uri=request.resource_uri,
            owner=user,
            client_ip=client_ip,
            idle_timeout=(idle.text or "").strip() if idle is not None and idle.text else "PT7200.000S",
            session=PoolSession(self.state.ps_version),
        )
        shell.session.on_data = shell.notify
        self._start_ready(shell, shell.session.feed(_b64(creation.text)))
        self.shells[shell_id] = shell
        created = element(
            "x:ResourceCreated",
            [
                element("a:Address", text(f"http://{self.state.fqdn}:5985/wsman")),
                element(
                    "a:ReferenceParameters",
                    [
                        element("w:ResourceURI", text(request.resource_uri)),
                        element("w:SelectorSet", element("w:Selector", text(shell_id), Name="ShellId")),
                    ],
                ),
            ],
        )
        details = "" if self.legacy_winrm else shell.xml(detailed=False)
        return Reply(n.TRANSFER_ACTION + "CreateResponse", created + details)

    @property
    def legacy_winrm(self) -> bool:
        return self.config.os_build < WINRM3_FIRST_BUILD

    def _client_id(self, requested: str | None) -> str | None:
        return None if self.legacy_winrm else requested

    def _check_quota(self, user: str) -> None:
        limit = self.faults.max_shells
        if limit is None:
            return
        owned = sum(1 for shell in self.shells.values() if shell.owner.lower() == user.lower())
        if owned >= limit:
            raise faults.quota_max_shells(limit)

    async def _command(self, request: WSManRequest, shell: Shell | None, _: str, __: str) -> Reply:
        shell = self._require(shell)
        command_line = request.find("rsp:CommandLine")
        arguments = request.find("rsp:CommandLine/rsp:Arguments")
        if command_line is None or arguments is None:
            raise faults.invalid_xml("Command needs rsp:CommandLine with the PSRP arguments.")
        command_id = (self._client_id(command_line.get("CommandId")) or str(uuid.uuid4())).upper()
        data = _b64(arguments.text)
        self._forget(shell, command_id)  # pypsrp re-uses a PowerShell's id for its next invocation
        try:
            shell.session.add_pipeline(command_id, data)
        except ValueError as exc:
            raise faults.invalid_xml(str(exc)) from None
        self._start_ready(shell, shell.session.feed(data))
        body = element("rsp:CommandResponse", element("rsp:CommandId", text(command_id)))
        return Reply(n.SHELL_ACTION + "CommandResponse", body)

    async def _send(self, request: WSManRequest, shell: Shell | None, _: str, __: str) -> Reply:
        shell = self._require(shell)
        for stream in request.body.findall("rsp:Send/rsp:Stream", {"rsp": n.NS_SHELL}):
            command_id = stream.get("CommandId")
            if command_id is not None and command_id.upper() not in shell.session.runs:
                raise faults.unknown_command()
            self._start_ready(shell, shell.session.feed(_b64(stream.text)))
        return Reply(n.SHELL_ACTION + "SendResponse", element("rsp:SendResponse"))

    async def _receive(self, request: WSManRequest, shell: Shell | None, _: str, __: str) -> Reply:
        shell = self._require(shell)
        desired = request.find("rsp:Receive/rsp:DesiredStream")
        command_id = desired.get("CommandId") if desired is not None else None
        target = command_id.upper() if command_id else None
        run = shell.session.runs.get(target) if target else None
        if target is not None and run is None:
            raise faults.unknown_command()
        timeout = request.operation_timeout_s or DEFAULT_OPERATION_TIMEOUT_S
        await self._wait_for_output(shell, target, run, timeout)
        limit = request.max_envelope_size - _ENVELOPE_OVERHEAD
        fragments = shell.session.take(
            target, lambda taken, nxt: sum(map(_encoded_size, taken)) + _encoded_size(nxt) <= limit
        )
        return Reply(
            n.SHELL_ACTION + "ReceiveResponse", self._receive_body(shell, command_id, run, fragments)
        )

    async def _wait_for_output(
        self, shell: Shell, target: str | None, run: PipelineRun | None, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not shell.session.pending(target) and not (run is not None and run.finished):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise faults.operation_timed_out()
            try:
                await shell.wait_for_data(remaining)
            except TimeoutError:
                raise faults.operation_timed_out() from None

    @staticmethod
    def _receive_body(
        shell: Shell, command_id: str | None, run: PipelineRun | None, fragments: Sequence[bytes]
    ) -> str:
        attributes = {"Name": "stdout"} | ({"CommandId": command_id} if command_id else {})
        streams = [
            element("rsp:Stream", base64.b64encode(f).decode("ascii"), **attributes) for f in fragments
        ]
        if run is not None and command_id and run.finished and not shell.session.pending(run.command_id):
            streams.append(
                element(
                    "rsp:CommandState",
                    element("rsp:ExitCode", "0"),
                    CommandId=command_id,
                    State=n.COMMAND_STATE_DONE,
                )
            )
        return element("rsp:ReceiveResponse", streams)

    async def _signal(self, request: WSManRequest, shell: Shell | None, _: str, __: str) -> Reply:
        shell = self._require(shell)
        signal = request.find("rsp:Signal")
        command_id = (signal.get("CommandId") or "").upper() if signal is not None else ""
        code = (signal.findtext(f"{{{n.NS_SHELL}}}Code") or "").strip() if signal is not None else ""
        run = shell.session.runs.get(command_id)
        if run is None:
            raise faults.unknown_command()
        task = shell.tasks.pop(command_id, None)
        if task is not None:
            task.cancel()
        if code.endswith("ctrl_c"):
            run.stop()
        else:
            shell.session.remove(command_id)
        return Reply(n.SHELL_ACTION + "SignalResponse", element("rsp:SignalResponse"))

    async def _delete(self, request: WSManRequest, shell: Shell | None, _: str, __: str) -> Reply:
        shell = self._require(shell)
        shell.cancel_tasks()
        self.shells.pop(shell.shell_id, None)
        return Reply(n.TRANSFER_ACTION + "DeleteResponse")

    async def _get(self, request: WSManRequest, shell: Shell | None, _: str, __: str) -> Reply:
        if request.resource_uri.rstrip("/") == n.CONFIG_RESOURCE:
            config = element("cfg:Config", element("cfg:MaxEnvelopeSizekb", str(SERVER_MAX_ENVELOPE_KB)))
            return Reply(n.TRANSFER_ACTION + "GetResponse", config)
        if shell is None:
            raise faults.resource_not_found(request.resource_uri)
        return Reply(n.TRANSFER_ACTION + "GetResponse", shell.xml(detailed=True))

    # -- pipelines ---------------------------------------------------------------------------

    def _start_ready(self, shell: Shell, ready: list[PipelineRun]) -> None:
        for run in ready:
            task = asyncio.get_running_loop().create_task(
                self.executor.run(run), name=f"{self.state.name}/{run.command_id}"
            )
            shell.tasks[run.command_id] = task
            task.add_done_callback(functools.partial(_task_done, shell, run.command_id))

    @staticmethod
    def _forget(shell: Shell, command_id: str) -> None:
        task = shell.tasks.pop(command_id, None)
        if task is not None:
            task.cancel()
        shell.session.remove(command_id)


def _task_done(shell: Shell, command_id: str, task: asyncio.Task[None]) -> None:
    if shell.tasks.get(command_id) is task:
        del shell.tasks[command_id]
    if not task.cancelled() and task.exception() is not None:
        log.error("pipeline task %s failed", command_id, exc_info=task.exception())
