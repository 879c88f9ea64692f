"""Cutting targets into waves: tenant first, canary, then waves; every target exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.engine.model import FailureBudget, RolloutOptions, TargetRole, WaveKind
from orchestrator.engine.waves import plan_waves
from orchestrator.errors import InputError

ROLES = [role.value for role in TargetRole]


def _targets() -> st.SearchStrategy[list[tuple[str, str]]]:
    names = st.lists(st.text("abcdefgh0123456789-", min_size=1, max_size=8), unique=True, max_size=40)
    return names.flatmap(
        lambda names: st.lists(st.sampled_from(ROLES), min_size=len(names), max_size=len(names)).map(
            lambda roles: list(zip(names, roles, strict=True))
        )
    )


@given(_targets(), st.integers(0, 6), st.integers(1, 12), st.booleans())
def test_every_target_once_in_order_with_the_right_sizes(
    targets: list[tuple[str, str]], canary: int, wave_size: int, serial: bool
) -> None:
    rollout = RolloutOptions(
        canary=canary, wave_size=wave_size, serial=serial, max_fail=FailureBudget(count=0)
    )
    waves = plan_waves(targets, rollout)
    flat = [name for wave in waves for name, _role in wave.targets]
    tenant = [name for name, role in targets if role == "tenant"]
    others = [name for name, role in targets if role != "tenant"]
    # exactly once, tenant targets first, otherwise in the order given
    assert flat == tenant + others
    assert [wave.number for wave in waves] == list(range(1, len(waves) + 1))
    kinds = [wave.kind for wave in waves]
    assert kinds == sorted(kinds, key=[WaveKind.TENANT, WaveKind.CANARY, WaveKind.WAVE].index)
    assert all(wave.targets for wave in waves)
    by_kind = {kind: [wave for wave in waves if wave.kind is kind] for kind in WaveKind}
    assert [name for wave in by_kind[WaveKind.TENANT] for name, _ in wave.targets] == tenant
    assert all(role is TargetRole.TENANT for wave in by_kind[WaveKind.TENANT] for _, role in wave.targets)
    canaries = [name for wave in by_kind[WaveKind.CANARY] for name, _ in wave.targets]
    assert canaries == others[: min(canary, len(others))]
    if serial:
        assert all(len(wave.targets) == 1 for wave in waves)
    else:
        assert len(by_kind[WaveKind.TENANT]) == (1 if tenant else 0)
        assert len(by_kind[WaveKind.CANARY]) == (1 if canaries else 0)
        sizes = [len(wave.targets) for wave in by_kind[WaveKind.WAVE]]
        assert all(size == wave_size for size in sizes[:-1])
        assert not sizes or 1 <= sizes[-1] <= wave_size


def test_example_layout() -> None:
    targets = [
        ("ep1", "endpoint"),
        ("contoso", "tenant"),
        ("ep2", "endpoint"),
        ("rras1", "rras"),
        ("ep3", "endpoint"),
    ]
    waves = plan_waves(targets, RolloutOptions(canary=1, wave_size=2))
    assert [(wave.number, wave.kind.value, [name for name, _ in wave.targets]) for wave in waves] == [
        (1, "tenant", ["contoso"]),
        (2, "canary", ["ep1"]),
        (3, "wave", ["ep2", "rras1"]),
        (4, "wave", ["ep3"]),
    ]


def test_no_canary_wave_when_canary_is_zero() -> None:
    waves = plan_waves([("a", "endpoint"), ("b", "endpoint")], RolloutOptions(canary=0, wave_size=5))
    assert [wave.kind for wave in waves] == [WaveKind.WAVE]


def test_no_targets_no_waves() -> None:
    assert plan_waves([], RolloutOptions()) == ()


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([("a", "endpoint"), ("a", "rras")], "listed twice"),
        ([("", "endpoint")], "needs a name"),
        ([("a", "printer")], "unknown role"),
    ],
)
def test_bad_targets(targets: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_waves(targets, RolloutOptions())
