"""Canonical JSON and hashing shared by the audit chain and finding fingerprints.

Both need a byte-exact, reproducible encoding of a value: sorted keys, no whitespace, UTF-8, and
no NaN/Infinity (which JSON cannot carry and which would hash differently after a round trip).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.errors import StoreError


def _dumps(value: object, *, sort_keys: bool) -> str:
    try:
        return json.dumps(
            value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(f"value cannot be stored as JSON: {exc}") from None


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON text. Raises StoreError for values JSON cannot represent."""
    return _dumps(value, sort_keys=True)


def normalize_json(value: object) -> Any:
    """``value`` as it will read back from a JSON column: tuples become lists, keys become strings.

    Hashing the normalized value (not the caller's) keeps a hash valid after a database round trip.
    """
    # unsorted: a dict mixing int and str keys cannot be sorted before its keys become strings
    return json.loads(_dumps(value, sort_keys=False))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["canonical_json", "normalize_json", "sha256_hex"]
