"""``rras.facts``: an RRAS server's certificates, ``Get-VpnAuthProtocol``, IKEv2 policy, registry, services.

The cmdlets read RRAS's *stored* configuration, so a ``Set-VpnAuthProtocol`` shows here at once,
restart or not (docs/facts.md; :mod:`lab.windows.rras`).  A host without the RRAS role fails the
RemoteAccess sections the way Windows does: the cmdlets are not there.
"""

from __future__ import annotations

from typing import Any

from lab.handlers.facts_common import b64, certificates, head, now_of, services
from lab.psjson import to_json
from lab.scripts import ScriptCall, script_handler
from lab.state import HostState
from lab.windows.rras import RrasConfig, RrasServer


def _not_recognized(cmdlet: str) -> str:
    return (
        f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again."
    )


def _auth(config: RrasConfig) -> dict[str, Any]:
    auth = config.auth
    return {
        "user_auth_protocol_accepted": list(auth.user_auth_protocols),
        "tunnel_auth_protocols_advertised": auth.tunnel_auth_advertised,
        "root_certificate_der": b64(auth.root_certificate_der),
        "certificate_advertised_der": b64(auth.certificate_advertised_der),
        "certificate_ekus_to_accept": list(auth.certificate_ekus_to_accept),
    }


def _ikev2(config: RrasConfig) -> dict[str, Any]:
    server = config.ikev2
    policy: dict[str, Any] = (
        dict(vars(server.policy)) if server.custom_policy else dict.fromkeys(vars(server.policy))
    )
    return {
        "custom_policy": server.custom_policy,
        **policy,
        "sa_lifetime_seconds": server.sa_lifetime_seconds,
        "mm_sa_lifetime_seconds": server.mm_sa_lifetime_seconds,
        "sa_data_size_kilobytes": server.sa_data_size_kilobytes,
    }


def rras_facts(state: HostState) -> dict[str, Any]:
    """The ``rras.facts`` document of ``state``."""
    server = state.find(RrasServer)
    document: dict[str, Any] = {
        **head(state, now_of(state)),
        "certificates": certificates(state, ("My", "Root", "CA")),
    }
    errors = []
    if server is None:
        for section, cmdlet in (
            ("auth_protocol", "Get-VpnAuthProtocol"),
            ("ikev2_policy", "Get-VpnServerConfiguration"),
            ("sstp_certificate_der", "Get-RemoteAccess"),
        ):
            document[section] = None
            errors.append({"section": section, "message": _not_recognized(cmdlet)})
        document["registry"] = dict.fromkeys(
            (
                "cert_auth_flags",
                "enable_server_fragmentation",
                "ike_num_established_for_initial_query",
                "ipv6_disabled_components",
            )
        )
    else:
        document["auth_protocol"] = _auth(server.configured)
        document["ikev2_policy"] = _ikev2(server.configured)
        document["registry"] = dict(vars(server.configured.registry))
        document["sstp_certificate_der"] = b64(server.sstp_certificate_der)
    document["services"] = services(state, ("RemoteAccess", "IKEEXT"))
    document["errors"] = errors
    return document


@script_handler("rras.facts")
def facts(call: ScriptCall) -> list[object]:
    return [to_json(rras_facts(call.host))]


__all__ = ["facts", "rras_facts"]
