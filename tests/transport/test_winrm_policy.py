"""Timeouts cut to the session deadline, and the policy's own checks."""

from __future__ import annotations

import pytest

from orchestrator.inventory.models import WinRMSettings
from orchestrator.transport.winrm.policy import (
    OPERATION_MARGIN_S,
    Deadline,
    RequestTimeouts,
    TransportPolicy,
    request_timeouts,
)

DEFAULTS = WinRMSettings()  # connect 10, operation 20, read 30


def test_plenty_of_time_left_keeps_the_host_settings() -> None:
    assert request_timeouts(DEFAULTS, 600, attempts=1) == RequestTimeouts(10, 30, 20)


def test_the_deadline_cuts_every_layer() -> None:
    limits = request_timeouts(DEFAULTS, 8, attempts=1)
    assert limits == RequestTimeouts(connect_s=8, read_s=8, operation_s=6)
    assert limits.operation_s <= limits.read_s - OPERATION_MARGIN_S  # a long-poll ends before the read


def test_retried_requests_share_the_time_left() -> None:
    # A Receive may be sent 1 + receive_retries times; together they must fit the deadline.
    limits = request_timeouts(DEFAULTS, 12, attempts=2)
    assert limits.read_s == 6
    assert limits.connect_s == 6
    assert 2 * limits.read_s <= 12


def test_reconnection_retries_share_the_connect_budget() -> None:
    # 2 sends x 2 connects each: a host that swallows SYNs gets 4 x 3 s, not 4 x 10 s.
    limits = request_timeouts(DEFAULTS, 12, attempts=2, connect_attempts=4)
    assert (limits.connect_s, limits.read_s) == (3, 6)


def test_operation_timeout_is_whole_seconds_and_at_least_one() -> None:
    assert request_timeouts(DEFAULTS, 7.9, attempts=1).operation_s == 5
    assert request_timeouts(DEFAULTS, 0.5, attempts=1) == RequestTimeouts(0.5, 0.5, 1)


def test_nothing_left_gives_zero_http_timeouts() -> None:
    # The session refuses to send at all then (MIN_REQUEST_S); the arithmetic never goes negative.
    assert request_timeouts(DEFAULTS, -3, attempts=2) == RequestTimeouts(0, 0, 1)


def test_deadline_counts_from_creation() -> None:
    now = [100.0]
    deadline = Deadline(5, clock=lambda: now[0])
    now[0] = 103.5
    assert deadline.elapsed() == 3.5
    assert deadline.remaining() == 1.5


@pytest.mark.parametrize(
    "bad",
    [
        {"deadline_s": 0},
        {"close_timeout_s": -1},
        {"receive_retries": -1},
        {"reconnection_retries": -1},
        {"reconnection_backoff_s": -0.1},
        {"max_output_bytes": 0},
        {"idle_timeout_s": 30},
    ],
)
def test_policy_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|cannot be"):
        TransportPolicy(**bad)  # type: ignore[arg-type]
