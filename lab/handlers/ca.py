"""``ca.facts``: an issuing CA's certificates, CertEnroll CRLs, CRL schedule and CertSvc (docs/facts.md).

The CA first runs its publication schedule up to now (AD CS publishes on a timer whether anyone
looks or not), so a long-running lab keeps fresh CRLs unless publication is stalled.
"""

from __future__ import annotations

from typing import Any

from lab.estate.model import estate_of
from lab.handlers.facts_common import b64, certificates, head, now_of, services
from lab.psjson import to_json
from lab.scripts import ScriptCall, script_handler
from lab.state import HostState
from lab.windows.certsvc import CertificationAuthority


def _schedule(ca: CertificationAuthority) -> dict[str, Any]:
    schedule = ca.schedule
    return {
        "crl_period_units": schedule.period_units,
        "crl_period": schedule.period,
        "crl_overlap_units": schedule.overlap_units,
        "crl_overlap_period": schedule.overlap_period,
        "crl_delta_period_units": schedule.delta_units,
        "crl_delta_period": schedule.delta_period,
    }


def ca_facts(state: HostState) -> dict[str, Any]:
    """The ``ca.facts`` document of ``state``."""
    now = now_of(state)
    ca = state.find(CertificationAuthority)
    estate = estate_of(state)
    if estate is not None:
        estate.refresh_crls()
    elif ca is not None:
        ca.refresh(now)
    document: dict[str, Any] = {**head(state, now), "ca_name": None if ca is None else ca.name}
    document["ca_certificates"] = None if ca is None else [b64(ca.authority.der)]
    document["certificates"] = certificates(state, ("Root", "CA"))
    document["crls"] = [] if ca is None else [
        {"file": file, "der": b64(crl.der)} for file, crl in sorted(ca.cert_enroll.items())
    ]  # fmt: skip
    document["crl_schedule"] = None if ca is None else _schedule(ca)
    document["publication_urls"] = None if ca is None else list(ca.publication_urls())
    document["services"] = services(state, ("CertSvc",))
    document["errors"] = []
    return document


@script_handler("ca.facts")
def facts(call: ScriptCall) -> list[object]:
    return [to_json(ca_facts(call.host))]


__all__ = ["ca_facts", "facts"]
