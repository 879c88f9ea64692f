"""The probe documents: docs/facts.md examples validate, strictness, the fleet's invariants."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.facts import CaFacts, CrlFetch, EndpointFacts, FleetFacts, HostFacts, RrasFacts
from orchestrator.facts.tenant import custom_profile_facts, native_profile_facts
from orchestrator.inventory.models import Role
from orchestrator.scripts import CATALOG, FACT_PROBES, ParamType
from orchestrator.transport.graph.intune import Assignment, DeviceStatus, NativeVpnProfile

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "facts.md").read_text(encoding="utf-8")
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", DOC, re.DOTALL)]


def example(kind: type[Any]) -> dict[str, Any]:
    keys = set(kind.model_fields)
    found = next(doc for doc in EXAMPLES if set(doc) == keys)
    return copy.deepcopy(found)


@pytest.mark.parametrize("kind", [EndpointFacts, RrasFacts, CaFacts])
def test_documented_examples_validate(kind: type[Any]) -> None:
    document = example(kind)
    assert kind.model_validate_json(json.dumps(document)).schema_version == 1


def test_windows_powershell_escapes_are_read() -> None:
    # 5.1's ConvertTo-Json writes <, >, & and ' as \u003c-style escapes.
    document = example(EndpointFacts)
    text = json.dumps(document).replace(
        '"<VPNProfile>...</VPNProfile>"', '"\\u003cVPNProfile\\u003e\\u0026\\u0027"'
    )
    facts = EndpointFacts.model_validate_json(text)
    assert facts.mdm_vpn_profiles is not None
    assert facts.mdm_vpn_profiles[0].profile_xml == "<VPNProfile>&'"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("os", "build"), "22000"),  # a number printed as text
        (("collected_at",), "2025-03-14T08:00:00"),  # no time zone
        (("collected_at",), "/Date(1741939200000)/"),  # 5.1's date form
        (("schema_version",), 2),
        (("certificates",), {"store": "My", "der": "MIIB", "has_private_key": True}),  # an unrolled array
        (("part_of_domain",), "True"),
    ],
)
def test_strict_documents(path: tuple[str, ...], value: Any) -> None:
    document = example(EndpointFacts)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        EndpointFacts.model_validate_json(json.dumps(document))


def test_unknown_and_missing_keys_are_errors() -> None:
    document = example(RrasFacts)
    with pytest.raises(ValidationError):
        RrasFacts.model_validate_json(json.dumps({**document, "extra": 1}))
    del document["registry"]
    with pytest.raises(ValidationError):
        RrasFacts.model_validate_json(json.dumps(document))


def test_a_failed_section_is_null_with_an_error() -> None:
    document = {
        **example(CaFacts),
        "crls": None,
        "errors": [{"section": "crls", "message": "Access is denied"}],
    }
    facts = CaFacts.model_validate_json(json.dumps(document))
    assert facts.crls is None
    assert facts.failed("crls")
    assert not facts.failed("services")


def test_host_facts_must_match_the_role_and_be_facts_xor_error() -> None:
    endpoint = EndpointFacts.model_validate_json(json.dumps(example(EndpointFacts)))
    HostFacts(name="ws1", role=Role.ENDPOINT, facts=endpoint)
    with pytest.raises(ValidationError):
        HostFacts(name="ws1", role=Role.RRAS, facts=endpoint)
    with pytest.raises(ValidationError):
        HostFacts(name="ws1", role=Role.ENDPOINT)
    with pytest.raises(ValidationError):
        CrlFetch(url="http://x/a.crl")


def test_fleet_facts_round_trip_as_json() -> None:
    data = {
        "hosts": [
            {"name": "ws1", "role": "endpoint", "facts": example(EndpointFacts)},
            {"name": "rras1", "role": "rras", "error": {"kind": "unreachable", "message": "refused"}},
        ],
        "crls": [{"url": "http://pki/a.crl", "error": "HTTP 404"}],
    }
    fleet = FleetFacts.from_json_data(data)
    assert [name for name, _ in fleet.facts_of(EndpointFacts)] == ["ws1"]
    assert FleetFacts.model_validate_json(fleet.model_dump_json()) == fleet


def test_tenant_builders_keep_unparsable_routes() -> None:
    raw = {
        "@odata.type": "#microsoft.graph.windows10VpnConfiguration",
        "id": "p1",
        "displayName": "Split",
        "connectionName": "Contoso",
        "routes": [{"destinationPrefix": "10.0.0.0", "prefixSize": 8}],
    }
    profile = NativeVpnProfile.from_graph(raw)
    raw["routes"] = [{"destinationPrefix": "010.0.0.0", "prefixSize": 8}]  # as Graph may hold it
    facts = native_profile_facts(
        profile, [Assignment("groupAssignmentTarget", "g1")], [DeviceStatus("WS1", "error", None, None)]
    )
    assert facts.routes[0].destination_prefix == "010.0.0.0"
    assert facts.assigned
    assert facts.connection_names() == ("Contoso",)
    assert facts.device_statuses is not None
    assert facts.device_statuses[0].status == "error"
    custom = custom_profile_facts(
        "p2",
        "XML",
        {"./User/Vendor/MSFT/VPNv2/Contoso%20User/ProfileXML": "<VPNProfile/>", "./Device/Other": "x"},
        [],
    )
    assert [(s.scope, s.name) for s in custom.profile_xml] == [("user", "Contoso User")]
    assert not custom.assigned
    assert custom.device_statuses is None


def test_one_probe_per_role_in_the_catalog() -> None:
    assert {role: spec.script_id for role, spec in FACT_PROBES.items()} == {
        Role.ENDPOINT: "endpoint.facts",
        Role.RRAS: "rras.facts",
        Role.CA: "ca.facts",
    }
    assert CATALOG["endpoint.facts"].output is EndpointFacts
    assert [(p.name, p.type) for p in CATALOG["endpoint.facts"].params] == [
        ("EventDays", ParamType.INT),
        ("MaxEvents", ParamType.INT),
    ]
    CATALOG["endpoint.facts"].bind(EventDays=3)


@pytest.mark.parametrize(
    "first", ["orchestrator.facts", "orchestrator.scripts", "orchestrator.facts.endpoint"]
)
def test_either_import_order_works(first: str) -> None:
    code = f"import {first}; import orchestrator.checks; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
