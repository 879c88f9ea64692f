"""Host leases: free, expired and same-run leases are taken; live ones of other runs are not; races
between threads have exactly one winner on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from orchestrator.engine.leases import (
    HeldBy,
    Lease,
    acquire,
    get_lease,
    release,
    release_run,
    renew,
    renew_all,
)
from orchestrator.engine.runs import write_transaction
from orchestrator.store import Store
from tests.engine.conftest import START

TTL = timedelta(minutes=5)


def take(store: Store, host: str, run_id: str, holder: str, *, at: timedelta = timedelta()) -> Lease | HeldBy:
    with write_transaction(store) as session:
        return acquire(session, host, run_id, holder, TTL, START + at)


def test_free_lease_is_acquired_and_visible(store: Store) -> None:
    got = take(store, "h1", "run-a", "worker-1")
    assert got == Lease("h1", "run-a", "worker-1", START, START + TTL)
    with write_transaction(store) as session:
        assert get_lease(session, "h1") == got


def test_live_lease_of_another_run_is_held(store: Store) -> None:
    take(store, "h1", "run-a", "worker-1")
    held = take(store, "h1", "run-b", "worker-2", at=timedelta(minutes=1))
    assert held == HeldBy("h1", "run-a", "worker-1", START + TTL)
    assert isinstance(held, HeldBy)
    assert held.describe() == f"host h1 is locked by run run-a (worker-1, until {(START + TTL).isoformat()})"


def test_expired_lease_is_taken_over(store: Store) -> None:
    take(store, "h1", "run-a", "worker-1")
    got = take(store, "h1", "run-b", "worker-2", at=TTL)  # expires_at <= now: expired
    assert isinstance(got, Lease)
    assert (got.run_id, got.holder, got.expires_at) == ("run-b", "worker-2", START + 2 * TTL)


def test_same_run_takes_its_own_lease_over(store: Store) -> None:
    take(store, "h1", "run-a", "dead-process")
    got = take(store, "h1", "run-a", "resumed-process", at=timedelta(seconds=10))
    assert isinstance(got, Lease)
    assert got.holder == "resumed-process"


def test_renew_and_release_only_by_the_holder(store: Store) -> None:
    take(store, "h1", "run-a", "worker-1")
    take(store, "h2", "run-a", "worker-1")
    take(store, "h3", "run-a", "worker-2")
    with write_transaction(store) as session:
        assert renew(session, "h1", "run-a", "worker-1", TTL, START + timedelta(minutes=4))
        assert not renew(session, "h1", "run-b", "worker-1", TTL, START)
        assert not renew(session, "h1", "run-a", "worker-2", TTL, START)
        assert renew_all(session, "run-a", "worker-1", TTL, START + timedelta(minutes=6)) == 2
        assert get_lease(session, "h1").expires_at == START + timedelta(minutes=11)  # type: ignore[union-attr]
        assert get_lease(session, "h3").expires_at == START + TTL  # type: ignore[union-attr]
        assert not release(session, "h1", "run-a", "worker-2")
        assert not release(session, "h1", "run-b")
        assert release(session, "h1", "run-a", "worker-1")
        assert get_lease(session, "h1") is None
        assert release_run(session, "run-a") == 2
    assert isinstance(take(store, "h3", "run-b", "worker-3"), Lease)


def race(count: int, attempt: Callable[[int], Lease | HeldBy]) -> list[Lease | HeldBy]:
    barrier = threading.Barrier(count)
    results: list[Lease | HeldBy] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(number: int) -> None:
        barrier.wait()
        try:
            got = attempt(number)
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            results.append(got)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_race_for_a_free_host_has_one_winner(store: Store) -> None:
    for round_number in range(3):
        host = f"h{round_number}"
        results = race(6, lambda number, host=host: take(store, host, f"run-{number}", f"w{number}"))  # type: ignore[misc]
        winners = [got for got in results if isinstance(got, Lease)]
        assert len(winners) == 1
        losers = [got for got in results if isinstance(got, HeldBy)]
        assert len(losers) == 5
        assert {got.run_id for got in losers} == {winners[0].run_id}


def test_race_for_an_expired_lease_has_one_winner(store: Store) -> None:
    take(store, "h1", "run-old", "dead")
    results = race(6, lambda number: take(store, "h1", f"run-{number}", f"w{number}", at=2 * TTL))
    winners = [got for got in results if isinstance(got, Lease)]
    assert len(winners) == 1
    assert all(
        isinstance(got, HeldBy) and got.run_id == winners[0].run_id for got in results if got not in winners
    )
