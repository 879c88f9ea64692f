"""Typed, versioned facts about the fleet: what probes print and what the Graph collector reads.

* :mod:`.common` -- the shared document base (``schema_version``, ``collected_at``, section errors)
* :mod:`.endpoint`, :mod:`.rras`, :mod:`.ca` -- one probe document per host role
* :mod:`.tenant` -- Intune devices and VPN profiles
* :mod:`.fleet` -- :class:`FleetFacts`, the input of the checks

Pure: nothing here touches the network.  The document shapes are specified in docs/facts.md.
"""

# The script catalog gives each probe its fact model, and the fact models derive from the catalog's
# ScriptOutput: initialising the scripts package first makes either import order work.
import orchestrator.scripts  # noqa: F401  # isort: skip

from orchestrator.facts.ca import CaFacts, CrlFile, CrlSchedule
from orchestrator.facts.common import (
    FACTS_SCHEMA_VERSION,
    CertificateEntry,
    FactsDocument,
    OsInfo,
    SectionError,
    ServiceState,
)
from orchestrator.facts.endpoint import (
    ConnectionRoute,
    EndpointFacts,
    EventRecord,
    IpsecPolicy,
    MdmVpnProfile,
    NetRoute,
    PhonebookEntry,
    RasManConfig,
    VpnConnection,
)
from orchestrator.facts.fleet import FACTS_BY_ROLE, CollectionError, CrlFetch, FleetFacts, HostFacts
from orchestrator.facts.rras import Ikev2ServerPolicy, RrasFacts, RrasRegistry, VpnAuthProtocol
from orchestrator.facts.tenant import (
    IntuneDeviceFacts,
    IntuneDeviceStatus,
    IntuneProfileXml,
    IntuneRoute,
    IntuneVpnProfile,
    TenantFacts,
)

__all__ = [
    "FACTS_BY_ROLE",
    "FACTS_SCHEMA_VERSION",
    "CaFacts",
    "CertificateEntry",
    "CollectionError",
    "ConnectionRoute",
    "CrlFetch",
    "CrlFile",
    "CrlSchedule",
    "EndpointFacts",
    "EventRecord",
    "FactsDocument",
    "FleetFacts",
    "HostFacts",
    "Ikev2ServerPolicy",
    "IntuneDeviceFacts",
    "IntuneDeviceStatus",
    "IntuneProfileXml",
    "IntuneRoute",
    "IntuneVpnProfile",
    "IpsecPolicy",
    "MdmVpnProfile",
    "NetRoute",
    "OsInfo",
    "PhonebookEntry",
    "RasManConfig",
    "RrasFacts",
    "RrasRegistry",
    "SectionError",
    "ServiceState",
    "TenantFacts",
    "VpnAuthProtocol",
    "VpnConnection",
]
