"""The real pypsrp 0.9.1 client against simulated hosts: authentication, pipelines, shells."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from lab import Account, FleetConfig, HostConfig, Lab
from lab.config import LAB_PASSWORD, LAB_USERNAME
from lab.wsman.faults import (
    ERROR_WSMAN_ACTION_NOT_SUPPORTED,
    ERROR_WSMAN_OPERATION_TIMEDOUT,
    ERROR_WSMAN_UNEXPECTED_SELECTORS,
)
from tests.lab.support import Captured, run, script_with_id, shipped_script, start_lab, wsman

ECHO = shipped_script("diag.echo")
HOST_INFO = shipped_script("host.info")

FLEET = FleetConfig(
    hosts=(
        HostConfig(
            name="EP-STRICT",
            https_port=0,
            os_build=26100,
            os_ubr=2314,
            role="rras",
            accounts=(
                Account(username=LAB_USERNAME, password=LAB_PASSWORD),
                Account(username="CORP\\svc-fleetfix", password="Colon:In:Passw0rd"),
            ),
        ),
        HostConfig(name="EP-OPEN", allow_unencrypted=True),
    )
)


@pytest.fixture(scope="module")
def lab(captured: Captured) -> Iterator[Lab]:
    yield from start_lab(FLEET, captured)


def echo(pool: RunspacePool, value: str) -> dict[str, object]:
    ps = run(pool, ECHO, Value=value)
    assert not ps.had_errors, ps.streams.error
    assert len(ps.output) == 1
    result = json.loads(ps.output[0])
    assert isinstance(result, dict)
    return result


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "tls"),
    [
        pytest.param("basic", True, id="basic-https"),
        pytest.param("ntlm", False, id="ntlm-http-encrypted"),
        pytest.param("negotiate", False, id="negotiate-http-encrypted"),
        pytest.param("negotiate", True, id="negotiate-https-cbt"),
    ],
)
def test_auth_modes_run_a_pipeline(lab: Lab, auth: str, tls: bool) -> None:
    client = wsman(lab.info.endpoint("EP-STRICT"), auth=auth, tls=tls, ca_bundle=lab.info.ca_bundle)
    with client, RunspacePool(client) as pool:
        assert echo(pool, "ping") == {"value": "ping", "length": 4}
        # Over HTTP, NTLM/Negotiate must use WinRM message encryption (multipart/encrypted).
        assert client.transport.wrap_required is (not tls)


@pytest.mark.parametrize(("auth", "tls"), [("ntlm", False), ("negotiate", True), ("basic", True)])
def test_domain_account_with_colons_in_password(lab: Lab, auth: str, tls: bool) -> None:
    endpoint = lab.info.endpoint("EP-STRICT")
    client = wsman(
        endpoint,
        auth=auth,
        tls=tls,
        ca_bundle=lab.info.ca_bundle,
        username="CORP\\svc-fleetfix",
        password="Colon:In:Passw0rd",
    )
    with client, RunspacePool(client) as pool:
        assert echo(pool, "domain")["value"] == "domain"
    # A known account is still refused on a host that does not list it.
    other = wsman(
        lab.info.endpoint("EP-OPEN"),
        auth=auth,
        tls=False,
        username="CORP\\svc-fleetfix",
        password="Colon:In:Passw0rd",
    )
    with pytest.raises(AuthenticationError), other, RunspacePool(other):
        pass


def test_https_needs_the_lab_ca(lab: Lab) -> None:
    client = wsman(lab.info.endpoint("EP-STRICT"), ca_bundle=None)  # system trust store only
    with pytest.raises(requests.exceptions.SSLError), client, RunspacePool(client):
        pass


def test_basic_over_http_refused_unless_allowed(lab: Lab) -> None:
    strict = wsman(lab.info.endpoint("EP-STRICT"), tls=False)
    with pytest.raises(AuthenticationError), strict, RunspacePool(strict):
        pass
    open_host = wsman(lab.info.endpoint("EP-OPEN"), tls=False)
    with open_host, RunspacePool(open_host) as pool:
        assert echo(pool, "plain")["value"] == "plain"


def test_unencrypted_negotiate_over_http_refused(lab: Lab) -> None:
    client = wsman(lab.info.endpoint("EP-STRICT"), auth="ntlm", tls=False, encryption="never")
    with pytest.raises(AuthenticationError), client, RunspacePool(client):
        pass


@pytest.mark.parametrize(
    ("auth", "tls", "username", "password"),
    [
        ("basic", True, "fleetfix", "wrong"),
        ("basic", True, "nobody", "Lab-Passw0rd!"),
        ("ntlm", False, "fleetfix", "wrong"),
        ("negotiate", False, "nobody", "Lab-Passw0rd!"),
    ],
)
def test_wrong_credentials_answer_401(lab: Lab, auth: str, tls: bool, username: str, password: str) -> None:
    endpoint = lab.info.endpoint("EP-STRICT")
    client = wsman(
        endpoint, auth=auth, tls=tls, ca_bundle=lab.info.ca_bundle, username=username, password=password
    )
    with pytest.raises(AuthenticationError), client, RunspacePool(client):
        pass


def test_raw_401_on_the_wire(lab: Lab) -> None:
    endpoint = lab.info.endpoint("EP-STRICT")
    response = requests.post(endpoint.url(tls=False), data=b"<x/>", timeout=5)
    assert response.status_code == 401
    # Over plain HTTP an AllowUnencrypted=false host offers Negotiate only, never Basic.
    assert response.headers["WWW-Authenticate"] == "Negotiate"
    secure = requests.post(endpoint.url(tls=True), data=b"<x/>", timeout=5, verify=str(lab.info.ca_bundle))
    assert secure.status_code == 401
    assert "Basic" in secure.headers["WWW-Authenticate"]


# -- pipelines and shells --------------------------------------------------------------------------


@pytest.fixture
def pool(lab: Lab) -> Iterator[RunspacePool]:
    client = wsman(lab.info.endpoint("EP-STRICT"), ca_bundle=lab.info.ca_bundle)
    with client, RunspacePool(client) as pool:
        yield pool


def test_host_info_reports_the_configured_host(pool: RunspacePool) -> None:
    ps = run(pool, HOST_INFO)
    assert not ps.had_errors
    assert json.loads(ps.output[0]) == {
        "computer_name": "EP-STRICT",
        "fqdn": "ep-strict.lab.fleetfix.test",
        "os_caption": "Microsoft Windows 11 Enterprise",
        "os_build": 26100,
        "os_ubr": 2314,
        "ps_version": "5.1.22621.4391",
    }


def test_several_pipelines_on_one_pool_and_is_alive(lab: Lab, pool: RunspacePool) -> None:
    for value in ("one", "two", "three"):
        assert echo(pool, value)["value"] == value
    assert pool.is_alive() is True
    assert lab.drop_shells("EP-STRICT") == 1  # WinRM restarted on the host
    assert pool.is_alive() is False


def test_commands_on_a_vanished_shell_get_the_windows_fault(lab: Lab) -> None:
    client = wsman(lab.info.endpoint("EP-OPEN"), tls=False)
    with client:
        pool = RunspacePool(client)
        pool.open()
        lab.drop_shells("EP-OPEN")
        with pytest.raises(WSManFaultError) as caught:
            run(pool, ECHO, Value="too late")
        assert caught.value.code == ERROR_WSMAN_UNEXPECTED_SELECTORS
        assert "because the shell was not found on the server" in caught.value.message


def test_unsupported_action_fault(lab: Lab) -> None:
    client = wsman(lab.info.endpoint("EP-OPEN"), tls=False)
    with client, RunspacePool(client) as pool:
        with pytest.raises(WSManFaultError) as caught:
            pool.disconnect()  # disconnected sessions are not simulated
        assert caught.value.code == ERROR_WSMAN_ACTION_NOT_SUPPORTED
        pool.state = RunspacePoolState.OPENED  # pypsrp marked it disconnecting; close it normally


def test_pool_close_deletes_the_shell(lab: Lab) -> None:
    client = wsman(lab.info.endpoint("EP-OPEN"), tls=False)
    with client, RunspacePool(client):
        assert lab.shell_count("EP-OPEN") == 1
    assert lab.shell_count("EP-OPEN") == 0
    assert lab.stats("EP-OPEN")["Delete"] >= 1


@pytest.mark.parametrize(
    ("script", "term"),
    [
        pytest.param("# fleetfix-script: nope.missing\nparam()\n", "nope.missing", id="unknown-id"),
        pytest.param("Get-Service -Name RasMan", "Get-Service", id="no-header"),
        pytest.param("\n# fleetfix-script: diag.echo\nparam()\n", "param", id="header-not-first-line"),
        # Not a header, so only a comment: PowerShell trips over the first statement.
        pytest.param("# fleetfix-script: Diag.Echo\nparam()\n", "param", id="id-not-lowercase"),
        pytest.param("#  fleetfix-script: diag.echo\nparam()\n", "param", id="two-spaces"),
        pytest.param("# fleetfix-script: diag.echo extra\nparam()\n", "param", id="trailing-text"),
    ],
)
def test_unknown_script_is_not_recognized(pool: RunspacePool, script: str, term: str) -> None:
    ps = run(pool, script)
    assert ps.had_errors
    assert ps.state == PSInvocationState.FAILED
    error = ps.streams.error[0]
    assert str(error).startswith(f"The term '{term}' is not recognized as the name of a cmdlet")
    assert error.fq_error == "CommandNotFoundException"
    assert error.exception is not None
    assert error.exception.adapted_properties["Message"] == str(error)
    assert "System.Management.Automation.CommandNotFoundException" in error.exception.types


def test_unknown_cmdlet_is_not_recognized(pool: RunspacePool) -> None:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-VpnConnection").add_parameter("Name", "AOVPN")
    ps.invoke()
    assert ps.had_errors
    assert str(ps.streams.error[0]).startswith("The term 'Get-VpnConnection' is not recognized")


HOSTILE = [
    pytest.param("x'; Remove-Item C:\\ -Recurse; '", id="single-quotes-semicolon"),
    pytest.param('say "hi" \\" \\\\', id="double-quotes-backslashes"),
    pytest.param("$(Stop-Computer -Force)", id="subexpression"),
    pytest.param("`$env:COMPUTERNAME` `n", id="backticks"),
    pytest.param("line1\nline2\r\nline3\r", id="newlines"),
    pytest.param('<Obj RefId="0"/> ]]> &amp; _x000A_ _x005F_', id="clixml-markup-and-escapes"),
    pytest.param("tab\tnul\x00bell\x07 esc\x1b", id="control-characters"),
    pytest.param("ünïcødé ✓ \U0001d518 \U0001f600", id="unicode-astral"),
    pytest.param("", id="empty"),
    pytest.param("A" * (1024 * 1024), id="one-megabyte"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_parameters_arrive_unchanged(pool: RunspacePool, captured: Captured, value: str) -> None:
    result = echo(pool, value)
    assert result["value"] == value
    assert result["length"] == len(value.encode("utf-16-le")) // 2
    capture = run(pool, script_with_id("test.capture"), Value=value, Other=value)
    assert capture.output == ["captured"]
    assert captured.calls["test.capture"][-1] == {"Value": value, "Other": value}


def test_long_command_streams_past_operation_timeout(lab: Lab) -> None:
    client = wsman(
        lab.info.endpoint("EP-STRICT"), ca_bundle=lab.info.ca_bundle, operation_timeout=1, read_timeout=5
    )
    timed_out = f"fault:{ERROR_WSMAN_OPERATION_TIMEDOUT}"
    timeouts_before = lab.stats("EP-STRICT").get(timed_out, 0)
    with client, RunspacePool(client) as pool:
        started = time.monotonic()
        ps = run(pool, script_with_id("test.stream"), Count=3, Interval=1.6)
        elapsed = time.monotonic() - started
    assert not ps.had_errors
    assert ps.output == ["tick 0", "tick 1", "tick 2"]
    assert elapsed >= 4.8  # three intervals, each longer than the 1 s OperationTimeout
    # Every interval outlived a Receive long-poll: the host answered w:TimedOut and pypsrp polled again.
    assert lab.stats("EP-STRICT")[timed_out] - timeouts_before >= 3


def test_stop_a_running_pipeline(pool: RunspacePool) -> None:
    ps = PowerShell(pool)
    ps.add_script(script_with_id("test.forever"))
    ps.begin_invoke()
    ps.poll_invoke(timeout=1)
    assert ps.output == ["started"]
    ps.stop()
    assert ps.state == PSInvocationState.STOPPED
    assert echo(pool, "after stop")["value"] == "after stop"


def test_garbage_in_an_encrypted_session_is_a_bad_request(lab: Lab) -> None:
    client = wsman(lab.info.endpoint("EP-STRICT"), auth="ntlm", tls=False)
    with client:
        RunspacePool(client).open()
        session = client.transport.session
        assert session is not None
        response = session.post(
            client.transport.endpoint,
            data=b"--Encrypted Boundary\r\n\tContent-Type: x\r\n\tOriginalContent: type=a;Length=3\r\n"
            b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00garbage",
            headers={
                "Content-Type": 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";'
                'boundary="Encrypted Boundary"'
            },
            timeout=5,
        )
        assert response.status_code == 400
    # The RC4 sealing state of that logon is spent, but the host keeps serving new sessions.
    fresh = wsman(lab.info.endpoint("EP-STRICT"), auth="ntlm", tls=False)
    with fresh, RunspacePool(fresh) as pool:
        assert echo(pool, "still serving")["value"] == "still serving"
