"""What every fact probe prints first: the versioned head, the OS, certificates, services.

Shared by the handlers of ``endpoint.facts``, ``rras.facts`` and ``ca.facts`` (docs/facts.md):
the real scripts repeat these helpers in each file because a probe travels as one text; the lab
writes them once.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable
from typing import Any

from lab.estate.model import HostIdentity, estate_of, utc_now
from lab.state import HostState
from lab.windows.certstore import CertificateStores, StoreName
from lab.windows.services import Services


def iso(moment: datetime.datetime) -> str:
    """``ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")``."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def now_of(state: HostState) -> datetime.datetime:
    """The host clock: the estate's (tests may pin it), else the real one."""
    estate = estate_of(state)
    return estate.now() if estate is not None else utc_now()


def os_info(state: HostState) -> dict[str, Any]:
    identity = state.find(HostIdentity)
    return {
        "caption": state.os_caption,
        "build": state.os_build,
        "ubr": state.os_ubr,
        "display_version": identity.display_version if identity else None,
        "edition_id": identity.edition_id if identity else None,
    }


def head(state: HostState, now: datetime.datetime) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "collected_at": iso(now),
        "computer_name": state.name.upper()[:15],
        "fqdn": state.fqdn,
        "os": os_info(state),
    }


def certificates(state: HostState, stores: Iterable[StoreName]) -> list[dict[str, Any]]:
    held = state.component(CertificateStores)
    return [
        {"store": store, "der": b64(entry.der), "has_private_key": entry.has_private_key}
        for store in stores
        for entry in held.certificates(store)
    ]


def services(state: HostState, names: Iterable[str]) -> list[dict[str, Any]]:
    """Services that exist, as ``Get-Service`` names them; missing ones are left out."""
    installed = state.component(Services)
    found = []
    for name in names:
        service = installed.get(name)
        if service is not None:
            found.append({"name": name, "status": service.status, "start_type": service.start_type})
    return found


__all__ = ["b64", "certificates", "head", "iso", "now_of", "os_info", "services"]
