"""A sweep scored against ground truth (a lab scenario's ``truth``): precision and recall.  Pure.

A finding and a truth entry are the same when host (case-folded), check id, reason and subject
agree.  Truth on a host the sweep could not collect (unreachable, refused) cannot be judged, so
it is counted apart (``unjudged``) rather than as missed; so is every finding of such a host,
of which there are none.  Fleet-wide entries (``fleet``, ``intune``) are always judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.store.sweeps import FindingRecord

Key = tuple[str, str, str, str]
"""(host case-folded, check id, reason, subject)."""


def finding_key(record: FindingRecord) -> Key:
    return (record.host.casefold(), record.check_id, record.reason or "", record.subject)


def truth_key(entry: Mapping[str, Any]) -> Key:
    return (
        str(entry["host"]).casefold(),
        str(entry["check_id"]),
        str(entry["reason"]),
        str(entry["subject"]),
    )


@dataclass(frozen=True)
class Score:
    """What the sweep found against what it should have found."""

    found: frozenset[Key]
    expected: frozenset[Key]
    unjudged: frozenset[Key]

    @property
    def matched(self) -> frozenset[Key]:
        return self.found & self.expected

    @property
    def missed(self) -> frozenset[Key]:
        return self.expected - self.found

    @property
    def unexpected(self) -> frozenset[Key]:
        return self.found - self.expected

    @property
    def precision(self) -> float:
        return len(self.matched) / len(self.found) if self.found else 1.0

    @property
    def recall(self) -> float:
        return len(self.matched) / len(self.expected) if self.expected else 1.0

    @property
    def exact(self) -> bool:
        return self.found == self.expected

    def diff_lines(self) -> list[str]:
        """``missed …`` and ``unexpected …`` lines, sorted: what a failing test prints."""
        return [f"missed     {key}" for key in sorted(self.missed)] + [
            f"unexpected {key}" for key in sorted(self.unexpected)
        ]

    def to_dict(self) -> dict[str, Any]:
        def rows(keys: Iterable[Key]) -> list[dict[str, str]]:
            names = ("host", "check_id", "reason", "subject")
            return [dict(zip(names, key, strict=True)) for key in sorted(keys)]

        return {
            "expected": len(self.expected),
            "found": len(self.found),
            "matched": len(self.matched),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "unjudged": len(self.unjudged),
            "missed": rows(self.missed),
            "unexpected": rows(self.unexpected),
        }


def score(
    findings: Iterable[FindingRecord],
    truth: Iterable[Mapping[str, Any]],
    *,
    not_collected: Iterable[str] = (),
) -> Score:
    """Score ``findings`` against ``truth``, leaving out hosts in ``not_collected``."""
    skipped = {name.casefold() for name in not_collected}
    expected = {truth_key(entry) for entry in truth}
    return Score(
        found=frozenset(key for key in map(finding_key, findings) if key[0] not in skipped),
        expected=frozenset(key for key in expected if key[0] not in skipped),
        unjudged=frozenset(key for key in expected if key[0] in skipped),
    )


__all__ = ["Key", "Score", "finding_key", "score", "truth_key"]
