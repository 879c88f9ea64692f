"""The beat's Celery dispatch: what it sends for a sweep and for a playbook job, and what a refused
playbook job sends (nothing). The workers' side is tested in test_signing (a real worker)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.schedule.beat import ADVANCE_RUN_TASK, SCHEDULED_SWEEP_TASK, Beat, CeleryDispatch
from orchestrator.schedule.fires import list_fires
from orchestrator.store import Store, create_store_engine, upgrade
from orchestrator.store.models import FireStatus
from tasks.app import TASK_ADVANCE_RUN, TASK_SCHEDULED_SWEEP

NIGHT = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)


@dataclass
class Sent:
    id: str


@dataclass
class FakeApp:
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Sent:
        self.calls.append((name, dict(kwargs or {}), options))
        return Sent(f"task-{len(self.calls)}")


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    upgrade(sqlite_url)
    opened = Store.from_engine(create_store_engine(sqlite_url))
    yield opened
    opened.close()


def test_the_task_names_are_the_workers(tmp_path: Path) -> None:
    assert (SCHEDULED_SWEEP_TASK, ADVANCE_RUN_TASK) == (TASK_SCHEDULED_SWEEP, TASK_ADVANCE_RUN)


def test_a_sweep_job_is_sent_with_its_selector_and_local_date(store: Store, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        schedule={
            "timezone": "Europe/Amsterdam",
            "catch_up_s": 600,
            "jobs": [{"name": "ams", "cron": "0 2 * * *", "selector": "tag:site=ams"}],
        },
    )
    app = FakeApp()
    clock = lambda: NIGHT  # noqa: E731
    beat = Beat(settings, store, CeleryDispatch(settings, store, app, clock), holder="beat-a", clock=clock)
    (outcome,) = beat.fire_due(NIGHT)
    assert outcome.result is not None
    assert (outcome.result.status, outcome.result.message) == (
        FireStatus.DISPATCHED,
        "sent to the workers as task task-1",
    )
    ((name, kwargs, options),) = app.calls
    assert (name, kwargs) == (
        TASK_SCHEDULED_SWEEP,
        {"job_name": "ams", "selector": "tag:site=ams", "local_date": "2026-06-01"},
    )
    # a fire left in a dead broker does not run a day late
    assert options["expires"] == NIGHT + timedelta(seconds=600)
    (fire,) = list_fires(store)
    assert (fire.status, fire.dispatch, fire.task_id) == (FireStatus.DISPATCHED, "celery", "task-1")


def test_a_refused_playbook_job_sends_nothing(store: Store, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        schedule={
            "timezone": "UTC",
            "jobs": [
                {"name": "rras", "kind": "playbook", "playbook": "rras-root-thumbprint", "cron": "0 0 * * *"}
            ],
        },
    )
    app = FakeApp()
    clock = lambda: NIGHT  # noqa: E731
    beat = Beat(settings, store, CeleryDispatch(settings, store, app, clock), holder="beat-a", clock=clock)
    (outcome,) = beat.fire_due(NIGHT)
    assert outcome.result is not None
    assert outcome.result.status is FireStatus.REFUSED
    assert "is risky: a scheduled run needs approved_by" in outcome.result.message
    assert app.calls == []
    assert [fire.status for fire in list_fires(store)] == [FireStatus.REFUSED]
