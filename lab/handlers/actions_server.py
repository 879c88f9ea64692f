"""RRAS and CA action scripts: the accepted root set, a service restarted, a CRL published.

Each handler changes the simulated state the way its script's cmdlets change Windows
(:mod:`lab.windows.rras`, :mod:`lab.windows.services`, :mod:`lab.windows.certsvc`), prints the
script's one JSON document (``orchestrator/scripts/action_schemas.py``), and logs every real change
exactly once with ``call.record_change`` (never a no-op).  Failures are the scripts' terminating
errors, raised before anything changes: an unknown thumbprint, an unknown service, no CA role.

* ``rras.set-root-cert``: ``Set-VpnAuthProtocol`` stores the root (``configured``); IKEv2 keeps the
  one in ``effective`` until RemoteAccess restarts.  RRAS keeps the root by its name, so with two
  roots of one subject in ``Root`` the first one in the store wins and the read-back fails (the
  ``duplicate_root`` reason of RRAS-AUTH-01).
* ``rras.restart-service``: ``Restart-Service``; for RemoteAccess this is
  :func:`~lab.windows.rras.restart_remote_access` (``effective`` catches up with ``configured``,
  every session up on the node drops, counted by the estate's tunnels).
* ``ca.publish-crl``: ``certutil -crl`` is :meth:`CertificationAuthority.publish`: a fresh base and
  delta in CertEnroll and, through the copy to the distribution point, at the CDP the estate's CRL
  server answers from (:meth:`lab.estate.model.Estate.crl_at`); CertSvc must be running.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

from cryptography import x509

from lab.estate.model import estate_of
from lab.estate.pki import thumbprint
from lab.estate.tunnels import active_connections
from lab.handlers.facts_common import iso, now_of
from lab.psjson import to_json
from lab.scripts import ScriptCall, TerminatingError, not_recognized, script_handler
from lab.windows.certstore import CertificateStores, StoredCertificate
from lab.windows.certsvc import CERTSVC, CertificationAuthority, PublishedCrl
from lab.windows.rras import REMOTE_ACCESS, RrasServer, restart_remote_access
from lab.windows.services import Services

_THUMBPRINT = re.compile(r"[0-9A-F]{40}")
CERT_ENROLL = r"C:\Windows\system32\CertSrv\CertEnroll"


# -- parameters, as PowerShell binds them -----------------------------------------------------------


def _not_before(call: ScriptCall) -> datetime.datetime | None:
    """``[datetime]::Parse($NotBefore, InvariantCulture, AssumeUniversal -bor AdjustToUniversal)``."""
    value = call.param("NotBefore")
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise TerminatingError(
            'Exception calling "Parse" with "3" argument(s): '
            '"String was not recognized as a valid DateTime."',
            error_id="FormatException",
            category="NotSpecified",
            exception_type="System.Management.Automation.MethodInvocationException",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


# -- rras.set-root-cert -----------------------------------------------------------------------------


def _thumbprint_of(der: bytes | None) -> str | None:
    return None if der is None else thumbprint(x509.load_der_x509_certificate(der))


def _root_kept(stores: CertificateStores, wanted: StoredCertificate) -> StoredCertificate:
    """The root RRAS ends up with: the first one in ``Root`` with the given root's subject."""
    subject = wanted.certificate.subject
    return next(
        (entry for entry in stores.certificates("Root") if entry.certificate.subject == subject), wanted
    )


def _remote_access_running(call: ScriptCall) -> bool:
    service = call.host.component(Services).get(REMOTE_ACCESS)
    return service is not None and service.status == "Running"


_TICK = datetime.timedelta(microseconds=1)
"""The lab clock counts whole seconds; Windows counts 100 ns ticks.  Events that follow each other
within one second are kept in order by a tick, so "started after the change" means what it does
on Windows."""


def _after_last_start(call: ScriptCall, now: datetime.datetime) -> datetime.datetime:
    """``Get-Date`` right after a change: later than RemoteAccess's last start, which came before."""
    service = call.host.component(Services).get(REMOTE_ACCESS)
    if service is not None and service.started_at is not None and service.started_at >= now:
        return service.started_at + _TICK
    return now


@script_handler("rras.set-root-cert")
def set_root_cert(call: ScriptCall) -> list[object]:
    given = call.mandatory("Thumbprint")
    wanted = re.sub(r"\s", "", given).upper()
    if not _THUMBPRINT.fullmatch(wanted):
        raise TerminatingError(
            f"Thumbprint '{given}' is not a certificate thumbprint (40 hexadecimal digits)."
        )
    stores = call.host.component(CertificateStores)
    entry = stores.find("Root", wanted)
    if entry is None:
        raise TerminatingError(
            f"No certificate with thumbprint {wanted} in Cert:\\LocalMachine\\Root. "
            "Import the root CA certificate first."
        )
    server = call.host.find(RrasServer)
    if server is None:
        raise not_recognized("Get-VpnAuthProtocol")
    before = _thumbprint_of(server.configured.auth.root_certificate_der)
    if before == wanted:
        document: dict[str, Any] = {
            "changed": False,
            "before_thumbprint": before,
            "after_thumbprint": before,
            "pending_restart": None,
            "changed_at": None,
        }
        return [to_json(document)]
    kept = _root_kept(stores, entry)
    if kept.der != server.configured.auth.root_certificate_der:
        call.write_warning(server.set_auth_protocol(root_certificate_der=kept.der))
        call.record_change("VpnAuthProtocol.RootCertificateNameToAccept", before, kept.thumbprint)
    changed_at = _after_last_start(call, now_of(call.host))
    after = _thumbprint_of(server.configured.auth.root_certificate_der)
    if after != wanted:
        raise TerminatingError(
            f"Set-VpnAuthProtocol did not take: RootCertificateNameToAccept reads back {after or 'nothing'}, "
            f"not {wanted}. Check Cert:\\LocalMachine\\Root for several roots with the subject "
            f"'{entry.certificate.subject.rfc4514_string()}'."
        )
    document = {
        "changed": True,
        "before_thumbprint": before,
        "after_thumbprint": after,
        "pending_restart": _remote_access_running(call),
        "changed_at": _precise(changed_at),
    }
    return [to_json(document)]


# -- rras.restart-service ---------------------------------------------------------------------------


def _no_such_service(name: str) -> TerminatingError:
    return TerminatingError(
        f"Cannot find any service with service name '{name}'.",
        error_id="NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
        category="ObjectNotFound",
        exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
        target=name,
    )


def _precise(moment: datetime.datetime) -> str:
    """``ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'")`` (to the microsecond here)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _service_state(status: str, started_at: datetime.datetime | None) -> dict[str, Any]:
    return {"status": status, "started_at": None if started_at is None else _precise(started_at)}


@script_handler("rras.restart-service")
def restart_service(call: ScriptCall) -> list[object]:
    name = call.mandatory("Name")
    not_before = _not_before(call)
    services = call.host.component(Services)
    service = services.get(name)
    if service is None:
        raise _no_such_service(name)
    started_at = service.started_at if service.status == "Running" else None
    current = not_before is not None and started_at is not None and started_at > not_before
    sessions: int | None = None
    if not current:
        now = now_of(call.host)
        if not_before is not None and now <= not_before:
            now = not_before + _TICK  # this restart comes after the change it puts into effect
        before = _service_state(service.status, started_at)
        server = call.host.find(RrasServer)
        after: dict[str, Any]
        if service.name.casefold() == REMOTE_ACCESS.casefold() and server is not None:
            estate = estate_of(call.host)
            # Get-RemoteAccessConnectionStatistics just before the restart
            sessions = len(active_connections(estate, call.host.name, now)) if estate is not None else 0
            applied = server.pending_restart
            restart_remote_access(services, server, now, sessions)
            after = {"sessions_dropped": sessions, "configuration_applied": applied}
        else:
            services.restart(service.name, now)
            after = {}
        started_at = service.started_at
        call.record_change(
            f"Service[{service.name}]", before, {**_service_state(service.status, started_at), **after}
        )
    document = {
        "name": service.name,
        "changed": not current,
        "status": service.status,
        "started_at": None if started_at is None else _precise(started_at),
        "sessions_dropped": sessions,
    }
    return [to_json(document)]


# -- ca.publish-crl ---------------------------------------------------------------------------------


def _issued_by(crl: PublishedCrl, ca: CertificationAuthority) -> bool:
    return x509.load_der_x509_crl(crl.der).issuer == ca.authority.certificate.subject


def _newest(ca: CertificationAuthority, *, delta: bool) -> PublishedCrl | None:
    """The newest base (or delta) CRL in CertEnroll issued under the CA's certificate."""
    found = [crl for crl in ca.cert_enroll.values() if crl.delta == delta and _issued_by(crl, ca)]
    return max(found, key=lambda crl: crl.this_update, default=None)


def _summary(crl: PublishedCrl | None) -> dict[str, Any] | None:
    if crl is None:
        return None
    return {
        "file": crl.file,
        "crl_number": crl.number,
        "this_update": iso(crl.this_update),
        "next_update": iso(crl.next_update),
    }


def publication_targets(entries: tuple[str, ...], base_file: str, delta_file: str | None) -> Iterator[str]:
    """Where ``certutil -crl`` puts the files, as the script reads ``CRLPublicationURLs``.

    Each entry is ``flags:location`` with ``%3%8%9`` for the file name: flags 1 and 64 publish the
    base and the delta there; on an HTTP location, 2 and 4 name it in certificates (clients fetch it).
    """
    for entry in entries:
        flags_text, _, location = entry.partition(":")
        if not location or not flags_text.isdigit():
            continue
        flags = int(flags_text)
        is_url = re.match(r"(?i)https?://", location) is not None
        for file, publish_flag, url_flag in ((base_file, 1, 2), (delta_file, 64, 4)):
            if not file:
                continue
            stem = file.removesuffix(".crl")
            if is_url and flags & url_flag:
                yield location.replace("%3%8%9", stem.replace(" ", "%20"))
            elif not is_url and flags & publish_flag:
                yield location.replace("%3%8%9", stem)


def _certutil_failed() -> TerminatingError:
    return TerminatingError(
        "certutil -crl failed (exit code -2147023174): CertUtil: -CRL command FAILED: 0x800706ba "
        "(WIN32: 1722 RPC_S_SERVER_UNAVAILABLE) CertUtil: The RPC server is unavailable."
    )


@script_handler("ca.publish-crl")
def publish_crl(call: ScriptCall) -> list[object]:
    not_before = _not_before(call)
    ca = call.host.find(CertificationAuthority)
    if ca is None:
        raise TerminatingError(
            "No certification authority is installed on this host "
            "(CertSvc\\Configuration\\Active is not set)."
        )
    now = now_of(call.host)
    estate = estate_of(call.host)
    if estate is not None:  # the CA's own timer runs whether anyone looks or not
        estate.refresh_crls()
    else:
        ca.refresh(now)
    previous = _newest(ca, delta=False)
    current = not_before is not None and previous is not None and previous.this_update >= not_before
    published_to: list[str] = []
    if not current:
        certsvc = call.host.component(Services).get(CERTSVC)
        if certsvc is None or certsvc.status != "Running":
            raise _certutil_failed()
        ca.publish(now)
    base, delta = _newest(ca, delta=False), _newest(ca, delta=True)
    if base is None:
        raise TerminatingError(
            f"No base CRL of {ca.name} in {CERT_ENROLL} after certutil -crl: check the local entry of "
            "CRLPublicationURLs."
        )
    if not current:
        fresh_delta = delta.file if delta is not None and delta.this_update >= base.this_update else None
        published_to = list(publication_targets(ca.publication_urls(), base.file, fresh_delta))
        call.record_change(
            f"CRL[{ca.name}]",
            _summary(previous),
            {"base": _summary(base), "delta": _summary(delta), "published_to": published_to},
        )
    document = {
        "changed": not current,
        "previous_base": _summary(previous),
        "base": _summary(base),
        "delta": _summary(delta),
        "published_to": published_to,
    }
    return [to_json(document)]


__all__ = ["publication_targets", "publish_crl", "restart_service", "set_root_cert"]
