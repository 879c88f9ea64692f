"""The engine's vocabulary: guarded transitions, the failure budget, rollout options, tasks as JSON."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.engine.model import (
    FAILURE_STATES,
    RUN_TRANSITIONS,
    TARGET_TRANSITIONS,
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
    check_run_transition,
    check_target_transition,
)
from orchestrator.errors import IllegalTransitionError, InputError
from tests.engine.conftest import START

# --- target states ------------------------------------------------------------------------------


def test_failures_are_the_three_failed_states() -> None:
    assert {TargetState.FAILED, TargetState.VERIFY_FAILED, TargetState.ROLLED_BACK} == FAILURE_STATES
    assert TargetOutcome(TargetState.ROLLED_BACK).is_failure
    assert not TargetOutcome(TargetState.REFUSED).is_failure
    assert not TargetOutcome(TargetState.SKIPPED).is_failure


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("pending", "running"),
        ("pending", "skipped"),
        ("pending", "cancelled"),
        ("running", "running"),  # takeover
        *[("running", state.value) for state in TERMINAL_TARGET_STATES],
    ],
)
def test_allowed_target_transitions(current: str, new: str) -> None:
    check_target_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("pending", "succeeded"),  # a target cannot finish without having run
        ("pending", "failed"),
        ("pending", "pending"),
        ("running", "pending"),
        ("succeeded", "running"),
        ("failed", "pending"),
        ("cancelled", "running"),
        ("skipped", "running"),
    ],
)
def test_illegal_target_transitions_are_internal_errors(current: str, new: str) -> None:
    with pytest.raises(IllegalTransitionError, match=f"{current} -> {new}") as raised:
        check_target_transition(current, new, target="h1")
    assert raised.value.kind == "illegal_transition"
    assert "h1" in str(raised.value)


def test_every_target_state_has_a_row_and_terminal_states_are_final() -> None:
    assert set(TARGET_TRANSITIONS) == set(TargetState)
    for state in TERMINAL_TARGET_STATES:
        assert TARGET_TRANSITIONS[state] == frozenset()


# --- run statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("awaiting_approval", "pending"),
        ("awaiting_approval", "cancelled"),
        ("planned", "pending"),
        ("planned", "awaiting_approval"),
        ("pending", "running"),
        ("pending", "paused"),
        ("running", "paused"),
        ("paused", "running"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("paused", "cancelled"),
    ],
)
def test_allowed_run_transitions(current: str, new: str) -> None:
    check_run_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("awaiting_approval", "running"),  # nobody starts a run that awaits approval
        ("planned", "running"),
        ("pending", "succeeded"),
        ("succeeded", "running"),
        ("failed", "running"),
        ("cancelled", "pending"),
        ("paused", "succeeded"),
    ],
)
def test_illegal_run_transitions(current: str, new: str) -> None:
    with pytest.raises(IllegalTransitionError):
        check_run_transition(current, new, run_id="r1")


def test_every_run_status_has_a_row() -> None:
    assert set(RUN_TRANSITIONS) == set(RunStatus)


# --- failure budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "percent"),
    [
        ("3", 3, None),
        ("0", 0, None),
        ("10%", None, Fraction(10)),
        ("2.5%", None, Fraction(5, 2)),
        (" 7 ", 7, None),
    ],
)
def test_budget_parses(text: str, count: int | None, percent: Fraction | None) -> None:
    budget = FailureBudget.parse(text)
    assert (budget.count, budget.percent) == (count, percent)


@pytest.mark.parametrize("text", ["", "-1", "abc", "3.5", "101%", "%", "1e3", "10 %%"])
def test_bad_budgets_name_the_option(text: str) -> None:
    with pytest.raises(InputError) as raised:
        FailureBudget.parse(text)
    assert raised.value.field == "--max-fail"


@pytest.mark.parametrize(
    ("text", "failures", "total", "exceeded"),
    [
        ("2", 2, 40, False),
        ("2", 3, 40, True),
        ("0", 0, 40, False),
        ("0", 1, 40, True),  # 0 stops at the first failure
        ("10%", 4, 40, False),
        ("10%", 5, 40, True),
        ("10%", 1, 15, False),  # floor(1.5) = 1
        ("10%", 2, 15, True),
        ("10%", 1, 5, True),  # floor(0.5) = 0: a small run tolerates nothing
        ("0%", 1, 1000, True),
        ("100%", 40, 40, False),
    ],
)
def test_budget_exceeded(text: str, failures: int, total: int, exceeded: bool) -> None:
    assert FailureBudget.parse(text).exceeded(failures, total) is exceeded


@given(st.integers(0, 10_000), st.integers(0, 1000))
def test_percent_budget_rounds_down(total: int, tenths: int) -> None:
    percent = Fraction(tenths, 10)
    budget = FailureBudget(percent=percent)
    allowed = budget.allowed(total)
    assert allowed == math.floor(percent * total / 100)
    assert allowed <= percent * total / 100 < allowed + 1
    assert not budget.exceeded(allowed, total)
    assert budget.exceeded(allowed + 1, total)


@pytest.mark.parametrize("text", ["3", "10%", "2.5%", "0"])
def test_budget_text_round_trips(text: str) -> None:
    assert str(FailureBudget.parse(text)) == text
    assert FailureBudget.parse(str(FailureBudget.parse(text))) == FailureBudget.parse(text)


# --- rollout and tasks --------------------------------------------------------------------------


def test_rollout_validates_and_round_trips() -> None:
    rollout = RolloutOptions(canary=2, wave_size=5, serial=True, max_fail=FailureBudget.parse("5%"))
    assert RolloutOptions.from_json(json.loads(json.dumps(rollout.to_json()))) == rollout
    with pytest.raises(InputError) as raised:
        RolloutOptions(wave_size=0)
    assert raised.value.field == "--wave-size"
    with pytest.raises(InputError) as raised:
        RolloutOptions(canary=-1)
    assert raised.value.field == "--canary"


def test_target_task_is_json() -> None:
    task = TargetTask(
        "run-1", "h1", TargetRole.RRAS, 3, 2, takeover=True, planned={"steps": [{"digest": "ab"}]}
    )
    text = json.dumps(task.to_json())
    assert TargetTask.from_json(json.loads(text)) == task
    assert (
        TargetTask.from_json(
            json.loads(json.dumps(TargetTask("r", "t", TargetRole.TENANT, 1, 1).to_json()))
        ).planned
        is None
    )


def test_outcome_state_is_coerced_and_frozen() -> None:
    outcome = TargetOutcome("verify_failed", "checks still fail")  # type: ignore[arg-type]
    assert outcome.state is TargetState.VERIFY_FAILED
    with pytest.raises(AttributeError):
        outcome.message = "x"  # type: ignore[misc]


def test_event_text() -> None:
    assert RunEvent(
        EventKind.TARGET_FINISHED, "r", START, wave=2, target="h1", state="failed", message="boom"
    ).text == ("wave 2: h1 failed: boom")
    assert (
        RunEvent(EventKind.WAVE_STARTED, "r", START, wave=3, message="canary").text
        == "wave 3 started: canary"
    )
    assert RunEvent(EventKind.RUN_PAUSED, "r1", START, message="outside").text == "run r1 paused: outside"
