"""Every injectable fault, observed the way the product will observe it: through pypsrp."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TypedDict, Unpack

import pytest
import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from lab import FaultSpec, Flap, FleetConfig, HostConfig, Lab, Latency
from lab.wsman.faults import ERROR_WSMAN_QUOTA_MAX_SHELLS
from tests.lab.support import Captured, run, shipped_script, start_lab, wsman

ECHO = shipped_script("diag.echo")
TEN_MB = 10 * 1024 * 1024


class Overrides(TypedDict, total=False):
    """What these tests change in :func:`wsman`'s client."""

    auth: str
    tls: bool
    connection_timeout: int
    operation_timeout: int
    read_timeout: int


def host(name: str, **faults: object) -> HostConfig:
    return HostConfig(name=name, https_port=0, faults=FaultSpec.model_validate(faults))


FLEET = FleetConfig(
    hosts=(
        host("EP-REFUSE", refuse=True),
        host("EP-HANG", hang=True),
        host("EP-AUTHFAIL", auth_failure=True),
        host("EP-LATENCY", latency=Latency(fixed_ms=150, jitter_ms=50)),
        host("EP-SLOW", slow_command_s=2.5),
        host("EP-THROW", terminating_error="Access to the registry key is denied."),
        host("EP-ERRORS", error_records=("first problem", "second problem")),
        host("EP-MALFORMED", malformed_output=True),
        host("EP-HUGE", oversized_output_bytes=TEN_MB),
        host("EP-FLAP", flap=Flap(period_s=1.0, down_s=0.5)),
        host("EP-QUOTA", max_shells=1),
    )
)


@pytest.fixture(scope="module")
def lab(captured: Captured) -> Iterator[Lab]:
    yield from start_lab(FLEET, captured)


def client(lab: Lab, name: str, **overrides: Unpack[Overrides]) -> WSMan:
    return wsman(lab.info.endpoint(name), ca_bundle=lab.info.ca_bundle, **overrides)


def echo_on(lab: Lab, name: str, value: str = "probe", **overrides: Unpack[Overrides]) -> PowerShell:
    conn = wsman(lab.info.endpoint(name), ca_bundle=lab.info.ca_bundle, **overrides)
    with conn, RunspacePool(conn) as pool:
        return run(pool, ECHO, Value=value)


def test_refused_connection(lab: Lab) -> None:
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        echo_on(lab, "EP-REFUSE")
    assert "Connection refused" in str(caught.value)
    assert time.monotonic() - started < 5  # refused at once, not timed out


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_listener_that_never_answers(lab: Lab, tls: bool) -> None:
    endpoint = lab.info.endpoint("EP-HANG")
    # pypsrp retries read timeouts; no backoff keeps the test short (set on the client's transport).
    conn = wsman(
        endpoint,
        tls=tls,
        ca_bundle=lab.info.ca_bundle,
        connection_timeout=1,
        read_timeout=1,
        reconnection_backoff=0.0,
    )
    with pytest.raises(requests.exceptions.Timeout), conn, RunspacePool(conn):
        pass


@pytest.mark.parametrize(("auth", "tls"), [("basic", True), ("ntlm", False), ("negotiate", True)])
def test_auth_failure_even_with_the_right_password(lab: Lab, auth: str, tls: bool) -> None:
    with pytest.raises(AuthenticationError):
        echo_on(lab, "EP-AUTHFAIL", auth=auth, tls=tls)


def test_latency_per_round_trip(lab: Lab) -> None:
    conn = client(lab, "EP-LATENCY")
    started = time.monotonic()
    with conn, RunspacePool(conn) as pool:
        ps = run(pool, ECHO, Value="slowly")
    elapsed = time.monotonic() - started
    requests_made = sum(lab.stats("EP-LATENCY").values())
    assert json.loads(ps.output[0])["value"] == "slowly"
    assert requests_made >= 5  # Create, Receive, Command, Receive, Delete
    assert elapsed >= requests_made * 0.150  # a lower bound: every round trip waited at least fixed_ms


def test_slow_command_outlives_operation_timeout(lab: Lab) -> None:
    ps = echo_on(lab, "EP-SLOW", value="eventually", operation_timeout=1)
    assert not ps.had_errors
    assert json.loads(ps.output[0])["value"] == "eventually"
    assert lab.stats("EP-SLOW").get("fault:2150858793", 0) >= 2


def test_terminating_error_fails_the_pipeline(lab: Lab) -> None:
    ps = echo_on(lab, "EP-THROW")
    assert ps.had_errors
    assert ps.state == PSInvocationState.FAILED
    assert ps.output == []
    assert [str(e) for e in ps.streams.error] == ["Access to the registry key is denied."]


def test_non_terminating_errors_on_the_error_stream(lab: Lab) -> None:
    ps = echo_on(lab, "EP-ERRORS", value="still here")
    assert ps.state == PSInvocationState.COMPLETED
    assert not ps.had_errors  # pypsrp sets it for terminating errors only
    assert [str(e) for e in ps.streams.error] == ["first problem", "second problem"]
    assert json.loads(ps.output[0])["value"] == "still here"


def test_malformed_output(lab: Lab) -> None:
    ps = echo_on(lab, "EP-MALFORMED")
    assert not ps.had_errors
    assert len(ps.output) == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(ps.output[0])


def test_oversized_output(lab: Lab) -> None:
    ps = echo_on(lab, "EP-HUGE", value="big")
    assert not ps.had_errors
    (document,) = ps.output
    assert len(document.encode()) == TEN_MB
    assert json.loads(document)["value"] == "big"
    # It travelled in many Receive responses, each within the client's MaxEnvelopeSize.
    assert lab.stats("EP-HUGE")["Receive"] >= TEN_MB // 512_000


def test_flapping_host_is_sometimes_unreachable(lab: Lab) -> None:
    outcomes: set[str] = set()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and len(outcomes) < 2:
        try:
            ps = echo_on(lab, "EP-FLAP", connection_timeout=1, read_timeout=2)
            outcomes.add("ok" if not ps.had_errors else "error")
        except requests.exceptions.ConnectionError:
            outcomes.add("unreachable")
        time.sleep(0.1)
    assert outcomes == {"ok", "unreachable"}


def test_quota_exceeded_on_the_second_shell(lab: Lab) -> None:
    first = client(lab, "EP-QUOTA")
    second = client(lab, "EP-QUOTA")
    with first, RunspacePool(first):
        with pytest.raises(WSManFaultError) as caught, second, RunspacePool(second):
            pass
        assert caught.value.code == ERROR_WSMAN_QUOTA_MAX_SHELLS
        assert "maximum number of 1 concurrent shells" in caught.value.reason
    with second, RunspacePool(second):
        pass  # the first shell is closed: there is room again
