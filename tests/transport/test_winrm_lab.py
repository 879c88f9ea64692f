"""WinRMSession with the real pypsrp client against lab hosts over real sockets.

Auth modes, every injected fault (each mapped to its fleetfix error, within its time bound), one
pool for several scripts, and a hostile parameter value that arrives unchanged as data.  Elapsed
times are checked only as upper bounds that prove a timeout works, never as performance figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TypedDict, Unpack

import pytest

from lab import FaultSpec, Flap, FleetConfig, HostConfig, Lab, Latency
from lab.config import LAB_PASSWORD
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.errors import (
    AuthFailedError,
    BadOutputError,
    InputError,
    OutputTooLargeError,
    ScriptFailedError,
    ThrottledError,
    TimedOutError,
    TLSError,
    TransportError,
    UnreachableError,
)
from orchestrator.inventory.models import Host
from orchestrator.scripts import DIAG_ECHO, HOST_INFO, DiagEcho
from orchestrator.transport.winrm import TransportPolicy, WinRMSession
from tests.transport.support import LAB_CREDENTIAL, RecordingRegistry, lab_host

TEN_MB = 10 * 1024 * 1024


class WinRM(TypedDict, total=False):
    """The inventory ``winrm`` settings these tests vary (:func:`lab_host`'s keywords)."""

    tls: bool
    auth: str
    allow_unencrypted: bool
    connection_timeout: int
    operation_timeout: int
    read_timeout: int


# Quick settings for hosts that answer; the fault tests say which layer they exercise.
FAST: WinRM = {"connection_timeout": 2, "operation_timeout": 2, "read_timeout": 4}


def faulty(name: str, **faults: object) -> HostConfig:
    return HostConfig(name=name, https_port=0, faults=FaultSpec.model_validate(faults))


FLEET = FleetConfig(
    hosts=(
        HostConfig(name="EP-AUTH", https_port=0, allow_unencrypted=True, os_build=26100, os_ubr=2314),
        HostConfig(name="EP-STRICT", https_port=0),
        faulty("EP-REFUSE", refuse=True),
        faulty("EP-HANG", hang=True),
        faulty("EP-AUTHFAIL", auth_failure=True),
        faulty("EP-LATENCY", latency=Latency(fixed_ms=100, jitter_ms=20)),
        faulty("EP-SLOW", slow_command_s=2.5),
        faulty("EP-FOREVER", slow_command_s=600),
        faulty("EP-THROW", terminating_error="Access to the registry key is denied."),
        faulty("EP-ERRORS", error_records=("first problem", "second problem")),
        faulty("EP-MALFORMED", malformed_output=True),
        faulty("EP-HUGE", oversized_output_bytes=TEN_MB),
        faulty("EP-FLAP", flap=Flap(period_s=1.0, down_s=0.5)),
        faulty("EP-QUOTA", max_shells=1),
    )
)


@pytest.fixture(scope="module")
def registry() -> RecordingRegistry:
    return RecordingRegistry()


@pytest.fixture(scope="module")
def lab(registry: RecordingRegistry) -> Iterator[Lab]:
    with Lab(FLEET, registry=registry) as running:
        yield running


def session(
    lab: Lab, name: str, policy: TransportPolicy | None = None, **winrm: Unpack[WinRM]
) -> WinRMSession:
    host = lab_host(lab.info, name, **winrm)
    return WinRMSession(host, LAB_CREDENTIAL, policy=policy or TransportPolicy())


def echo(lab: Lab, name: str, value: str = "probe", **winrm: Unpack[WinRM]) -> DiagEcho:
    with session(lab, name, **winrm) as opened:
        return opened.run(DIAG_ECHO.bind(Value=value)).value


def failure(
    lab: Lab, name: str, policy: TransportPolicy | None = None, **winrm: Unpack[WinRM]
) -> tuple[TransportError, float]:
    """The error running diag.echo on ``name`` ends with, and how long it took."""
    started = time.monotonic()
    with pytest.raises(TransportError) as caught, session(lab, name, policy, **winrm) as opened:
        opened.run(DIAG_ECHO.bind(Value="probe"))
    return caught.value, time.monotonic() - started


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "tls"),
    [
        pytest.param("basic", True, id="basic-https"),
        pytest.param("basic", False, id="basic-http-allowed"),
        pytest.param("ntlm", False, id="ntlm-http-sealed"),
        pytest.param("ntlm", True, id="ntlm-https"),
        pytest.param("negotiate", False, id="negotiate-http-sealed"),
        pytest.param("negotiate", True, id="negotiate-https-cbt"),
    ],
)
def test_auth_modes_run_several_probes_on_one_pool(lab: Lab, auth: str, tls: bool) -> None:
    creates_before = lab.stats("EP-AUTH").get("Create", 0)
    winrm: WinRM = {"auth": auth, "tls": tls}
    if auth == "basic" and not tls:
        winrm["allow_unencrypted"] = True
    with session(lab, "EP-AUTH", **winrm) as opened:
        info = opened.run(HOST_INFO.bind()).value
        first = opened.run(DIAG_ECHO.bind(Value="one")).value
        second = opened.run(DIAG_ECHO.bind(value="two")).value  # PowerShell names ignore case
    assert (info.computer_name, info.fqdn, info.os_build, info.os_ubr) == (
        "EP-AUTH",
        "ep-auth.lab.fleetfix.test",
        26100,
        2314,
    )
    assert (first.value, second.value) == ("one", "two")
    assert lab.stats("EP-AUTH")["Create"] == creates_before + 1  # one runspace pool for all three
    assert lab.shell_count("EP-AUTH") == 0  # and it was closed


def test_kerberos_is_passed_through_to_pypsrp(lab: Lab) -> None:
    # The lab has no KDC (and this machine no gssapi): pypsrp is asked for Kerberos and the
    # failure is an auth error naming the scheme, not a library exception.
    error, _ = failure(lab, "EP-AUTH", auth="kerberos", tls=True)
    assert isinstance(error, AuthFailedError)
    assert "kerberos authentication as 'fleetfix'" in str(error)


@pytest.mark.parametrize(("auth", "tls"), [("basic", True), ("ntlm", False), ("negotiate", True)])
def test_refused_login_names_user_and_host_never_the_password(lab: Lab, auth: str, tls: bool) -> None:
    error, elapsed = failure(lab, "EP-AUTHFAIL", auth=auth, tls=tls)
    assert isinstance(error, AuthFailedError)
    assert str(error).startswith("EP-AUTHFAIL: user 'fleetfix' was refused")
    assert LAB_PASSWORD not in str(error)
    assert LAB_PASSWORD not in repr(error.to_dict())
    assert elapsed < 5


def test_wrong_password_is_an_auth_failure(lab: Lab) -> None:
    host = lab_host(lab.info, "EP-STRICT", auth="ntlm", tls=False)
    wrong = Credential("fleetfix", Secret("Not-The-Passw0rd"))
    with pytest.raises(AuthFailedError) as caught, WinRMSession(host, wrong):
        pass
    assert "Not-The-Passw0rd" not in str(caught.value)


def test_untrusted_listener_certificate_is_a_tls_error(lab: Lab) -> None:
    # Without the lab CA the listener's certificate cannot be validated (system trust only).
    host = lab_host(lab.info, "EP-STRICT").model_copy(deep=True)
    winrm = host.winrm.model_copy(update={"ca_bundle": None})
    error, elapsed = failure_for(host.model_copy(update={"winrm": winrm}))
    assert isinstance(error, TLSError)
    assert "certificate verify failed" in str(error)
    assert elapsed < 5


def failure_for(host: Host) -> tuple[TransportError, float]:
    started = time.monotonic()
    with pytest.raises(TransportError) as caught, WinRMSession(host, LAB_CREDENTIAL) as opened:
        opened.run(DIAG_ECHO.bind())
    return caught.value, time.monotonic() - started


def test_basic_over_plain_http_refused_before_any_connection(lab: Lab) -> None:
    host = lab_host(lab.info, "EP-STRICT", auth="basic", tls=False, allow_unencrypted=True)
    unsafe = host.model_copy(update={"winrm": host.winrm.model_copy(update={"allow_unencrypted": False})})
    before = dict(lab.stats("EP-STRICT"))
    with pytest.raises(InputError, match="in the clear"):
        WinRMSession(unsafe, LAB_CREDENTIAL)
    assert lab.stats("EP-STRICT") == before  # nothing was sent


# -- faults ----------------------------------------------------------------------------------------


def test_refused_connection_is_unreachable_at_once(lab: Lab) -> None:
    error, elapsed = failure(lab, "EP-REFUSE", **FAST)
    assert isinstance(error, UnreachableError)
    assert "refused" in str(error).lower()
    assert elapsed < 3  # one reconnection attempt, no timeout involved


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https-no-handshake"])
def test_host_that_accepts_and_never_answers_times_out_at_its_read_timeout(lab: Lab, tls: bool) -> None:
    error, elapsed = failure(
        lab, "EP-HANG", tls=tls, auth="ntlm", connection_timeout=2, operation_timeout=1, read_timeout=3
    )
    assert isinstance(error, TimedOutError)
    assert elapsed < 3 + 1.5


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https-no-handshake"])
def test_host_that_never_answers_is_bounded_by_the_deadline_whatever_its_timeouts(
    lab: Lab, tls: bool
) -> None:
    # Inventory defaults (connect 10 s, read 30 s, operation 20 s) and pypsrp's retries would wait
    # minutes; the session deadline cuts every request to what is left of it.  Over http the
    # read of the first request is cut to the whole 4 s; over https the stalled handshake runs
    # under the connect timeout, cut to 2 s (its share next to one reconnection retry).
    error, elapsed = failure(lab, "EP-HANG", TransportPolicy(deadline_s=4), tls=tls, auth="ntlm")
    assert isinstance(error, TimedOutError)
    assert (3.5 if not tls else 1.5) < elapsed < 4 + 1.5


def test_command_that_never_finishes_is_bounded_by_the_deadline(lab: Lab) -> None:
    # The host answers every long-poll (w:TimedOut) but the script never ends.
    error, elapsed = failure(lab, "EP-FOREVER", TransportPolicy(deadline_s=4), **FAST)
    assert isinstance(error, TimedOutError)
    assert "deadline" in str(error) or "in time" in str(error)
    assert elapsed < 4 + 1.5


def test_latency_is_paid_per_round_trip_and_still_works(lab: Lab) -> None:
    assert echo(lab, "EP-LATENCY", "slowly").value == "slowly"


def test_command_longer_than_the_operation_timeout_completes(lab: Lab) -> None:
    # Each Receive long-polls 1 s and is answered w:TimedOut; the session polls again.
    faults_before = lab.stats("EP-SLOW").get("fault:2150858793", 0)
    assert echo(
        lab, "EP-SLOW", "eventually", connection_timeout=2, operation_timeout=1, read_timeout=3
    ).value == ("eventually")
    assert lab.stats("EP-SLOW")["fault:2150858793"] >= faults_before + 2


def test_terminating_error_carries_the_error_record_and_the_session_goes_on(lab: Lab) -> None:
    with session(lab, "EP-THROW") as opened:
        for _ in range(2):  # a script failure does not end the session
            with pytest.raises(ScriptFailedError) as caught:
                opened.run(HOST_INFO.bind())
            error = caught.value
            assert str(error) == "EP-THROW: host.info failed: Access to the registry key is denied."
            assert error.error_record is not None
            assert error.error_record.splitlines()[0] == "Access to the registry key is denied."
            assert "FullyQualifiedErrorId : RuntimeException" in error.error_record
            assert error.to_dict()["error_record"] == error.error_record
    assert lab.shell_count("EP-THROW") == 0


def test_non_terminating_errors_come_with_the_result(lab: Lab) -> None:
    with session(lab, "EP-ERRORS") as opened:
        result = opened.run(DIAG_ECHO.bind(Value="still here"))
    assert result.value == DiagEcho(value="still here", length=10)
    assert result.errors == ("first problem", "second problem")


def test_malformed_output_is_bad_output(lab: Lab) -> None:
    error, _ = failure(lab, "EP-MALFORMED")
    assert isinstance(error, BadOutputError)
    assert "diag.echo output does not match its schema" in str(error)


def test_output_over_the_cap_is_stopped_early_and_the_pool_survives(lab: Lab) -> None:
    policy = TransportPolicy(max_output_bytes=1024 * 1024)
    receives_before = lab.stats("EP-HUGE").get("Receive", 0)
    with session(lab, "EP-HUGE", policy) as opened:
        for _ in range(2):
            with pytest.raises(OutputTooLargeError, match="more than 1048576 bytes"):
                opened.run(DIAG_ECHO.bind(Value="big"))
    # 10 MB would take 20+ Receives; the cap stopped each pipeline after about 1 MB of them.
    assert lab.stats("EP-HUGE")["Receive"] - receives_before < 2 * 6
    assert lab.shell_count("EP-HUGE") == 0


def test_flapping_host_is_sometimes_unreachable(lab: Lab) -> None:
    outcomes: set[str] = set()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and outcomes != {"ok", "unreachable"}:
        try:
            echo(lab, "EP-FLAP", **FAST)
            outcomes.add("ok")
        except UnreachableError:
            outcomes.add("unreachable")
        time.sleep(0.1)
    assert outcomes == {"ok", "unreachable"}


def test_shell_quota_is_throttling(lab: Lab) -> None:
    with session(lab, "EP-QUOTA"):
        error, _ = failure(lab, "EP-QUOTA")
    assert isinstance(error, ThrottledError)
    assert "concurrent shells" in str(error)
    assert echo(lab, "EP-QUOTA").value == "probe"  # room again once the first pool is closed


def test_an_ended_session_fails_fast_with_the_same_kind(lab: Lab) -> None:
    policy = TransportPolicy(deadline_s=2)
    with session(lab, "EP-FOREVER", policy, **FAST) as opened:
        with pytest.raises(TimedOutError):
            opened.run(DIAG_ECHO.bind())
        started = time.monotonic()
        with pytest.raises(TimedOutError, match="session ended earlier"):
            opened.run(HOST_INFO.bind())
        assert time.monotonic() - started < 0.5


# -- parameters are data -----------------------------------------------------------------------------

HOSTILE = "\n".join(
    [
        "it's \"quoted\" 'twice'",
        "; Remove-Item -Recurse -Force C:\\ ;",
        "$(Stop-Computer -Force) ${env:PATH} $null",
        "`backtick` `n `$ @(1,2) @{a=1} | Out-Null # comment <# block #>",
        "_x0041_ _x000A_ \x00\x07 \r\n tab\t é ü 😀",
    ]
)


def test_hostile_value_arrives_unchanged_as_data(lab: Lab, registry: RecordingRegistry) -> None:
    value = HOSTILE + "A" * (1024 * 1024)
    registry.received.clear()
    with session(lab, "EP-STRICT") as opened:
        result = opened.run(DIAG_ECHO.bind(Value=value))
    assert result.value.value == value
    assert result.value.length == len(value.encode("utf-16-le")) // 2  # .NET counts UTF-16 units
    # The host was sent the shipped script text, byte for byte: the value was never part of it.
    assert registry.received == [DIAG_ECHO.text]


def test_sessions_on_several_threads(lab: Lab) -> None:
    # pypsrp objects are per session; sessions on different threads must not share state.
    results: dict[int, str] = {}

    def work(index: int) -> None:
        results[index] = echo(lab, "EP-STRICT", f"thread {index}").value

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {index: f"thread {index}" for index in range(8)}


def test_run_needs_an_open_session(lab: Lab) -> None:
    unopened = session(lab, "EP-STRICT")
    with pytest.raises(RuntimeError, match="not open"):
        unopened.run(HOST_INFO.bind())


@pytest.mark.parametrize(("auth", "tls"), [("basic", True), ("ntlm", False)])
def test_no_log_record_carries_the_password(
    lab: Lab, caplog: pytest.LogCaptureFixture, auth: str, tls: bool
) -> None:
    # Every logger at DEBUG, pypsrp's and urllib3's included (they log whole messages there).
    caplog.set_level(logging.DEBUG)
    echo(lab, "EP-STRICT", "logged", auth=auth, tls=tls)
    with pytest.raises(AuthFailedError):
        echo(lab, "EP-AUTHFAIL", auth=auth, tls=tls)
    assert caplog.records, "DEBUG logging was captured"
    assert LAB_PASSWORD not in caplog.text
