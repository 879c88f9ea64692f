"""The audit chain as pure values: entry hashes, entries, and the walk that finds the first break.

No I/O here; :mod:`orchestrator.store.audit` reads and writes the database and drives this module.
An entry's ``hash`` is the SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of
``{seq, ts, actor, action, target, details, prev_hash}``, with ``ts`` an ISO 8601 UTC timestamp
with microseconds and ``prev_hash`` the previous entry's hash (64 zeros for the first entry).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from orchestrator.errors import AuditChainError, InputError
from orchestrator.store.canonical import canonical_json, sha256_hex
from orchestrator.store.models import GENESIS_HASH

_HASH_RE = re.compile(r"[0-9a-f]{64}")


def format_ts(ts: datetime) -> str:
    """The timestamp as it is hashed: UTC, ISO 8601, always with microseconds."""
    if ts.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The hash an entry with these fields must carry."""
    document = {
        "seq": seq,
        "ts": format_ts(ts),
        "actor": actor,
        "action": action,
        "target": target,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    return sha256_hex(canonical_json(document))


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log, as written or read back."""

    seq: int
    ts: datetime
    actor: str
    action: str
    target: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def expected_hash(self, seq: int | None = None) -> str:
        """The hash these fields produce (at ``seq`` instead of the entry's own, if given)."""
        return entry_hash(
            seq=self.seq if seq is None else seq,
            ts=self.ts,
            actor=self.actor,
            action=self.action,
            target=self.target,
            details=self.details,
            prev_hash=self.prev_hash,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "ts": format_ts(self.ts),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainHead:
    """A point in the chain, written ``SEQ:HASH``: record it elsewhere to verify against later."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    def to_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True)
class ExpectedHead:
    """An externally recorded head: a hash, optionally with the seq it was recorded at."""

    hash: str
    seq: int | None = None

    @classmethod
    def parse(cls, text: str) -> ExpectedHead:
        """``HASH`` or ``SEQ:HASH`` (as printed by ``fleetfix audit verify``)."""
        seq_text, _, hash_text = text.strip().rpartition(":")
        hash_text = hash_text.lower()
        if not _HASH_RE.fullmatch(hash_text) or (seq_text and not seq_text.isdigit()):
            raise InputError("expected SEQ:HASH or HASH (64 hex digits)", field="--expect-head")
        return cls(hash=hash_text, seq=int(seq_text) if seq_text else None)


class AuditProblem(StrEnum):
    MISSING = "missing"  # a seq is absent: an entry (or the newest ones) deleted
    EDITED = "edited"  # the entry's fields do not produce its hash
    REORDERED = "reordered"  # the entry is intact but sits at another seq than it was written at
    BROKEN_LINK = "broken_link"  # prev_hash is not the previous entry's hash: one of them rewritten
    HEAD_MISMATCH = "head_mismatch"  # audit_head does not name the last entry
    ANCHOR_MISMATCH = "anchor_mismatch"  # the externally recorded head is not in the chain


@dataclass(frozen=True)
class AuditFailure:
    """The first thing wrong with the chain. ``seq`` is None only when no entry can be blamed."""

    seq: int | None
    problem: AuditProblem
    message: str

    def to_error(self) -> AuditChainError:
        return AuditChainError(self.message, seq=self.seq)

    def to_dict(self) -> dict[str, object]:
        return {"first_bad_seq": self.seq, "problem": self.problem.value, "message": self.message}


@dataclass(frozen=True)
class AuditVerification:
    """The outcome of :func:`verify_audit`: ``failure`` is None when the chain is intact."""

    entries: int
    head: ChainHead | None
    failure: AuditFailure | None
    anchor_seq: int | None = None  # where the expected head was found, when one was given

    @property
    def ok(self) -> bool:
        return self.failure is None

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise self.failure.to_error()


class ChainWalker:
    """Checks entries fed in seq order; the first failure it returns is the one to report.

    ``seq_of_hash`` finds the entry carrying a hash (a database lookup), used only to explain a
    bad hash; ``expected`` is an externally recorded head that must still be in the chain.
    """

    def __init__(self, seq_of_hash: Callable[[str], int | None], expected: ExpectedHead | None = None):
        self._seq_of_hash = seq_of_hash
        self._expected = expected
        self.last = ChainHead(seq=0, hash=GENESIS_HASH)
        self.count = 0
        self.anchor_seq: int | None = None

    def feed(self, entry: AuditEntry) -> AuditFailure | None:
        failure = self._check(entry) or self._check_anchor(entry)
        if failure is None:
            self.last = ChainHead(seq=entry.seq, hash=entry.hash)
            self.count += 1
        return failure

    def finish(self, head: ChainHead | None) -> AuditFailure | None:
        """Checks after the last entry: the head row, then the recorded head."""
        return self._check_head(head) or self._check_anchor_found()

    def _check(self, entry: AuditEntry) -> AuditFailure | None:
        expected_seq = self.last.seq + 1
        if entry.seq > expected_seq:
            gap = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}-{entry.seq - 1}"
            return _fail(expected_seq, AuditProblem.MISSING, f"entry {gap} missing (deleted)")
        if entry.seq < expected_seq:
            return _fail(entry.seq, AuditProblem.EDITED, f"entry numbered {entry.seq} is outside the chain")
        if entry.expected_hash() != entry.hash:
            return self._explain_bad_hash(entry)
        if entry.prev_hash != self.last.hash:
            return _fail(
                entry.seq,
                AuditProblem.BROKEN_LINK,
                f"entry {entry.seq}: prev_hash is not entry {self.last.seq}'s hash (one of them rewritten)",
            )
        return None

    def _explain_bad_hash(self, entry: AuditEntry) -> AuditFailure:
        # An intact entry moved to another seq still hashes correctly at the seq right after the
        # entry its prev_hash names; anything else is an edit of the fields or of the hash.
        origin = 0 if entry.prev_hash == GENESIS_HASH else self._seq_of_hash(entry.prev_hash)
        if origin is not None and entry.expected_hash(seq=origin + 1) == entry.hash:
            message = f"entry {entry.seq} was written as entry {origin + 1} (entries reordered)"
            return _fail(entry.seq, AuditProblem.REORDERED, message)
        message = f"entry {entry.seq} does not match its hash (content or hash edited)"
        return _fail(entry.seq, AuditProblem.EDITED, message)

    def _check_anchor(self, entry: AuditEntry) -> AuditFailure | None:
        expected = self._expected
        if expected is None or expected.seq not in {None, entry.seq}:
            return None
        if entry.hash == expected.hash:
            self.anchor_seq = entry.seq
            return None
        if expected.seq is None:
            return None  # a bare hash may still match a later entry
        message = f"entry {entry.seq} differs from the recorded head (chain rewritten up to here)"
        return _fail(entry.seq, AuditProblem.ANCHOR_MISMATCH, message)

    def _check_head(self, head: ChainHead | None) -> AuditFailure | None:
        last = self.last
        if head is None:
            return _fail(None, AuditProblem.HEAD_MISMATCH, "the audit_head row is missing")
        if head.seq > last.seq:
            message = f"the log ends at entry {last.seq}, the head records {head.seq} (newest deleted)"
            return _fail(last.seq + 1, AuditProblem.MISSING, message)
        if head.seq < last.seq:
            message = f"entry {head.seq + 1} onwards not appended by fleetfix (head stops at {head.seq})"
            return _fail(head.seq + 1, AuditProblem.HEAD_MISMATCH, message)
        if head.hash != last.hash:
            message = f"the head's hash is not entry {last.seq}'s hash (head forged)"
            return _fail(last.seq, AuditProblem.HEAD_MISMATCH, message)
        return None

    def _check_anchor_found(self) -> AuditFailure | None:
        expected = self._expected
        if expected is None or self.anchor_seq is not None:
            return None
        if expected.seq is not None:  # the walk ended before reaching the recorded seq
            message = f"the recorded head is entry {expected.seq}, the log ends at entry {self.last.seq}"
            return _fail(self.last.seq + 1, AuditProblem.MISSING, message)
        message = "no entry has the recorded head's hash (the chain was rewritten)"
        return _fail(None, AuditProblem.ANCHOR_MISMATCH, message)


def _fail(seq: int | None, problem: AuditProblem, message: str) -> AuditFailure:
    return AuditFailure(seq=seq, problem=problem, message=message)


__all__ = [
    "AuditEntry",
    "AuditFailure",
    "AuditProblem",
    "AuditVerification",
    "ChainHead",
    "ChainWalker",
    "ExpectedHead",
    "entry_hash",
    "format_ts",
]
