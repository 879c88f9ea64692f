"""The store's tables as SQLAlchemy 2 typed declarative models.

The Alembic migrations in ``orchestrator/store/migrations`` create exactly these tables; a test
compares the two (autogenerate must find no difference), so a change here needs a new revision.

Status-like columns are plain strings guarded by CHECK constraints built from the enums below: the
enums give Python code its vocabulary, the constraints stop other writers from inventing values.
Every timestamp is timezone-aware UTC (:class:`UTCDateTime`).  JSON columns never hold secrets:
secrets travel by reference (``vault:NAME``) everywhere in fleetfix, and the store is no exception.
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from orchestrator.store.types import UTCDateTime, json_type, utcnow

# Constraint names follow a fixed pattern so that migrations can name them, and a later migration
# can drop or alter them, identically on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first audit entry, and the audit head's hash while the log is empty."""

HASH_LENGTH = 64


class RunKind(StrEnum):
    SWEEP = "sweep"
    PLAYBOOK = "playbook"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # A risky playbook run waits here until a second person approves it (orchestrator.engine.runs).
    AWAITING_APPROVAL = "awaiting_approval"
    # A --check run whose per-target plans were saved; it changes nothing until it is submitted.
    PLANNED = "planned"


class HostStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"


class StepState(StrEnum):
    """A journal row's life: claimed before the action runs, then exactly one outcome.

    ``unchanged`` is the idempotent no-op (the host was already right); a row left ``claimed`` by a
    dead worker means "half-done": whoever takes it over re-reads the host before re-applying.
    """

    CLAIMED = "claimed"
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


def _one_of(column: str, values: type[StrEnum], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _new_run_id() -> str:
    return str(uuid.uuid4())


class Run(Base):
    """One sweep or playbook run; the engine's state machine persists its progress here."""

    __tablename__ = "runs"
    __table_args__ = (
        _one_of("kind", RunKind, "kind"),
        _one_of("status", RunStatus, "status"),
        # "the last finished sweep before X" and "unfinished runs to resume"
        Index(None, "kind", "created_at"),
        Index(None, "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_run_id)
    kind: Mapped[str] = mapped_column(String(16))
    playbook_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(32), default=RunStatus.PENDING)
    selector: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    requested_by: Mapped[str] = mapped_column(String(255))
    executor: Mapped[str] = mapped_column(String(16), default="local")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # What a finished run amounts to (a sweep: counts by status and severity, notes), so listing
    # runs needs no scan of their findings.
    summary: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    # A sweep's facts that belong to no host (the Intune tenant, CRLs fetched over HTTP); with the
    # hosts' facts in host_results they rebuild the FleetFacts the checks judged.
    fleet_facts: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    # --- the engine's columns (migration 0003); a sweep leaves them at their defaults ---
    # How the run rolls out: canary, wave_size, serial, max_fail ("3" or "10%"), window (spec text),
    # concurrency and references to saved plans (orchestrator.engine.runs.RunOptions).
    options: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    approved_by: Mapped[str | None] = mapped_column(String(255))
    approved_at: Mapped[datetime | None]
    # Why a paused run is paused ("outside change window; next opens at ..."); cleared on resume.
    pause_reason: Mapped[str | None] = mapped_column(Text)
    # Why a finished run ended as it did ("canary failed on H: ...", "cancelled by X").
    status_message: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The process advancing the run right now and until when its claim holds (renewed while it
    # works): a second `advance` of the same run is refused instead of racing the first.
    coordinator: Mapped[str | None] = mapped_column(String(255))
    coordinator_expires: Mapped[datetime | None]

    waves: Mapped[list[RunWave]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    targets: Mapped[list[RunTarget]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    host_results: Mapped[list[HostResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    findings: Mapped[list[Finding]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    journal: Mapped[list[JournalEntry]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


def _run_fk() -> Mapped[str]:
    return mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))


class HostResult(Base):
    """What happened on one host in one run. Failures are data here, not exceptions."""

    __tablename__ = "host_results"
    __table_args__ = (
        UniqueConstraint("run_id", "host"),
        _one_of("status", HostStatus, "status"),
        Index(None, "host"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = _run_fk()
    host: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="host_results")


class Finding(Base):
    """One check's verdict on one host in one run.

    ``fingerprint`` (the check's :attr:`orchestrator.checks.model.Finding.fingerprint`) identifies the
    same finding across runs; it is unique within a run so that "new since last night" and "fixed
    since last night" are set differences on fingerprints between two runs.
    """

    __tablename__ = "findings"
    __table_args__ = (
        # serves "all fingerprints of run R" for the diff, and keeps fingerprints unique per run
        UniqueConstraint("run_id", "fingerprint"),
        # "since when has this finding been open": the runs a fingerprint appears in
        Index(None, "fingerprint"),
        # a host's history for one check
        Index(None, "host", "check_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = _run_fk()
    host: Mapped[str] = mapped_column(String(255))
    check_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text)
    # What exactly is wrong (a certificate thumbprint, a profile name): part of the fingerprint.
    subject: Mapped[str] = mapped_column(Text, default="")
    # Which of the check's documented reasons fired (``evidence["reason"]``, kept as a column so
    # that findings can be filtered and compared with a scenario's ground truth).
    reason: Mapped[str | None] = mapped_column(String(64))
    evidence: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    # Windows error codes as Microsoft documents them: "13806", "0x80092013" (JSON: ints read back too).
    error_codes: Mapped[list[str | int]] = mapped_column(json_type(), default=list)
    playbook: Mapped[str | None] = mapped_column(String(100))
    advice: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(HASH_LENGTH))
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[Run] = relationship(back_populates="findings")


class JournalEntry(Base):
    """The action ledger: one row per (run, host, step), inserted (claimed) before the action acts.

    The unique constraint is what makes at-least-once delivery safe: a second worker that receives
    the same step cannot claim it (see :func:`orchestrator.store.journal.claim_step`).
    """

    __tablename__ = "action_journal"
    __table_args__ = (
        UniqueConstraint("run_id", "host", "step"),
        _one_of("state", StepState, "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = _run_fk()
    host: Mapped[str] = mapped_column(String(255))
    step: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=StepState.CLAIMED)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    before: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="journal")


class WaveKind(StrEnum):
    """Tenant-wide changes go first, then a canary wave, then the fleet in waves."""

    TENANT = "tenant"
    CANARY = "canary"
    WAVE = "wave"


class WaveStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    # every target of the wave reached a final state (some may have failed within the budget)
    COMPLETED = "completed"
    # the run stopped in this wave (canary failure, failure budget)
    FAILED = "failed"
    # the run ended (cancelled or failed) before this wave finished
    CANCELLED = "cancelled"


class TargetRole(StrEnum):
    ENDPOINT = "endpoint"
    RRAS = "rras"
    CA = "ca"
    TENANT = "tenant"


class TargetState(StrEnum):
    """One target's life in a run; the guarded transitions are in ``orchestrator.engine.model``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # changed and verified
    UNCHANGED = "unchanged"  # nothing to do: the host was already right
    FAILED = "failed"
    VERIFY_FAILED = "verify_failed"  # changed, but verification failed and nothing was rolled back
    ROLLED_BACK = "rolled_back"  # verification failed and the change was rolled back
    REFUSED = "refused"  # the host drifted from the saved plan; nothing was changed
    SKIPPED = "skipped"  # e.g. another run held the host's lease
    CANCELLED = "cancelled"


class RunWave(Base):
    """One wave of a run, in order of ``number`` (1-based)."""

    __tablename__ = "run_waves"
    __table_args__ = (
        _one_of("kind", WaveKind, "kind"),
        _one_of("status", WaveStatus, "status"),
    )

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=WaveStatus.PENDING)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="waves")


class RunTarget(Base):
    """One target (host or tenant) of a run: its wave, state and the outcome of its last attempt.

    ``attempts`` is the fencing token: a worker moves the target to ``running`` only if ``attempts``
    still has the value its task was made for, so a duplicate delivery of the same task finds the
    target already claimed and leaves it alone.
    """

    __tablename__ = "run_targets"
    __table_args__ = (
        UniqueConstraint("run_id", "target"),
        _one_of("role", TargetRole, "role"),
        _one_of("state", TargetState, "state"),
        # "a host's history across runs"
        Index(None, "target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = _run_fk()
    wave: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=TargetState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    error_kind: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    # A saved plan for this target (from a --check run); the host work refuses when the host drifted.
    planned: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="targets")


class HostLease(Base):
    """Who may touch a host right now: at most one run, until ``expires_at`` (renewed while working)."""

    __tablename__ = "host_leases"
    __table_args__ = (Index(None, "run_id"),)

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    # no foreign key: a lease outlives nothing, and deleting a run must not wait on its leases
    run_id: Mapped[str] = mapped_column(String(36))
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AuditLogRow(Base):
    """One audit entry. Append-only: database triggers reject UPDATE and DELETE.

    ``details`` is plain JSON even on PostgreSQL: ``json`` keeps the written text, whereas ``jsonb``
    may re-render numbers (``1e16`` comes back as an integer), which would break the entry's hash.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)


class AuditHead(Base):
    """The single row naming the last audit entry; appends lock it, so the chain cannot fork, and
    verification compares it with the log, so deleting the newest entries is caught."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class CollectedHost(Base):
    """One host's collection as a Celery worker delivered it, before the sweep is complete.

    The distributed sweep's ledger (``orchestrator.sweep.distributed``): ``collect_batch`` tasks
    write one row per (collection, host) as hosts finish; the sweep's coordinator waits until every
    selected host has its row, reads them back, completes the sweep exactly as an in-process sweep
    does (``host_results`` and findings in one transaction) and deletes them. ``collection`` is the
    id the coordinator gave this collection. The unique constraint makes a redelivered batch
    harmless: the first result for a host stands, a later one is dropped.
    """

    __tablename__ = "collected_hosts"
    __table_args__ = (
        UniqueConstraint("collection", "host"),
        # leftovers of a coordinator that died are removed by age
        Index(None, "written_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection: Mapped[str] = mapped_column(String(36))
    host: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    facts: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    script_errors: Mapped[list[str]] = mapped_column(json_type(), default=list)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    elapsed_s: Mapped[float] = mapped_column(Float)
    # the worker process that collected it (host:pid), for the record
    collected_by: Mapped[str] = mapped_column(String(255))
    written_at: Mapped[datetime] = mapped_column(default=utcnow)


class FireStatus(StrEnum):
    """A scheduled fire's life (orchestrator.schedule.fires)."""

    RUNNING = "running"  # the beat runs the job in-process right now
    DISPATCHED = "dispatched"  # sent to the Celery workers
    SUCCEEDED = "succeeded"  # the job ran (a sweep with findings still succeeded: see summary)
    FAILED = "failed"  # the job could not run to its end (the message says why)
    REFUSED = "refused"  # the job was not run: invalid or unapproved at fire time


class ScheduleFire(Base):
    """One fire of a scheduled job, inserted before the job runs.

    The unique key is what makes a duplicate fire harmless: a second beat, a restarted beat or a
    beat on a clock that differs by a little computes the same ``(job, local_date, slot)`` and its
    INSERT finds the row there. ``slot`` is empty for jobs that run once a day (the key is then the
    job and the local date, whatever time the cron names) and the nominal ``HH:MM`` otherwise.
    """

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("job", "local_date", "slot"),
        _one_of("kind", RunKind, "kind"),
        _one_of("status", FireStatus, "status"),
        # "the latest fires of a job" for --list and history
        Index(None, "job", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    local_date: Mapped[dt.date] = mapped_column(Date)
    slot: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    scheduled_at: Mapped[datetime]
    fired_at: Mapped[datetime]
    fired_by: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    # how it ran: "in-process" (the beat itself) or "celery"
    dispatch: Mapped[str] = mapped_column(String(16))
    # no foreign key: a Celery worker may create the run later, and deleting a run keeps its fires
    run_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str | None] = mapped_column(Text)
    # what the job amounted to (a sweep's summary, a run's counts); never secrets
    summary: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    finished_at: Mapped[datetime | None]


class BeatLease(Base):
    """Which ``fleetfix beat`` may fire the schedule, until ``expires_at`` (renewed while alive).

    One row per schedule (``name``); a second beat waits until the lease expires, so a crashed
    beat's schedule is taken over after at most the lease's ttl.
    """

    __tablename__ = "beat_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


__all__ = [
    "GENESIS_HASH",
    "NAMING_CONVENTION",
    "AuditHead",
    "AuditLogRow",
    "Base",
    "BeatLease",
    "CollectedHost",
    "Finding",
    "FireStatus",
    "HostLease",
    "HostResult",
    "HostStatus",
    "JournalEntry",
    "Run",
    "RunKind",
    "RunStatus",
    "RunTarget",
    "RunWave",
    "ScheduleFire",
    "StepState",
    "TargetRole",
    "TargetState",
    "WaveKind",
    "WaveStatus",
]
