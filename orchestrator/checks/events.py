"""RasClient 20227 failures, grouped per connection and error code and mapped to their likely
causes (EP-EVT-01).  Event messages are localized, so the code comes from the event data first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from orchestrator.checks.context import CheckContext
from orchestrator.checks.errorcodes import code_label, lookup, unsigned
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import host_check
from orchestrator.facts.endpoint import EndpointFacts, EventRecord
from orchestrator.inventory.models import Role

FAILED = 20227
CONNECTED = 20225
_INTEGER = re.compile(r"^-?\d+$")
_LAST_INTEGER = re.compile(r"(-?\d+)\D*$")
_NAMED = re.compile(r"connection named (.+?) which has failed", re.IGNORECASE)
_URGENT = frozenset({13801, 13806, 809})

EP_EVT_01 = CheckSpec(
    id="EP-EVT-01",
    title="VPN connection failures (RasClient 20227)",
    severity=Severity.MEDIUM,
    roles=(Role.ENDPOINT,),
    reasons={
        "connection_failed": "RasClient logged event 20227 for the connection and no successful "
        "connection (20225) followed; evidence names the code and the checks that explain it",
    },
    error_codes=("13806", "13801", "13868", "809", "812", "691", "853", "864", "0x800B0109", "0x80092013"),
    advice="Read the likely causes in the evidence: the findings of those checks on this host, its VPN "
    "servers and its CA say which one applies.",
)


@dataclass(frozen=True)
class Failure:
    connection: str
    code: int | None
    time: datetime


def failure_code(event: EventRecord) -> int | None:
    """The error code: the last integer of the event data, else the last integer of the message."""
    for value in reversed(event.data):
        if _INTEGER.match(value.strip()):
            return int(value.strip())
    match = _LAST_INTEGER.search(event.message or "")
    return int(match.group(1)) if match else None


def connection_name(event: EventRecord) -> str:
    """The connection: the third data value (id, user, connection, code), else the English message."""
    if len(event.data) >= 4 and event.data[2].strip():
        return event.data[2].strip()
    match = _NAMED.search(event.message or "")
    return match.group(1) if match else "unknown"


def _mentions(event: EventRecord, connection: str) -> bool:
    wanted = connection.casefold()
    return (
        any(value.strip().casefold() == wanted for value in event.data)
        or wanted in (event.message or "").casefold()
    )


def unresolved_failures(events: tuple[EventRecord, ...]) -> list[Failure]:
    """20227 failures with no 20225 for the same connection after them."""
    failures = [Failure(connection_name(e), failure_code(e), e.time) for e in events if e.event_id == FAILED]
    successes = [e for e in events if e.event_id == CONNECTED]
    return [
        failure
        for failure in failures
        if not any(s.time > failure.time and _mentions(s, failure.connection) for s in successes)
    ]


@host_check(EP_EVT_01, EndpointFacts)
def connection_failures(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    groups: dict[tuple[str, int | None], list[Failure]] = {}
    for failure in unresolved_failures(facts.ras_events or ()):
        groups.setdefault((failure.connection, failure.code), []).append(failure)
    for (connection, code), failures in sorted(
        groups.items(), key=lambda item: (item[0][0], str(item[0][1]))
    ):
        yield _finding(host, connection, code, failures)


def _finding(host: str, connection: str, code: int | None, failures: list[Failure]) -> Finding:
    known = lookup(code) if code is not None else None
    label = code_label(code) if code is not None else "unknown"
    times = sorted(failure.time for failure in failures)
    meaning = f" ({known.name}: {known.meaning})" if known else ""
    return EP_EVT_01.finding(
        host,
        reason="connection_failed",
        subject=f"{connection}:{label}",
        severity=Severity.HIGH if code is not None and unsigned(code) in _URGENT else None,
        message=f"{connection} failed {len(failures)} times with {label}{meaning}",
        evidence={
            "connection": connection,
            "code": code,
            "code_label": label,
            "code_name": known.name if known else None,
            "meaning": known.meaning if known else None,
            "likely_causes": list(known.checks) if known else [],
            "count": len(failures),
            "first_seen": times[0],
            "last_seen": times[-1],
        },
    )


__all__ = ["EP_EVT_01", "connection_failures", "connection_name", "failure_code", "unresolved_failures"]
