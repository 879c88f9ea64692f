"""The fleetfix store: runs, host results, findings, the action journal and the audit log.

SQLite by default (one file in the data directory), PostgreSQL for several workers; the schema is
managed by the Alembic migrations in ``migrations/``.  Typical use::

    from orchestrator.store import open_store, append_audit

    with open_store(settings) as store:
        with store.transaction() as session:
            session.add(Run(kind=RunKind.SWEEP, requested_by=actor))
            append_audit(session, actor, "run.start", target="sweep", details={"hosts": 120})

Every database failure comes out as :class:`orchestrator.errors.StoreError`, naming the database
by its URL with the password masked.
"""

from orchestrator.store.audit import (
    AuditEntry,
    AuditFailure,
    AuditProblem,
    AuditVerification,
    ChainHead,
    ExpectedHead,
    append_audit,
    audit_head,
    list_audit,
    local_actor,
    verify_audit,
)
from orchestrator.store.db import Store, ensure_current, open_store, session_factory
from orchestrator.store.engine import create_store_engine, mask_url, store_errors, writer
from orchestrator.store.journal import claim_step
from orchestrator.store.migrate import (
    MigrationResult,
    current_revision,
    head_revision,
    upgrade,
    upgrade_engine,
)
from orchestrator.store.models import (
    AuditHead,
    AuditLogRow,
    Base,
    Finding,
    HostLease,
    HostResult,
    HostStatus,
    JournalEntry,
    Run,
    RunKind,
    RunStatus,
    RunTarget,
    RunWave,
    StepState,
    TargetRole,
    TargetState,
    WaveKind,
    WaveStatus,
)

__all__ = [
    "AuditEntry",
    "AuditFailure",
    "AuditHead",
    "AuditLogRow",
    "AuditProblem",
    "AuditVerification",
    "Base",
    "ChainHead",
    "ExpectedHead",
    "Finding",
    "HostLease",
    "HostResult",
    "HostStatus",
    "JournalEntry",
    "MigrationResult",
    "Run",
    "RunKind",
    "RunStatus",
    "RunTarget",
    "RunWave",
    "StepState",
    "Store",
    "TargetRole",
    "TargetState",
    "WaveKind",
    "WaveStatus",
    "append_audit",
    "audit_head",
    "claim_step",
    "create_store_engine",
    "current_revision",
    "ensure_current",
    "head_revision",
    "list_audit",
    "local_actor",
    "mask_url",
    "open_store",
    "session_factory",
    "store_errors",
    "upgrade",
    "upgrade_engine",
    "verify_audit",
    "writer",
]
