"""``endpoint.facts``: an endpoint's certificates, VPN connections, routes, events (docs/facts.md)."""

from __future__ import annotations

import datetime
from typing import Any

from lab.estate.model import EndpointUser, HostIdentity, estate_of
from lab.estate.tunnels import observe
from lab.handlers.facts_common import certificates, head, iso, now_of
from lab.psjson import to_json
from lab.scripts import ScriptCall, script_handler
from lab.state import HostState
from lab.windows.eventlog import APPLICATION, MDM_ADMIN_LOG, RASCLIENT, EventLog, EventRecord
from lab.windows.mdm import MdmNodeCache
from lab.windows.vpnclient import VpnClient, VpnProfile

RAS_EVENT_IDS = (20225, 20226, 20227)
MESSAGE_LIMIT = 1024


def _connected(state: HostState, now: datetime.datetime) -> dict[str, bool]:
    estate = estate_of(state)
    if estate is None:
        return {}
    return {name.lower(): outcome.connected for name, outcome in observe(estate, state, now).items()}


def _connection(profile: VpnProfile, connected: bool) -> dict[str, Any]:
    policy = profile.ipsec_policy
    return {
        "name": profile.name,
        "guid": profile.guid,
        "all_user_connection": True,
        "server_address": profile.servers[0] if profile.servers else None,
        "tunnel_type": profile.tunnel_type,
        "authentication_method": list(profile.authentication_method),
        "split_tunneling": profile.split_tunneling,
        "connection_status": "Connected" if connected else "Disconnected",
        "dns_suffix": profile.dns_suffix,
        "routes": [{"destination_prefix": r.prefix, "route_metric": r.metric} for r in profile.routes],
        "machine_certificate_eku_filter": list(profile.eku_filter),
        "ipsec_custom_policy": None if policy is None else dict(vars(policy)),
        "profile_type": profile.profile_type,
    }


def _phonebook(client: VpnClient) -> list[dict[str, Any]]:
    return [
        {
            "scope": profile.scope,
            "user": profile.user if profile.scope == "user" else None,
            "name": profile.name,
        }
        for profile in client.profiles.values()
    ]


def _mdm(state: HostState) -> list[dict[str, Any]]:
    return [
        {"scope": node.scope, "sid": node.sid, "name": node.name, "node_uri": node.node_uri,
         "profile_xml": node.profile_xml}
        for node in state.component(MdmNodeCache).all()
    ]  # fmt: skip


def _event(record: EventRecord) -> dict[str, Any]:
    return {
        "event_id": record.event_id,
        "time": iso(record.time),
        "data": list(record.data),
        "message": record.message[:MESSAGE_LIMIT],
    }


def _events(
    state: HostState, log: str, since: datetime.datetime, limit: int, **match: Any
) -> list[dict[str, Any]]:
    records = state.component(EventLog).query(log, since=since, limit=limit, **match)
    return [_event(record) for record in records]


def _routes(client: VpnClient, connected: dict[str, bool]) -> list[dict[str, Any]]:
    return [
        {"destination_prefix": row.prefix, "interface_alias": row.interface_alias,
         "interface_index": row.interface_index, "next_hop": row.next_hop, "route_metric": row.metric,
         "address_family": row.address_family}
        for row in client.routing_table(connected)
    ]  # fmt: skip


def endpoint_facts(state: HostState, event_days: int = 7, max_events: int = 200) -> dict[str, Any]:
    """The ``endpoint.facts`` document of ``state`` (also used by tests without WinRM)."""
    now = now_of(state)
    connected = _connected(state, now)
    identity = state.find(HostIdentity)
    client = state.component(VpnClient)
    user = state.find(EndpointUser)
    since = now - datetime.timedelta(days=event_days)
    return {
        **head(state, now),
        "domain": identity.domain if identity and identity.part_of_domain else None,
        "part_of_domain": bool(identity and identity.part_of_domain),
        "certificates": certificates(state, ("My", "Root", "CA")),
        "vpn_connections": [_connection(p, connected.get(p.name.lower(), False)) for p in client.all_user()],
        "phonebook_entries": _phonebook(client),
        "mdm_vpn_profiles": _mdm(state),
        "routes": _routes(client, connected),
        "ras_events": _events(state, APPLICATION, since, max_events, provider=RASCLIENT, ids=RAS_EVENT_IDS),
        "mdm_events": [
            _event(r)
            for r in state.component(EventLog).query(MDM_ADMIN_LOG, since=since, limit=max_events)
            if "VPNv2" in r.message
        ],
        "rasman": {
            "auto_trigger_disabled_profiles": list(client.auto_trigger_disabled),
            "auto_trigger_profile_entry_name": client.auto_trigger_entry,
            "user_sid": client.auto_trigger_sid if user is not None else None,
        },
        "errors": [],
    }


@script_handler("endpoint.facts")
def facts(call: ScriptCall) -> list[object]:
    days, limit = call.params.get("EventDays"), call.params.get("MaxEvents")
    return [
        to_json(
            endpoint_facts(call.host, 7 if days is None else int(days), 200 if limit is None else int(limit))
        )
    ]


__all__ = ["endpoint_facts", "facts"]
