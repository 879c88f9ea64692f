"""Event logs: the records a host wrote, queried the way ``Get-WinEvent -FilterHashtable`` does."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass, field

APPLICATION = "Application"
RASCLIENT = "RasClient"
MDM_ADMIN_LOG = "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin"
RAS_CONNECTED = 20225
RAS_DISCONNECTED = 20226
RAS_FAILED = 20227


@dataclass(frozen=True)
class EventRecord:
    log: str
    provider: str
    event_id: int
    time: datetime.datetime
    data: tuple[str, ...]
    message: str


@dataclass
class EventLog:
    """Every record of the host's logs, oldest first."""

    records: list[EventRecord] = field(default_factory=list)

    def write(self, record: EventRecord) -> None:
        self.records.append(record)

    def query(
        self,
        log: str,
        *,
        since: datetime.datetime,
        ids: Collection[int] = (),
        provider: str | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """Matching records, newest first (``Get-WinEvent`` order), at most ``limit``."""
        found = [
            record
            for record in reversed(self.records)
            if record.log == log
            and record.time >= since
            and (not ids or record.event_id in ids)
            and (provider is None or record.provider == provider)
        ]
        found.sort(key=lambda record: record.time, reverse=True)
        return found if limit is None else found[:limit]


def ras_failed(time: datetime.datetime, coid: str, user: str, connection: str, code: int) -> EventRecord:
    """RasClient 20227: a dial that failed with ``code``."""
    message = (
        f"CoId={coid}: The user {user} dialed a connection named {connection} which has failed. "
        f"The error code returned on failure is {code}."
    )
    return EventRecord(APPLICATION, RASCLIENT, RAS_FAILED, time, (coid, user, connection, str(code)), message)


def ras_connected(time: datetime.datetime, coid: str, user: str, connection: str) -> EventRecord:
    """RasClient 20225: the connection was established."""
    message = (
        f"CoId={coid}: The connection to {connection} made by user {user} using device VPN was "
        "successfully established."
    )
    return EventRecord(APPLICATION, RASCLIENT, RAS_CONNECTED, time, (coid, user, connection, "VPN"), message)


__all__ = [
    "APPLICATION",
    "MDM_ADMIN_LOG",
    "RASCLIENT",
    "RAS_CONNECTED",
    "RAS_DISCONNECTED",
    "RAS_FAILED",
    "EventLog",
    "EventRecord",
    "ras_connected",
    "ras_failed",
]
