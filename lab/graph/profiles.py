"""Intune VPN profiles as Graph JSON, and what a device makes of them.

A profile lives in the tenant as the JSON object Graph returns for it.  Two kinds exist:

* ``windows10VpnConfiguration`` (beta): routes, servers and split tunnelling as properties;
* ``windows10CustomConfiguration`` (v1.0 and beta): a VPNv2 ``ProfileXML`` in an OMA-URI setting.
  Intune stores OMA string values as secrets: a read shows ``****``, ``isEncrypted: true`` and a
  ``secretReferenceValueId`` that ``getOmaSettingPlainTextValue`` turns back into the text.

The device side parses ProfileXML the way the VPNv2 CSP does (routes, servers, routing policy),
with the standard library: the lab does not share this parser with the product, so a test that
both agree on a profile means something.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from lab.graph.config import CustomVpnProfile, NativeVpnProfile
from lab.graph.devices import DeliveredProfile

NATIVE_TYPE = "#microsoft.graph.windows10VpnConfiguration"
CUSTOM_TYPE = "#microsoft.graph.windows10CustomConfiguration"
OMA_STRING_TYPE = "#microsoft.graph.omaSettingString"
MASK = "****"
_VPNV2_URI = re.compile(r"\./(?:Device|User)/Vendor/MSFT/VPNv2/([^/]+)/ProfileXML", re.IGNORECASE)
_BASE_FIELDS = (
    "@odata.type", "id", "displayName", "description", "version", "createdDateTime",
    "lastModifiedDateTime", "roleScopeTagIds",
)  # fmt: skip
_CREATED = "2024-03-01T09:00:00Z"


class ProfileError(ValueError):
    """A PATCH body or a ProfileXML that Intune would refuse (400 BadRequest)."""


def now_text() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def native_json(profile: NativeVpnProfile) -> dict[str, Any]:
    return {
        "@odata.type": NATIVE_TYPE,
        "id": profile.id,
        "displayName": profile.display_name,
        "description": "",
        "version": 1,
        "createdDateTime": _CREATED,
        "lastModifiedDateTime": _CREATED,
        "roleScopeTagIds": ["0"],
        "connectionName": profile.connection_name,
        "connectionType": profile.connection_type,
        "profileTarget": profile.profile_target,
        "servers": [
            {"address": s.address, "description": s.description, "isDefaultServer": s.is_default_server}
            for s in profile.servers
        ],
        "routes": [
            {"destinationPrefix": r.destination_prefix, "prefixSize": r.prefix_size} for r in profile.routes
        ],
        "enableSplitTunneling": profile.enable_split_tunneling,
        "enableAlwaysOn": profile.enable_always_on,
        "enableDeviceTunnel": profile.enable_device_tunnel,
        "dnsSuffixes": list(profile.dns_suffixes),
        "trafficRules": [],
    }


class SecretStore:
    """OMA string values Intune keeps encrypted, by ``secretReferenceValueId``."""

    def __init__(self, tenant_id: str) -> None:
        self._values: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._tenant = tenant_id

    def put(self, value: str) -> str:
        reference = f"{self._tenant[:8]}-secret-{next(self._ids):06d}"
        self._values[reference] = value
        return reference

    def get(self, reference: str) -> str | None:
        return self._values.get(reference)


def custom_json(profile: CustomVpnProfile, secrets: SecretStore) -> dict[str, Any]:
    return {
        "@odata.type": CUSTOM_TYPE,
        "id": profile.id,
        "displayName": profile.display_name,
        "description": "",
        "version": 1,
        "createdDateTime": _CREATED,
        "lastModifiedDateTime": _CREATED,
        "roleScopeTagIds": ["0"],
        "omaSettings": [_stored_setting(_setting(profile.oma_uri, profile.profile_xml), secrets)],
    }


def _setting(oma_uri: str, value: str) -> dict[str, Any]:
    return {"@odata.type": OMA_STRING_TYPE, "displayName": "ProfileXML", "omaUri": oma_uri, "value": value}


def _stored_setting(setting: Mapping[str, Any], secrets: SecretStore) -> dict[str, Any]:
    """An OMA setting as Intune stores it: string values become secret references."""
    stored = dict(setting)
    if stored.get("@odata.type") == OMA_STRING_TYPE:
        stored["secretReferenceValueId"] = secrets.put(str(stored.get("value", "")))
        stored["isEncrypted"] = True
    return stored


def masked(profile: Mapping[str, Any], *, beta: bool) -> dict[str, Any]:
    """The profile as a GET shows it: OMA secrets masked; VPN properties only on beta."""
    if profile["@odata.type"] == NATIVE_TYPE and not beta:
        # v1.0 has no windows10VpnConfiguration type: only the base deviceConfiguration shows.
        return {key: profile[key] for key in _BASE_FIELDS if key in profile}
    shown = dict(profile)
    if "omaSettings" in shown:
        shown["omaSettings"] = [
            {**setting, "value": MASK} if setting.get("isEncrypted") else dict(setting)
            for setting in shown["omaSettings"]
        ]
    return shown


def plain_value(profile: Mapping[str, Any], reference: str, secrets: SecretStore) -> str | None:
    """``getOmaSettingPlainTextValue``: the text behind a reference of this profile, or None."""
    references = {s.get("secretReferenceValueId") for s in profile.get("omaSettings", [])}
    return secrets.get(reference) if reference in references else None


# --- PATCH ---------------------------------------------------------------------------------------

_NATIVE_PATCHABLE = {
    "displayName", "description", "connectionName", "servers", "routes", "enableSplitTunneling",
    "enableAlwaysOn", "enableDeviceTunnel", "dnsSuffixes", "trafficRules", "roleScopeTagIds",
}  # fmt: skip
_CUSTOM_PATCHABLE = {"displayName", "description", "omaSettings", "roleScopeTagIds"}


def apply_patch(
    profile: dict[str, Any], body: Mapping[str, Any], secrets: SecretStore, *, beta: bool
) -> None:
    """Apply a PATCH in place (collections are replaced, not merged) and bump ``version``."""
    kind = profile["@odata.type"]
    if body.get("@odata.type") != kind:
        raise ProfileError(f"@odata.type must be {kind!r} for this profile")
    if kind == NATIVE_TYPE and not beta:
        raise ProfileError("Cannot find type microsoft.graph.windows10VpnConfiguration in v1.0")
    allowed = _NATIVE_PATCHABLE if kind == NATIVE_TYPE else _CUSTOM_PATCHABLE
    changes = {key: value for key, value in body.items() if key != "@odata.type"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ProfileError(f"Property '{unknown[0]}' does not exist on type '{kind[1:]}' or is read-only")
    if "routes" in changes:
        _check_routes(changes["routes"])
    if "omaSettings" in changes:
        changes["omaSettings"] = [_checked_setting(setting, secrets) for setting in changes["omaSettings"]]
    profile.update(changes)
    profile["version"] += 1
    profile["lastModifiedDateTime"] = now_text()


def _check_routes(routes: object) -> None:
    if not isinstance(routes, list) or len(routes) > 1000:
        raise ProfileError("routes must be a collection of at most 1000 vpnRoute")
    for route in routes:
        size = route.get("prefixSize") if isinstance(route, dict) else None
        if not isinstance(route, dict) or not isinstance(route.get("destinationPrefix"), str):
            raise ProfileError("a vpnRoute needs destinationPrefix and prefixSize")
        if not isinstance(size, int) or not 1 <= size <= 32:
            raise ProfileError("vpnRoute.prefixSize must be between 1 and 32")


def _checked_setting(setting: object, secrets: SecretStore) -> dict[str, Any]:
    if not isinstance(setting, dict) or not isinstance(setting.get("omaUri"), str):
        raise ProfileError("an omaSetting needs @odata.type and omaUri")
    if setting.get("@odata.type") == OMA_STRING_TYPE and _VPNV2_URI.fullmatch(setting["omaUri"]):
        parse_profile_xml(str(setting.get("value", "")))  # Intune accepts it; the CSP would not
    return _stored_setting(setting, secrets)


# --- the device's view -----------------------------------------------------------------------------


def delivered(profile: Mapping[str, Any], secrets: SecretStore) -> list[DeliveredProfile]:
    """What a device installs from this profile on check-in."""
    if profile["@odata.type"] == NATIVE_TYPE:
        return [
            DeliveredProfile(
                name=profile["connectionName"],
                profile_id=profile["id"],
                version=profile["version"],
                source="native",
                servers=tuple(server["address"] for server in profile["servers"]),
                routes=tuple((r["destinationPrefix"], r["prefixSize"]) for r in profile["routes"]),
                split_tunnel=profile["enableSplitTunneling"],
            )
        ]
    return [
        _from_profile_xml(unquote(match.group(1)), profile, secrets.get(setting["secretReferenceValueId"]))
        for setting in profile["omaSettings"]
        if (match := _VPNV2_URI.fullmatch(setting["omaUri"])) and setting.get("secretReferenceValueId")
    ]


def _from_profile_xml(name: str, profile: Mapping[str, Any], xml: str | None) -> DeliveredProfile:
    servers, routes, split = parse_profile_xml(xml or "")
    return DeliveredProfile(
        name=name,
        profile_id=profile["id"],
        version=profile["version"],
        source="custom",
        servers=servers,
        routes=routes,
        split_tunnel=split,
        profile_xml=xml,
    )


def parse_profile_xml(xml: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...], bool]:
    """(servers, routes, split tunnel) of a VPNv2 ProfileXML; ProfileError if the CSP would refuse it."""
    if "<!DOCTYPE" in xml.upper():
        raise ProfileError("ProfileXML must not contain a DOCTYPE")
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 (no DOCTYPE, so no entity expansion)
    except ElementTree.ParseError as exc:
        raise ProfileError(f"ProfileXML is not well-formed: {exc}") from None
    if root.tag != "VPNProfile":
        raise ProfileError("ProfileXML root element must be VPNProfile")
    servers_text = root.findtext("NativeProfile/Servers") or ""
    servers = tuple(part.strip() for part in re.split(r"[;,]", servers_text) if part.strip())
    routes = []
    for route in root.findall("Route"):
        address, size = route.findtext("Address"), route.findtext("PrefixSize")
        if not address or not size or not size.strip().isdigit():
            raise ProfileError("a Route needs Address and a numeric PrefixSize")
        routes.append((address.strip(), int(size)))
    split = (root.findtext("NativeProfile/RoutingPolicyType") or "").strip() == "SplitTunnel"
    return servers, tuple(routes), split


__all__ = [
    "CUSTOM_TYPE",
    "MASK",
    "NATIVE_TYPE",
    "OMA_STRING_TYPE",
    "ProfileError",
    "SecretStore",
    "apply_patch",
    "custom_json",
    "delivered",
    "masked",
    "native_json",
    "parse_profile_xml",
    "plain_value",
]
