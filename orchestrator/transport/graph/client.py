"""The Graph client: one request loop with budget, retries and token refresh; paging; ``$batch``.

Every request, top-level or inside a batch, goes through the same steps:

1. take a permit from the tenant's :class:`~orchestrator.transport.graph.budget.RequestBudget`;
2. send it with a bearer token from the :class:`~orchestrator.transport.graph.auth.TokenSource`;
3. on 401, drop the cached token and send once more with a fresh one;
4. on 429/503/504, wait (``Retry-After`` if given, else exponential backoff with jitter) and retry,
   up to the :class:`~orchestrator.transport.graph.policy.RetryPolicy`'s attempts;
5. any other error becomes a fleetfix exception that keeps Graph's ``request-id``.

Only hosts of the configured Graph endpoint are contacted: an ``@odata.nextLink`` elsewhere is a
protocol error, never followed.  Sleep and randomness are injected, so tests need not wait.
"""

from __future__ import annotations

import random as _random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from orchestrator.errors import ProtocolError, TransportError
from orchestrator.transport.graph.auth import TokenSource
from orchestrator.transport.graph.budget import RequestBudget, RequestKind, classify
from orchestrator.transport.graph.policy import (
    RETRYABLE_STATUS,
    RetryPolicy,
    chunk_batch,
    error_for,
    parse_retry_after,
    request_id_of,
)
from orchestrator.transport.graph.translate import translate_httpx

VERSIONS = ("v1.0", "beta")


@dataclass(frozen=True)
class GraphResponse:
    status: int
    headers: Mapping[str, str]
    body: Any
    request_id: str | None


@dataclass(frozen=True)
class BatchItem:
    """One sub-request of a ``$batch``; ``url`` is relative to the version (``/deviceManagement/…``)."""

    id: str
    method: str
    url: str
    body: Any = None
    depends_on: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        if self.body is not None:
            item["body"] = self.body
            item["headers"] = {"Content-Type": "application/json"}
        if self.depends_on:
            item["dependsOn"] = list(self.depends_on)
        return item


@dataclass(frozen=True)
class BatchResult:
    """The final answer to one batch item (after retries)."""

    id: str
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    def error(self, *, host: str, what: str) -> TransportError:
        retry_after = parse_retry_after(self.headers.get("Retry-After") or self.headers.get("retry-after"))
        return error_for(self.status, self.body, self.headers, host=host, what=what, retry_after=retry_after)


@dataclass
class GraphStats:
    """What one client did, for benchmarks and reports."""

    requests: int = 0
    throttled: int = 0  # 429 answers, top-level and inside batches
    unavailable: int = 0  # 503/504 answers
    retries: int = 0
    token_refreshes: int = 0
    budget_wait_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def count_retryable(self, status: int) -> None:
        """Count a 429 as throttled, a 503/504 as unavailable."""
        self.add(**{"throttled" if status == 429 else "unavailable": 1})

    def as_dict(self) -> dict[str, float]:
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}


class _NoBudget:
    def acquire(self, kind: RequestKind, count: int = 1) -> float:
        return 0.0


class GraphClient:
    """Microsoft Graph over an injected ``httpx.Client`` (thread-safe, as httpx clients are)."""

    def __init__(
        self,
        http: httpx.Client,
        tokens: TokenSource,
        *,
        base_url: str,
        budget: RequestBudget | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).hostname or self.base_url
        self._http = http
        self._tokens = tokens
        self._budget = budget or _NoBudget()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._random = random
        self.stats = GraphStats()

    # --- single requests -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        version: str = "v1.0",
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> GraphResponse:
        """Send one request with budget, token refresh and retries; raise on a final error."""
        url, relative = self._resolve(path, version)
        kind = classify(method, relative)
        what = f"{method} {relative}"
        refreshed = False
        attempt = 0
        while True:
            self.stats.add(budget_wait_s=self._budget.acquire(kind))
            response = self._send(method, url, params, json, what)
            if response.status_code == 401 and not refreshed:
                refreshed = True  # the token was revoked or expired early: one fresh token, once
                self._tokens.invalidate()
                self.stats.add(token_refreshes=1)
                continue
            if response.status_code in RETRYABLE_STATUS and self._wait_before_retry(
                response.status_code, response.headers, attempt
            ):
                attempt += 1
                continue
            return self._result(response, what)

    def _resolve(self, path: str, version: str) -> tuple[str, str]:
        """The absolute URL and the path relative to the version (for budgeting and messages)."""
        if path.startswith(("https://", "http://")):  # an @odata.nextLink: follow it verbatim
            parts = urlsplit(path)
            if (parts.hostname or "").lower() != self.host.lower():
                raise ProtocolError(f"refusing to follow a link to {parts.hostname!r}", host=self.host)
            segments = parts.path.split("/", 2)
            return path, "/" + (segments[2] if len(segments) > 2 else "")
        if version not in VERSIONS:
            raise ValueError(f"unknown Graph version {version!r}")
        return f"{self.base_url}/{version}{path}", path

    def _send(
        self, method: str, url: str, params: Mapping[str, str] | None, json: Any, what: str
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self._tokens.token()}",
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
        }
        self.stats.add(requests=1)
        try:
            return self._http.request(method, url, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise translate_httpx(exc, host=self.host, what=what) from None

    def _wait_before_retry(self, status: int, headers: Mapping[str, str], attempt: int) -> bool:
        """Count a retryable answer and sleep before the retry; False when retries are used up."""
        self.stats.count_retryable(status)
        delay = self._retry.delay(attempt, parse_retry_after(headers.get("Retry-After")), self._random)
        if delay is None:
            return False
        self.stats.add(retries=1)
        self._sleep(delay)
        return True

    def _result(self, response: httpx.Response, what: str) -> GraphResponse:
        body = _json_body(response)
        headers = dict(response.headers)
        if response.status_code >= 400:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise error_for(
                response.status_code, body, headers, host=self.host, what=what, retry_after=retry_after
            )
        return GraphResponse(response.status_code, headers, body, request_id_of(headers, body))

    # --- collections -----------------------------------------------------------------------------------

    def iter_collection(
        self, path: str, *, version: str = "v1.0", params: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` until there is none."""
        response = self.request("GET", path, version=version, params=params)
        while True:
            body = response.body if isinstance(response.body, dict) else {}
            values = body.get("value")
            if not isinstance(values, list):
                raise ProtocolError(f"GET {path}: the answer has no 'value' collection", host=self.host)
            yield from values
            link = body.get("@odata.nextLink")
            if not link:
                return
            response = self.request("GET", str(link))

    # --- $batch ---------------------------------------------------------------------------------------

    def batch(self, items: Sequence[BatchItem], *, version: str = "v1.0") -> dict[str, BatchResult]:
        """Send items in ``$batch`` calls of at most 20; retry throttled or unavailable items.

        Items answered 429/503/504 go again in a later round (with the items that failed only
        because they depended on them, 424), after the longest ``Retry-After`` among them or a
        backoff.  Returns the final result of every item; failures are data, not exceptions.
        """
        pending = list(items)
        results: dict[str, BatchResult] = {}
        attempt = 0
        while pending:
            answers = self._batch_round(pending, version)
            retry, waits = self._sort_answers(
                pending, answers, results, last=attempt + 1 >= self._retry.max_attempts
            )
            if not retry:
                break
            known = [wait for wait in waits if wait is not None]
            # Honour the longest Retry-After; back off when any item came back without one.
            delay = (
                max(known)
                if known and len(known) == len(waits)
                else self._retry.backoff(attempt, self._random)
            )
            self.stats.add(retries=len(retry))
            self._sleep(delay)
            pending, attempt = retry, attempt + 1
        return results

    def _batch_round(self, items: Sequence[BatchItem], version: str) -> dict[str, dict[str, Any]]:
        answers: dict[str, dict[str, Any]] = {}
        for chunk in chunk_batch([item.to_json() for item in items]):
            for entry in chunk:  # each sub-request counts against Intune's limits
                kind = classify(str(entry["method"]), str(entry["url"]))
                self.stats.add(budget_wait_s=self._budget.acquire(kind))
            response = self.request("POST", "/$batch", version=version, json={"requests": chunk})
            for answer in _batch_answers(response.body, self.host):
                answers[str(answer["id"])] = answer
        return answers

    def _sort_answers(
        self,
        pending: Sequence[BatchItem],
        answers: Mapping[str, dict[str, Any]],
        results: dict[str, BatchResult],
        *,
        last: bool,
    ) -> tuple[list[BatchItem], list[float | None]]:
        """Record final answers in ``results``; return the items to send again and their waits."""
        retry_ids = {
            item.id
            for item in pending
            if answers.get(item.id, {}).get("status") in RETRYABLE_STATUS and not last
        }
        retry: list[BatchItem] = []
        waits: list[float | None] = []
        for item in pending:
            answer = answers.get(item.id)
            if answer is None:
                raise ProtocolError(f"$batch: no answer for request {item.id}", host=self.host)
            status = int(answer.get("status", 0))
            headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
            if status in RETRYABLE_STATUS:
                self.stats.count_retryable(status)
            if item.id in retry_ids:
                retry.append(item)
                waits.append(parse_retry_after(headers.get("Retry-After") or headers.get("retry-after")))
            elif status == 424 and set(item.depends_on) & retry_ids:
                retry.append(item)  # failed only because its dependency is being retried
            else:
                results[item.id] = BatchResult(item.id, status, headers, answer.get("body"))
        return retry, waits

    def close(self) -> None:
        self._http.close()
        self._tokens.close()


def _json_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"error": {"code": "NotJson", "message": response.text[:200]}}


def _batch_answers(body: Any, host: str) -> list[dict[str, Any]]:
    answers = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(answers, list) or not all(isinstance(a, dict) and "id" in a for a in answers):
        raise ProtocolError("$batch: the answer has no 'responses' list", host=host)
    return answers


__all__ = ["VERSIONS", "BatchItem", "BatchResult", "GraphClient", "GraphResponse", "GraphStats"]
