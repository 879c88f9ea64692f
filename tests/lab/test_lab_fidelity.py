"""Fidelity: replay real Windows exchanges against a simulated host and compare the answers.

Each recorded request (UUIDs kept) is POSTed to a fresh lab host; the lab's response must have
the recorded action, the same body element structure, the same fault code, and over the whole
scenario the same sequence of PSRP message types per target.  Output *values* differ by design.

The commands the recordings ran are modelled by the small handlers below: each writes the
streams that PowerShell command writes on Windows.  Windows PowerShell 3.0+ also writes the
progress record "Preparing modules for first use." the first time a runspace auto-loads a module
(here Microsoft.PowerShell.Utility for ``echo``/``Write-*``); PowerShell 2.0 has no auto-loading.

A scenario that needs something the lab does not simulate is skipped, with the reason, in
:data:`SKIPPED`.  The recordings folder must exist: a missing folder fails, it never skips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from lab import FleetConfig, HostConfig, Lab, ScriptCall, ScriptRegistry
from lab.config import LAB_PASSWORD, LAB_USERNAME
from lab.scripts import Handler, Resolution
from tests.lab.recordings import (
    CLIENT_INJECTED,
    Summary,
    load,
    recorded_version,
    recordings_dir,
    shorten_timeout,
    summarize,
)

_DISCONNECTED = "disconnected sessions (Disconnect/Reconnect/Connect/Enumerate) are not simulated"
_HOST_CALLS = "PSHost calls (PIPELINE_HOST_CALL and host responses) are not simulated"
SKIPPED = {
    "test_psrp_disconnect_runspaces": _DISCONNECTED,
    "test_psrp_disconnected_commands": _DISCONNECTED,
    "test_psrp_is_alive_state_disconnected": "a shell disconnected by another client (State=Disconnected) is "
    "not simulated; the envelope structure matches but the state value is the point of the scenario",
    "test_psrp_get_command_metadata": "GET_COMMAND_METADATA is not simulated (no command catalogue)",
    "test_psrp_pshost_methods": _HOST_CALLS,
    "test_psrp_pshost_raw_ui_mocked_methods": _HOST_CALLS,
    "test_psrp_pshost_ui_mocked_methods": _HOST_CALLS,
    "test_psrp_with_history": "PowerShell command history (AddToHistory, Get-History) is not simulated",
    "test_psrp_reset_runspace_state": "command history cleared by ResetRunspaceState (seen through "
    "Get-History) is not simulated; the reset message is covered by test_psrp_reset_runspace_state_fail",
    "test_psrp_with_jea_configuration": "JEA session configurations (restricted language, visible "
    "cmdlets) are not simulated",
}

# Events outside the recorded exchange that the replay has to reproduce, by message index.
OUT_OF_BAND: dict[str, dict[int, Callable[[Lab, str], object]]] = {
    # Between the two Gets the shell was removed on the server (the recording holds no Delete).
    "test_psrp_is_alive_invalid_selectors": {4: lambda lab, host: lab.drop_shells(host)},
}

AUTOLOAD = "Preparing modules for first use."


@dataclass
class LoadedModules:
    """Host state component: modules this host has auto-loaded (one runspace per scenario)."""

    names: set[str] = field(default_factory=set)


def autoload(call: ScriptCall, module: str = "Microsoft.PowerShell.Utility") -> None:
    loaded = call.host.component(LoadedModules)
    if int(call.host.ps_version.split(".")[0]) >= 3 and module not in loaded.names:
        loaded.names.add(module)
        call.write_progress(AUTOLOAD, "Loading", -1)


class ReplayRegistry(ScriptRegistry):
    """Handlers for the ad-hoc script texts the recordings sent (they carry no id header)."""

    def __init__(self) -> None:
        super().__init__()
        self._texts: dict[str, Handler] = {}

    def text(self, script: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._texts[" ".join(script.split())] = handler
            return handler

        return register

    def resolve(self, command_text: str, is_script: bool) -> Resolution:
        handler = self._texts.get(" ".join(command_text.split())) if is_script else None
        if handler is not None:
            return Resolution(term=command_text, key="replay.script", handler=handler)
        return super().resolve(command_text, is_script)


REPLAY = ReplayRegistry()


@REPLAY.text("$PSSenderInfo.ApplicationArguments")
def application_arguments(call: ScriptCall) -> list[object]:
    return [{"test": "value"}]


@REPLAY.text("echo new")
@REPLAY.text("echo hi")
def echo(call: ScriptCall) -> list[object]:
    autoload(call)
    return ["echoed"]


@REPLAY.text("1+1")
def one_plus_one(call: ScriptCall) -> list[object]:
    return [2]


@REPLAY.text("$i = 0; while ($true) { $i++ }")
async def busy_loop(call: ScriptCall) -> None:
    await asyncio.Event().wait()  # until the client stops it


@REPLAY.command("Get-Variable")
def get_variable(call: ScriptCall) -> list[object]:
    return [{"Name": call.params.get("Name"), "Value": 1}]


@REPLAY.text("$env:USERPROFILE.ToUpperInvariant()")
def user_profile(call: ScriptCall) -> list[object]:
    return ["C:\\USERS\\DEFAULT"]


@REPLAY.text(
    "begin {\n    $DebugPreference = 'Continue'\n    Write-Debug \"Start Block\"\n"
    '    Write-Error "error"\n}\nprocess {\n    $input\n}\nend {\n    Write-Debug "End Block"\n}'
)
def begin_process_end(call: ScriptCall) -> list[object]:
    autoload(call)
    call.write_debug("Start Block")
    call.write_error("error")  # the recorded pipeline merges errors into output (2>&1)
    for item in call.input:
        call.write_output(item)
    call.write_debug("End Block")
    return []


@REPLAY.text(
    "$DebugPreference = 'Continue'\n$VerbosePreference = 'Continue'\nWrite-Debug 'debug stream'\n"
    "Write-Verbose 'verbose stream'\nWrite-Error 'error stream'\nWrite-Output 'output stream'\n"
    "Write-Warning 'warning stream'\nWrite-Information 'information stream'"
)
def all_streams(call: ScriptCall) -> list[object]:
    autoload(call)
    call.write_debug("debug stream")
    call.write_verbose("verbose stream")
    call.write_error("error stream")
    call.write_output("output stream")
    call.write_warning("warning stream")
    call.write_information("information stream")
    return []


def recording_names() -> list[str]:
    folder = recordings_dir()
    if not folder.is_dir():
        return ["<recordings folder missing>"]
    return sorted(path.stem for path in folder.glob("*.yml") if not path.name.startswith("_"))


NAMES = recording_names()


def host_name(index: int) -> str:
    return f"REPLAY-{index:02d}"


@pytest.fixture(scope="module")
def replay_lab() -> Iterator[Lab]:
    folder = recordings_dir()
    if not folder.is_dir():
        pytest.fail(f"recordings folder not found: {folder} (set FLEETFIX_SHARED_DIR to the shared folder)")
    hosts = tuple(replay_host(index, load(folder / f"{name}.yml")) for index, name in enumerate(NAMES))
    with Lab(FleetConfig(hosts=hosts), registry=REPLAY) as lab:
        yield lab


def replay_host(index: int, messages: list[dict[str, object]]) -> HostConfig:
    """A host as old as the recorded one: PowerShell version and OS build (WinRM 2.0 behaves differently)."""
    build = recorded_version(messages, "BuildVersion", "10.0.14393.0")
    return HostConfig(
        name=host_name(index),
        allow_unencrypted=True,
        ps_version=recorded_version(messages, "PSVersion", "5.1.14393.0"),
        os_build=int(build.split(".")[2]) if build.count(".") >= 2 else 14393,
    )


def test_recordings_folder_is_present() -> None:
    folder = recordings_dir()
    assert folder.is_dir(), f"recordings folder not found: {folder}"
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
def test_replay_matches_windows(replay_lab: Lab, name: str) -> None:
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    host = host_name(NAMES.index(name))
    diffs = replay(replay_lab, host, recordings_dir() / f"{name}.yml", OUT_OF_BAND.get(name, {}))
    assert diffs == [], "\n".join(diffs)


def replay(lab: Lab, host: str, path: Path, events: dict[int, Callable[[Lab, str], object]]) -> list[str]:
    url = lab.info.endpoint(host).url(tls=False)
    session = requests.Session()
    session.auth = (LAB_USERNAME, LAB_PASSWORD)
    ids: dict[str, str] = {}  # recorded id -> lab id (a shell id the server chose)
    windows: dict[str, list[str]] = {}
    ours: dict[str, list[str]] = {}
    diffs: list[str] = []
    for index, message in enumerate(load(path)):
        if index in events:
            events[index](lab, host)
        if any(message.get(key) for key in CLIENT_INJECTED):
            continue  # the recorder injected this outcome; Windows never answered it
        request = shorten_timeout(message["request"], 0.5)
        for recorded_id, lab_id in ids.items():
            request = request.replace(recorded_id, lab_id)
        response = session.post(
            url,
            data=request.encode(),
            headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
            timeout=30,
        )
        expected, actual = summarize(message["response"]), summarize(response.text)
        for recorded, chosen in (
            (expected.shell_id, actual.shell_id),
            (expected.command_id, actual.command_id),
        ):
            if recorded and chosen and recorded != chosen:
                ids[recorded] = chosen  # the server chose the id (WinRM 2.0 ignores the client's)
        for target, kinds in expected.psrp.items():
            windows.setdefault(ids.get(target, target), []).extend(kinds)
        for target, kinds in actual.psrp.items():
            ours.setdefault(target, []).extend(kinds)
        diffs += compare(index, expected, actual)
    for target in sorted(set(windows) | set(ours)):
        if windows.get(target, []) != ours.get(target, []):
            diffs.append(f"PSRP {target[:8]}: windows {windows.get(target)} lab {ours.get(target)}")
    return diffs


def compare(index: int, expected: Summary, actual: Summary) -> list[str]:
    if actual.timed_out and expected.action == "ReceiveResponse":
        # Windows spread the pool's opening messages over several Receives; the lab sent them all
        # in the first one, so this long-poll finds nothing.  The PSRP totals still have to match.
        return []
    if expected.action != actual.action:
        return [
            f"message {index}: action {expected.action} != lab {actual.action} (fault {actual.fault_code})"
        ]
    if expected.fault_code != actual.fault_code:
        return [f"message {index}: fault code {expected.fault_code} != lab {actual.fault_code}"]
    missing, extra = expected.paths - actual.paths, actual.paths - expected.paths
    if missing or extra:
        return [f"message {index} {expected.action}: missing {sorted(missing)} extra {sorted(extra)}"]
    return []
