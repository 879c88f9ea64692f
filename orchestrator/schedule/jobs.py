"""Scheduled jobs, what is due, and how a fire is keyed. Pure: no store, no clock of its own.

A fire is keyed by ``(job, local date, slot)``: the job's name, the local date it was scheduled for
in the job's zone and, for a job that fires several times a day, the nominal wall time (``HH:MM``).
A job that fires once a day (one hour, one minute) has an empty slot, so its key is the job and the
local date alone: two beats, a restart, a clock a little off, or a config edit that moves the time
within the day all compute the same key, and the store's unique constraint lets only one of them
through (:mod:`orchestrator.schedule.fires`).

Approval of scheduled risky playbooks: the approver signs off on a *digest* of what the job will do
(:func:`approval_digest`: the playbook's content, its parameters, the hosts, window, rollout and
when it runs); any change to those needs a new approval (docs/schedule.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.config import ScheduleJobSettings, ScheduleSettings
from orchestrator.schedule.cron import CronExpr, Occurrence, latest_occurrence, next_occurrence
from orchestrator.store.canonical import canonical_json, sha256_hex

DIGEST_LENGTH = 12
"""Hex characters of the approval digest an admin copies into the config (48 bits: a typo or a
changed job never matches by accident; it is not a defence against someone who edits the config,
who could as well edit the approval)."""


@dataclass(frozen=True)
class FireKey:
    """What makes a fire unique: the job, its local date and (for jobs that fire more than once a
    day) the nominal ``HH:MM`` slot; ``slot`` is empty for once-a-day jobs."""

    job: str
    local_date: date
    slot: str

    def __str__(self) -> str:
        return f"{self.job}@{self.local_date.isoformat()}{' ' + self.slot if self.slot else ''}"


@dataclass(frozen=True)
class Job:
    """A configured job with its parsed schedule."""

    settings: ScheduleJobSettings
    zone: ZoneInfo

    @classmethod
    def all_from(cls, schedule: ScheduleSettings) -> tuple[Job, ...]:
        return tuple(cls(job, ZoneInfo(schedule.zone_of(job))) for job in schedule.jobs)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @cached_property
    def cron(self) -> CronExpr:
        return CronExpr.parse(self.settings.cron, field_name=f"schedule.jobs.{self.name}.cron")

    def key(self, occurrence: Occurrence) -> FireKey:
        slot = "" if self.cron.once_a_day else occurrence.slot
        return FireKey(self.name, occurrence.local_date, slot)

    def next(self, after: datetime) -> Occurrence:
        return next_occurrence(self.cron, self.zone, after)


@dataclass(frozen=True)
class Due:
    """A fire that is due now: the job, the occurrence it is for, and its key."""

    job: Job
    occurrence: Occurrence

    @property
    def key(self) -> FireKey:
        return self.job.key(self.occurrence)


def due_fires(jobs: Iterable[Job], now: datetime, catch_up: timedelta) -> list[Due]:
    """Each enabled job's latest fire in ``(now - catch_up, now]``, oldest first.

    At most one per job: a beat that was away for three days owes a daily job one run, not three.
    ``catch_up`` is how late a fire may still run (a beat restarted at 02:10 still runs the 02:00
    sweep; a standby taking over a dead beat's lease runs what the dead one missed). Whether the
    fire already happened is the store's business (the key), not this function's.
    """
    found = []
    for job in jobs:
        if not job.enabled:
            continue
        # (now - catch_up, now]: with catch_up 0 the fire must be exactly now; keep a second so a
        # beat waking a little after the fire time still sees it
        occurrence = latest_occurrence(job.cron, job.zone, now, max(catch_up, timedelta(seconds=1)))
        if occurrence is not None:
            found.append(Due(job, occurrence))
    return sorted(found, key=lambda due: (due.occurrence.at, due.job.name))


def next_wake(jobs: Iterable[Job], now: datetime) -> datetime | None:
    """When the next enabled job fires after ``now`` (None without enabled jobs)."""
    times = [job.next(now).at for job in jobs if job.enabled]
    return min(times) if times else None


# --- approval of risky playbooks -----------------------------------------------------------------


def approval_document(
    job: ScheduleJobSettings, zone: str, playbook: Mapping[str, Any], window: str | None
) -> dict[str, Any]:
    """What an approver approves: the playbook (its whole content), how and where and when it runs.

    ``playbook`` is the playbook's content as JSON (its file's fields, not where it came from);
    ``window`` the window's canonical spec (a named window is resolved, so editing ``[windows]``
    needs a new approval too). The job's name, ``enabled``, ``concurrency`` and the approval fields
    are not part of it.
    """
    return {
        "playbook": playbook,
        "params": job.params,
        "selector": job.selector,
        "all_hosts": job.all_hosts,
        "window": window,
        "rollout": job.rollout.model_dump(mode="json"),
        "cron": job.cron,
        "timezone": zone,
    }


def approval_digest(document: Mapping[str, Any]) -> str:
    """The short digest of an :func:`approval_document` that ``approved_digest`` must repeat."""
    return sha256_hex(canonical_json(document))[:DIGEST_LENGTH]


def approval_problem(job: ScheduleJobSettings, *, risky: bool, digest: str, today: date) -> str | None:
    """Why a scheduled playbook job may not run unattended, or None when it may.

    A playbook whose risk is ``none`` needs nothing (as ``fleetfix run`` needs no ``--yes``); a risky
    one needs ``approved_by`` and ``approved_digest`` equal to ``digest`` (the job as it is now),
    and ``approval_expires`` not before ``today`` (the job's local date).
    """
    if not risky:
        return None
    if not job.approved_by or not job.approved_digest:
        return (
            f'playbook {job.playbook!r} is risky: a scheduled run needs approved_by = "NAME" and '
            f'approved_digest = "{digest}" in the job (see `fleetfix beat --list`)'
        )
    if not digest.startswith(job.approved_digest) or len(job.approved_digest) < DIGEST_LENGTH:
        return (
            f"the approval by {job.approved_by} was for another version of this job "
            f"(approved_digest {job.approved_digest}, the job is now {digest}): the job, its window "
            "or the playbook changed; a new approval is needed"
        )
    if job.approval_expires is not None and job.approval_expires < today:
        return f"the approval by {job.approved_by} expired on {job.approval_expires.isoformat()}"
    return None


def by_name(jobs: Sequence[Job], name: str) -> Job | None:
    return next((job for job in jobs if job.name == name), None)


__all__ = [
    "DIGEST_LENGTH",
    "Due",
    "FireKey",
    "Job",
    "approval_digest",
    "approval_document",
    "approval_problem",
    "by_name",
    "due_fires",
    "next_wake",
]
