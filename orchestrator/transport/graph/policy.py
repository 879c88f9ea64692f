"""Pure decisions of the Graph client: when to retry and how long to wait, what an error is, how to
split a batch.  No I/O and no clock of their own, so each is tested on its own.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import (
    AuthFailedError,
    ForbiddenError,
    NotFoundError,
    ProtocolError,
    ServiceError,
    ThrottledError,
    TransportError,
)

RETRYABLE_STATUS = frozenset({429, 503, 504})
MAX_BATCH = 20


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry throttled (429) and unavailable (503/504) answers.

    ``Retry-After`` is honoured when present (up to ``max_retry_after_s``: a longer wait fails the
    request as throttled rather than stalling a run for hours); otherwise the wait is exponential
    from ``base_delay_s`` with "full jitter" (uniform between half and all of it), so workers that
    failed together do not come back together.
    """

    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("invalid retry policy")

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """Wait before retry number ``attempt`` (0-based) when the service named none."""
        ceiling = min(self.max_delay_s, math.ldexp(self.base_delay_s, attempt))
        return ceiling * (0.5 + random() / 2)

    def delay(self, attempt: int, retry_after: float | None, random: Callable[[], float]) -> float | None:
        """Seconds to wait before the next attempt, or None when it is time to give up."""
        if attempt + 1 >= self.max_attempts:
            return None
        if retry_after is None:
            return self.backoff(attempt, random)
        return retry_after if retry_after <= self.max_retry_after_s else None


def parse_retry_after(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds (decimals accepted) or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    reference = now or datetime.datetime.now(datetime.UTC)
    return max((when - reference).total_seconds(), 0.0)


def request_id_of(headers: Mapping[str, str], body: Any) -> str | None:
    """Graph's id for a request (``request-id`` header, else the error body's ``innerError``)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get("request-id"):
        return lowered["request-id"]
    inner = _error_part(body).get("innerError")
    if isinstance(inner, dict) and isinstance(inner.get("request-id"), str):
        return str(inner["request-id"])
    return None


def _error_part(body: Any) -> dict[str, Any]:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def error_for(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    host: str,
    what: str,
    retry_after: float | None = None,
) -> TransportError:
    """The fleetfix exception for a failed Graph answer; ``what`` names the request (``GET …``)."""
    error = _error_part(body)
    code = str(error.get("code") or f"HTTP {status}")
    message = f"{what}: {status} {code}: {error.get('message') or 'no message'}"
    request_id = request_id_of(headers, body)
    if status == 429:
        return ThrottledError(message, host=host, request_id=request_id, retry_after=retry_after)
    kinds: dict[int, type[TransportError]] = {401: AuthFailedError, 403: ForbiddenError, 404: NotFoundError}
    if status in kinds:
        return kinds[status](message, host=host, request_id=request_id)
    if status >= 500:
        return ServiceError(message, host=host, request_id=request_id)
    return ProtocolError(message, host=host, request_id=request_id)


def chunk_batch(
    requests: Sequence[Mapping[str, Any]], size: int = MAX_BATCH
) -> list[list[Mapping[str, Any]]]:
    """Split batch items into ``$batch`` calls of at most ``size``, keeping ``dependsOn`` chains whole.

    Graph resolves ``dependsOn`` only inside one batch, so an item and everything it depends on
    (transitively) travel together; a chain longer than ``size`` cannot be sent and is refused.
    """
    groups = _dependency_groups(requests)
    chunks: list[list[Mapping[str, Any]]] = []
    for group in groups:
        if len(group) > size:
            raise ValueError(f"a dependsOn chain of {len(group)} requests exceeds the batch limit of {size}")
        if not chunks or len(chunks[-1]) + len(group) > size:
            chunks.append([])
        chunks[-1].extend(group)
    return chunks


def _dependency_groups(requests: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Items joined by ``dependsOn`` (union-find over ids), each group in its original order."""
    index = {str(item["id"]): position for position, item in enumerate(requests)}
    if len(index) != len(requests):
        raise ValueError("batch request ids must be unique")
    parent = list(range(len(requests)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for position, item in enumerate(requests):
        for dependency in item.get("dependsOn") or ():
            if dependency not in index:
                raise ValueError(f"request {item['id']} depends on unknown request {dependency}")
            parent[root(position)] = root(index[dependency])
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for position, item in enumerate(requests):
        groups.setdefault(root(position), []).append(item)
    return list(groups.values())


__all__ = [
    "MAX_BATCH",
    "RETRYABLE_STATUS",
    "RetryPolicy",
    "chunk_batch",
    "error_for",
    "parse_retry_after",
    "request_id_of",
]
