"""Windows services: status, start type, and when each last started (restart semantics hang on it)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


@dataclass
class Service:
    name: str
    status: str = "Running"
    start_type: str = "Automatic"
    started_at: datetime.datetime | None = None
    restarts: int = 0


@dataclass
class Services:
    """The services a probe reports, by name (case-insensitive like the SCM)."""

    services: dict[str, Service] = field(default_factory=dict)

    def add(self, name: str, *, started_at: datetime.datetime, status: str = "Running") -> Service:
        service = Service(name, status=status, started_at=started_at if status == "Running" else None)
        self.services[name.lower()] = service
        return service

    def get(self, name: str) -> Service | None:
        return self.services.get(name.lower())

    def all(self) -> tuple[Service, ...]:
        return tuple(self.services.values())

    def start(self, name: str, now: datetime.datetime) -> Service:
        service = self._require(name)
        if service.status != "Running":
            service.status, service.started_at = "Running", now
        return service

    def stop(self, name: str) -> Service:
        service = self._require(name)
        service.status, service.started_at = "Stopped", None
        return service

    def restart(self, name: str, now: datetime.datetime) -> Service:
        """``Restart-Service``: stopped and started again, whatever it was."""
        service = self._require(name)
        service.status, service.started_at = "Running", now
        service.restarts += 1
        return service

    def _require(self, name: str) -> Service:
        service = self.get(name)
        if service is None:
            raise KeyError(f"Cannot find any service with service name '{name}'.")
        return service


__all__ = ["Service", "Services"]
