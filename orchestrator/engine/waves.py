"""Cutting a run's targets into waves. Pure.

Order: tenant targets (Intune, role ``tenant``) first, because endpoints pick their configuration
up from the tenant; then a canary wave of ``canary`` hosts; then the rest in waves of
``wave_size``. Within each group the caller's order is kept, so the same input always gives the
same waves (the caller decides who the canaries are, e.g. hosts tagged ``ring=canary`` first).

``serial`` makes every wave a single target, canaries and tenant targets included: each canary is
then its own ``canary`` wave, and a failure in any canary wave stops the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from orchestrator.engine.model import RolloutOptions, TargetRole, WaveKind
from orchestrator.errors import InputError

Target = tuple[str, TargetRole | str]
"""A target's name and role."""


@dataclass(frozen=True)
class WavePlan:
    """One wave: its 1-based number, kind, and targets as (name, role) in dispatch order."""

    number: int
    kind: WaveKind
    targets: tuple[tuple[str, TargetRole], ...]


def _chunks(
    items: Sequence[tuple[str, TargetRole]], size: int
) -> Iterator[tuple[tuple[str, TargetRole], ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


def _checked(targets: Sequence[Target]) -> list[tuple[str, TargetRole]]:
    seen: set[str] = set()
    out: list[tuple[str, TargetRole]] = []
    for name, role in targets:
        if not name:
            raise InputError("a target needs a name", field="targets")
        if name in seen:
            raise InputError(f"target {name!r} is listed twice", field="targets")
        try:
            out.append((name, TargetRole(role)))
        except ValueError:
            roles = ", ".join(member.value for member in TargetRole)
            raise InputError(
                f"target {name!r} has unknown role {role!r} (one of {roles})", field="targets"
            ) from None
        seen.add(name)
    return out


def plan_waves(targets: Sequence[Target], rollout: RolloutOptions) -> tuple[WavePlan, ...]:
    """The waves for ``targets`` under ``rollout``; every target lands in exactly one wave.

    Raises InputError for an empty name, a duplicate name or an unknown role. No targets, no waves.
    """
    checked = _checked(targets)
    tenant = [target for target in checked if target[1] is TargetRole.TENANT]
    hosts = [target for target in checked if target[1] is not TargetRole.TENANT]
    canary_count = min(rollout.canary, len(hosts))
    size = 1 if rollout.serial else rollout.wave_size
    groups: list[tuple[WaveKind, tuple[tuple[str, TargetRole], ...]]] = []
    groups += [
        (WaveKind.TENANT, chunk) for chunk in _chunks(tenant, 1 if rollout.serial else max(1, len(tenant)))
    ]
    groups += [
        (WaveKind.CANARY, chunk)
        for chunk in _chunks(hosts[:canary_count], 1 if rollout.serial else max(1, canary_count))
    ]
    groups += [(WaveKind.WAVE, chunk) for chunk in _chunks(hosts[canary_count:], size)]
    return tuple(WavePlan(number, kind, chunk) for number, (kind, chunk) in enumerate(groups, start=1))


__all__ = ["Target", "WavePlan", "plan_waves"]
