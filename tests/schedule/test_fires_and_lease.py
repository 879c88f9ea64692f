"""The fire ledger and the beat's lease on SQLite and PostgreSQL: a duplicate fire does nothing, two
beats fire a job once, a dead beat's lease expires and a standby takes over."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from orchestrator.config import Settings
from orchestrator.schedule.beat import Beat, BeatEvent
from orchestrator.schedule.execute import JobResult
from orchestrator.schedule.fires import finish_fire, list_fires, mark_dispatched, record_fire
from orchestrator.schedule.jobs import Due, FireKey, Job, due_fires
from orchestrator.schedule.lease import acquire_lease, read_lease, release_lease, renew_lease
from orchestrator.store import Store, create_store_engine, list_audit, upgrade
from orchestrator.store.models import FireStatus, ScheduleFire

NIGHT = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 02:00 CEST in Amsterdam
TTL = timedelta(seconds=60)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    upgrade(db_url)
    opened = Store.from_engine(create_store_engine(db_url))
    yield opened
    opened.close()


def settings(tmp_path: Any, *jobs: dict[str, Any], **schedule: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        schedule={"timezone": "Europe/Amsterdam", "jobs": list(jobs), **schedule},
    )


def nightly(tmp_path: Any, cron: str = "0 2 * * *", **schedule: Any) -> Settings:
    return settings(tmp_path, {"name": "nightly", "cron": cron}, **schedule)


def only_due(config: Settings, now: datetime) -> Due:
    found = due_fires(Job.all_from(config.schedule), now, timedelta(hours=1))
    assert len(found) == 1
    return found[0]


class CountingDispatcher:
    """Counts the jobs it is asked to run; thread-safe, like a real dispatcher must be."""

    name = "in-process"

    def __init__(self) -> None:
        self.runs: list[FireKey] = []
        self._lock = threading.Lock()

    def run(self, due: Due, fire: Any) -> JobResult:
        with self._lock:
            self.runs.append(due.key)
        return JobResult(FireStatus.SUCCEEDED, "done", summary={"ok": True})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- the ledger -----------------------------------------------------------------------------------


def test_a_duplicate_fire_does_nothing(store: Store, tmp_path: Any) -> None:
    due = only_due(nightly(tmp_path), NIGHT + timedelta(seconds=5))
    assert due.key == FireKey("nightly", date(2026, 6, 1), "")
    first = record_fire(store, due, fired_by="beat-a", dispatch="in-process", at=NIGHT)
    assert first is not None
    assert (first.status, first.fired_by, first.scheduled_at) == (FireStatus.RUNNING, "beat-a", NIGHT)
    assert record_fire(store, due, fired_by="beat-b", dispatch="in-process", at=NIGHT) is None
    with store.transaction() as session:
        assert session.execute(select(func.count()).select_from(ScheduleFire)).scalar_one() == 1
    fires = [entry for entry in list_audit(store.engine) if entry.action == "schedule.fire"]
    assert [(entry.actor, entry.target) for entry in fires] == [("beat-a", "nightly@2026-06-01")]


def test_concurrent_fires_of_one_key_record_exactly_one(store: Store, tmp_path: Any) -> None:
    due = only_due(nightly(tmp_path), NIGHT)
    barrier = threading.Barrier(8)

    def fire(index: int) -> bool:
        barrier.wait()
        return record_fire(store, due, fired_by=f"beat-{index}", dispatch="in-process", at=NIGHT) is not None

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(fire, range(8)))
    assert won.count(True) == 1


def test_a_once_a_day_job_is_keyed_by_the_local_date_whatever_its_time(store: Store, tmp_path: Any) -> None:
    at_two = only_due(nightly(tmp_path, "0 2 * * *"), NIGHT)
    assert record_fire(store, at_two, fired_by="a", dispatch="in-process", at=NIGHT) is not None
    # the config was edited to 04:00 on the same local date: the day's run already happened
    at_four = only_due(nightly(tmp_path, "0 4 * * *"), NIGHT + timedelta(hours=2))
    assert at_four.key == at_two.key
    assert record_fire(store, at_four, fired_by="a", dispatch="in-process", at=NIGHT) is None


def test_a_job_firing_several_times_a_day_is_keyed_by_slot(store: Store, tmp_path: Any) -> None:
    config = nightly(tmp_path, "0 */6 * * *")
    morning = only_due(config, NIGHT + timedelta(hours=4))  # 06:00 CEST
    noon = only_due(config, NIGHT + timedelta(hours=10))  # 12:00 CEST
    assert (morning.key.slot, noon.key.slot) == ("06:00", "12:00")
    assert record_fire(store, morning, fired_by="a", dispatch="in-process", at=NIGHT) is not None
    assert record_fire(store, noon, fired_by="a", dispatch="in-process", at=NIGHT) is not None


def test_the_first_outcome_of_a_fire_stands(store: Store, tmp_path: Any) -> None:
    due = only_due(nightly(tmp_path), NIGHT)
    fire = record_fire(store, due, fired_by="a", dispatch="celery", at=NIGHT)
    assert fire is not None
    sent = mark_dispatched(store, fire.id, task_id="task-1")
    assert (sent.status, sent.task_id) == (FireStatus.DISPATCHED, "task-1")
    done = finish_fire(
        store, fire.id, FireStatus.SUCCEEDED, at=NIGHT, actor="w", summary={"n": 1}, run_id="r1"
    )
    again = finish_fire(store, fire.id, FireStatus.FAILED, at=NIGHT, actor="w", message="late duplicate")
    assert (done.status, again.status, again.message, again.run_id) == (FireStatus.SUCCEEDED,) * 2 + (
        None,
        "r1",
    )
    assert [record.status for record in list_fires(store)] == [FireStatus.SUCCEEDED]


# --- the lease ------------------------------------------------------------------------------------


def test_lease_acquire_renew_expire_release(store: Store) -> None:
    first = acquire_lease(store, "beat-a", TTL, NIGHT)
    assert (first.mine, first.holder, first.expires_at) == (True, "beat-a", NIGHT + TTL)
    # a second beat finds it held and learns by whom
    other = acquire_lease(store, "beat-b", TTL, NIGHT + timedelta(seconds=30))
    assert (other.mine, other.holder) == (False, "beat-a")
    assert renew_lease(store, "beat-a", TTL, NIGHT + timedelta(seconds=40))
    assert not acquire_lease(store, "beat-b", TTL, NIGHT + timedelta(seconds=90)).mine  # renewed until 100 s
    # beat-a died: nobody renews; after the expiry beat-b takes over, and beat-a cannot renew
    taken = acquire_lease(store, "beat-b", TTL, NIGHT + timedelta(seconds=100))
    assert (taken.mine, taken.acquired_at) == (True, NIGHT + timedelta(seconds=100))
    assert not renew_lease(store, "beat-a", TTL, NIGHT + timedelta(seconds=101))
    release_lease(store, "beat-a")  # not its lease any more: nothing happens
    assert read_lease(store) is not None
    release_lease(store, "beat-b")
    assert read_lease(store) is None


def test_racing_beats_get_one_lease(store: Store) -> None:
    barrier = threading.Barrier(6)

    def take(index: int) -> bool:
        barrier.wait()
        return acquire_lease(store, f"beat-{index}", TTL, NIGHT).mine

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(take, range(6))).count(True) == 1


# --- two beats ------------------------------------------------------------------------------------


def test_two_beats_fire_a_job_once(store: Store, tmp_path: Any) -> None:
    config = nightly(tmp_path)
    clock = Clock(NIGHT + timedelta(seconds=1))
    work = CountingDispatcher()
    first = Beat(config, store, work, holder="beat-a", clock=clock)
    second = Beat(config, store, work, holder="beat-b", clock=clock)
    # beat-a holds the lease (it is running); beat-b's --once stands by and fires nothing
    assert acquire_lease(store, "beat-a", TTL, clock()).mine
    lease, fired = second.once()
    assert (lease.mine, lease.holder, fired) == (False, "beat-a", [])
    # even without the lease (a beat stalled past its ttl, both awake), the key lets one through
    outcomes = first.fire_due(clock()) + second.fire_due(clock())
    assert [outcome.fired for outcome in outcomes] == [True, False]
    assert work.runs == [FireKey("nightly", date(2026, 6, 1), "")]
    record = outcomes[0].record
    assert record is not None
    assert (record.status, record.message, record.summary) == (FireStatus.SUCCEEDED, "done", {"ok": True})


def test_a_standby_takes_over_a_dead_beat_and_runs_what_it_missed(store: Store, tmp_path: Any) -> None:
    config = nightly(tmp_path, catch_up_s=3600)
    work = CountingDispatcher()
    # beat-a took the lease at 01:59:30 CEST and died before 02:00: nobody renews it
    assert acquire_lease(store, "beat-a", TTL, NIGHT - timedelta(seconds=30)).mine
    clock = Clock(NIGHT + timedelta(seconds=10))
    standby = Beat(config, store, work, holder="beat-b", clock=clock)
    assert standby.once()[1] == []  # 02:00:10: beat-a's lease runs until 02:00:30
    assert work.runs == []
    clock.now = NIGHT + timedelta(seconds=31)  # expired: beat-b takes over and fires 02:00
    lease, fired = standby.once()
    assert lease.mine
    assert [outcome.fired for outcome in fired] == [True]
    assert work.runs == [FireKey("nightly", date(2026, 6, 1), "")]
    assert read_lease(store) is None  # --once gives the lease back


def test_catch_up_limits_how_late_a_missed_fire_runs(store: Store, tmp_path: Any) -> None:
    work = CountingDispatcher()
    late = Beat(
        nightly(tmp_path, catch_up_s=600),
        store,
        work,
        holder="beat-a",
        clock=Clock(NIGHT + timedelta(minutes=11)),
    )
    assert late.once()[1] == []
    in_time = Beat(
        nightly(tmp_path, catch_up_s=600),
        store,
        work,
        holder="beat-a",
        clock=Clock(NIGHT + timedelta(minutes=9)),
    )
    assert [outcome.fired for outcome in in_time.once()[1]] == [True]


def test_a_failing_job_is_recorded_and_the_beat_goes_on(store: Store, tmp_path: Any) -> None:
    class Failing(CountingDispatcher):
        def run(self, due: Due, fire: Any) -> JobResult:
            raise RuntimeError("boom")

    config = settings(
        tmp_path, {"name": "a", "cron": "0 2 * * *"}, {"name": "b", "cron": "0 2 * * *", "enabled": False}
    )
    events: list[BeatEvent] = []
    beat = Beat(config, store, Failing(), holder="beat-a", clock=Clock(NIGHT), on_event=events.append)
    _lease, fired = beat.once()
    assert [(outcome.job.name, outcome.result.status if outcome.result else None) for outcome in fired] == [
        ("a", FireStatus.FAILED)
    ]
    assert fired[0].result is not None
    assert fired[0].result.message == "internal error: RuntimeError: boom"
    lines = [event.text for event in events]
    assert any("2026-06-01T00:00:00Z (2026-06-01 02:00 CEST Europe/Amsterdam)" in line for line in lines), (
        lines
    )


def test_the_standby_loop_takes_over_when_the_active_beat_stops(store: Store, tmp_path: Any) -> None:
    """Two long-running beats: the second stands by and takes over when the first releases."""
    config = nightly(tmp_path, lease_ttl_s=6)
    work = CountingDispatcher()
    events: list[BeatEvent] = []
    took_over = threading.Event()

    def on_event(event: BeatEvent) -> None:
        events.append(event)
        if event.kind == "lease":
            took_over.set()

    assert acquire_lease(store, "beat-a", timedelta(seconds=6), datetime.now(UTC)).mine
    standby = Beat(config, store, work, holder="beat-b", on_event=on_event)
    stop = threading.Event()
    thread = threading.Thread(target=standby.run, args=(stop,))
    thread.start()
    try:
        assert not took_over.wait(0.5)
        release_lease(store, "beat-a")
        assert took_over.wait(30), [event.text for event in events]
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert [event.kind for event in events][:2] == ["standby", "lease"]
    assert read_lease(store) is None  # released on stop


def test_without_standby_the_second_beat_returns_the_holders_lease(store: Store, tmp_path: Any) -> None:
    assert acquire_lease(store, "beat-a", TTL, datetime.now(UTC)).mine
    beat = Beat(nightly(tmp_path), store, CountingDispatcher(), holder="beat-b")
    held = beat.run(threading.Event(), standby=False)
    assert held is not None
    assert (held.holder, held.mine) == ("beat-a", False)
