"""Endpoint action scripts: a VPN route replaced, CA certificates imported and removed, autoenrollment.

Each handler changes the simulated state the way the cmdlets of its script change Windows, prints
the script's one JSON document (``orchestrator/scripts/action_schemas.py``), and logs every real
change once with ``call.record_change`` (never a no-op).  Bad input fails as the script fails on
Windows: a terminating error, nothing changed.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
from collections.abc import Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from lab.estate.enrollment import EnrollmentError, autoenroll
from lab.estate.model import estate_of
from lab.estate.pki import CLIENT_AUTH, der, ekus, load_der, subject_names, thumbprint
from lab.handlers.facts_common import b64, iso, now_of
from lab.psjson import to_json
from lab.scripts import ScriptCall, TerminatingError, script_handler
from lab.state import HostState
from lab.windows.certstore import CertificateStores, StoredCertificate, StoreName
from lab.windows.vpnclient import VpnClient, VpnProfile, VpnRoute

CA_STORES: dict[str, StoreName] = {"root": "Root", "ca": "CA"}
CLOCK_SKEW = datetime.timedelta(minutes=10)
"""AD CS backdates NotBefore by this much; the script allows it when it looks for a new certificate."""

_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "S",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.EMAIL_ADDRESS: "E",
}


# -- parameters, as PowerShell binds them ---------------------------------------------------------


def _optional_text(call: ScriptCall, name: str) -> str:
    """A mandatory ``[AllowEmptyString()] [string]`` parameter: given, possibly empty."""
    value = call.param(name)
    return "" if value is None else str(value)


def _flag(call: ScriptCall, name: str, default: bool) -> bool:
    value = call.param(name)
    return default if value is None else bool(value)


def _store(call: ScriptCall) -> StoreName:
    """``[ValidateSet('Root', 'CA')]``: matched without case, reported as Windows names the store."""
    given = call.mandatory("Store")
    store = CA_STORES.get(given.casefold())
    if store is not None:
        return store
    raise TerminatingError(
        f"Cannot validate argument on parameter 'Store'. The argument \"{given}\" does not belong to the set "
        '"Root,CA" specified by the ValidateSet attribute. Supply an argument that is in the set and then '
        "try the command again.",
        error_id=f"ParameterArgumentValidationError,{call.script_id}",
        category="InvalidData",
        exception_type="System.Management.Automation.ParameterBindingValidationException",
    )


def windows_subject(name: x509.Name) -> str:
    """``X509Certificate2.Subject``: most specific part first, ``", "`` between parts."""
    parts = []
    for rdn in reversed(name.rdns):
        values = []
        for attribute in rdn:
            key = _SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string)
            value = str(attribute.value)
            if any(char in value for char in ',+="\n<>#;'):
                value = '"' + value.replace('"', '""') + '"'
            values.append(f"{key}={value}")
        parts.append(" + ".join(values))
    return ", ".join(parts)


# -- endpoint.set-vpn-route -------------------------------------------------------------------------


def _connection_not_found(name: str) -> TerminatingError:
    return TerminatingError(
        f"VPN connection {name} was not found. : The system could not find the phone book entry for this "
        "connection.",
        error_id="VPN 623,Get-VpnConnection",
        category="ObjectNotFound",
        exception_type="Microsoft.Management.Infrastructure.CimException",
        target=name,
    )


def _profile(call: ScriptCall, name: str, all_user: bool) -> tuple[VpnClient, VpnProfile]:
    """The connection the cmdlets see.  Without -AllUserConnection they read the phonebook of the
    account running the script, which over WinRM is the admin's, never the signed-in user's."""
    client = call.host.find(VpnClient)
    profile = client.get(name) if client is not None else None
    if client is None or profile is None or not all_user or profile.scope != "all_users":
        raise _connection_not_found(name)
    return client, profile


def _valid_prefix(prefix: str) -> str:
    """Add-VpnConnectionRoute takes any address/size (host bits included), not text that is no prefix."""
    try:
        ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        raise TerminatingError(
            f"Invalid parameter DestinationPrefix {prefix} : The parameter is incorrect.",
            error_id="HRESULT 0x80070057,Add-VpnConnectionRoute",
            category="InvalidArgument",
            exception_type="Microsoft.Management.Infrastructure.CimException",
            target=prefix,
        ) from None
    return prefix


def _find(routes: list[VpnRoute], prefix: str) -> VpnRoute | None:
    return next((route for route in routes if route.prefix.casefold() == prefix.casefold()), None)


def replaced_routes(routes: tuple[VpnRoute, ...], old: str, new: str) -> list[VpnRoute]:
    """NewPrefix present (added last, with the old route's metric) and OldPrefix absent; an empty
    prefix is left out of it."""
    result = list(routes)
    old_route = _find(result, old) if old else None
    if new and _find(result, new) is None:
        metric = old_route.metric if old_route is not None and old_route.metric is not None else 1
        result.append(VpnRoute(new, metric))
    if old_route is not None:
        result.remove(old_route)
    return result


@script_handler("endpoint.set-vpn-route")
def set_vpn_route(call: ScriptCall) -> list[object]:
    name = call.mandatory("ConnectionName")
    old, new = _optional_text(call, "OldPrefix"), _optional_text(call, "NewPrefix")
    if old.casefold() == new.casefold():
        raise TerminatingError(f"OldPrefix and NewPrefix are both '{old}': there is nothing to replace")
    client, profile = _profile(call, name, _flag(call, "AllUserConnection", default=True))
    routes = replaced_routes(profile.routes, old, _valid_prefix(new) if new else new)
    before = [route.prefix for route in profile.routes]
    after = [route.prefix for route in routes]
    changed = routes != list(profile.routes)
    if changed:
        client.put(profile.with_routes(routes))
        call.record_change(f"VpnConnection[{profile.name}].Routes", before, after)
    return [to_json({"connection": profile.name, "changed": changed, "routes_before": before,
                     "routes_after": after})]  # fmt: skip


# -- endpoint.import-certificate / endpoint.remove-certificate --------------------------------------


def _certificate(text: str) -> tuple[bytes, x509.Certificate]:
    try:
        data = base64.b64decode(text, validate=True)
        return data, load_der(data)
    except (binascii.Error, ValueError) as exc:
        raise TerminatingError(f"CertificateBase64 is not a base64 DER certificate: {exc}") from None


@script_handler("endpoint.import-certificate")
def import_certificate(call: ScriptCall) -> list[object]:
    store = _store(call)
    data, certificate = _certificate(call.mandatory("CertificateBase64"))
    thumb, subject = thumbprint(certificate), windows_subject(certificate.subject)
    changed = call.host.component(CertificateStores).add(store, data)
    if changed:
        call.record_change(f"Cert:\\LocalMachine\\{store}\\{thumb}", None, subject)
    return [to_json({"store": store, "thumbprint": thumb, "subject": subject, "changed": changed})]


def _thumbprint(text: str) -> str:
    normalized = "".join(text.split()).upper()
    if len(normalized) != 40 or any(char not in "0123456789ABCDEF" for char in normalized):
        raise TerminatingError(f"Thumbprint '{text}' is not a certificate thumbprint (40 hexadecimal digits)")
    return normalized


@script_handler("endpoint.remove-certificate")
def remove_certificate(call: ScriptCall) -> list[object]:
    store = _store(call)
    thumb = _thumbprint(call.mandatory("Thumbprint"))
    removed = call.host.component(CertificateStores).remove(store, thumb)
    if removed is not None:
        subject = windows_subject(removed.certificate.subject)
        call.record_change(f"Cert:\\LocalMachine\\{store}\\{thumb}", subject, None)
    return [to_json({"store": store, "thumbprint": thumb, "changed": removed is not None})]


# -- endpoint.cert-pulse -----------------------------------------------------------------------------


def _not_before(text: str) -> datetime.datetime:
    """``[datetime]::TryParse`` with AssumeUniversal: an ISO time, UTC unless it says otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise TerminatingError(
            f"NotBefore '{text}' is not a time (ISO 8601, e.g. 2026-03-01T02:00:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def fit_since(
    entry: StoredCertificate, fqdn: str, earliest: datetime.datetime, now: datetime.datetime
) -> bool:
    """Fit for the device tunnel, and issued at or after ``earliest`` (the script's test)."""
    certificate = entry.certificate
    return (
        entry.has_private_key
        and now < certificate.not_valid_after_utc
        and certificate.not_valid_before_utc >= earliest
        and CLIENT_AUTH in ekus(certificate)
        and fqdn.lower() in subject_names(certificate)
    )


def newest_fit(
    state: HostState, earliest: datetime.datetime, now: datetime.datetime
) -> x509.Certificate | None:
    """The newest certificate of ``My`` the script accepts, or None."""
    found = [
        entry.certificate
        for entry in state.component(CertificateStores).certificates("My")
        if fit_since(entry, state.fqdn, earliest, now)
    ]
    return max(found, key=lambda cert: cert.not_valid_before_utc, default=None)


def _described(certificate: x509.Certificate) -> Mapping[str, object]:
    return {
        "thumbprint": thumbprint(certificate),
        "subject": windows_subject(certificate.subject),
        "not_after": iso(certificate.not_valid_after_utc),
        "der": b64(der(certificate)),
    }


def _pulse(call: ScriptCall, now: datetime.datetime) -> x509.Certificate:
    """The machine task enrolls at once in the lab; failing to reach a CA fails the script."""
    estate = estate_of(call.host)
    try:
        if estate is None:
            raise EnrollmentError("no enterprise CA could be reached (the host is not in an estate)")
        enrollment = autoenroll(estate, call.host, now)
    except EnrollmentError as exc:
        raise TerminatingError(
            str(exc), error_id="CertEnrollFailed", category="ResourceUnavailable"
        ) from None
    call.record_change(
        "Cert:\\LocalMachine\\My (autoenrollment)",
        [entry.thumbprint for entry in enrollment.archived],
        [enrollment.thumbprint],
    )
    return enrollment.certificate


@script_handler("endpoint.cert-pulse")
def cert_pulse(call: ScriptCall) -> list[object]:
    earliest = _not_before(call.mandatory("NotBefore")) - CLOCK_SKEW
    now = now_of(call.host)
    found = newest_fit(call.host, earliest, now)
    triggered = found is None
    if found is None:
        found = _pulse(call, now)
    return [to_json({"triggered": triggered, "certificate": _described(found), "changed": triggered})]


__all__ = [
    "cert_pulse",
    "fit_since",
    "import_certificate",
    "newest_fit",
    "remove_certificate",
    "replaced_routes",
    "set_vpn_route",
    "windows_subject",
]
