"""The I/O-free parts of the lab: PKI, envelopes, faults, script ids, JSON, config, PSRP session."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import uuid
from pathlib import Path

import psrpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError
from pypsrp.wsman import WSMan

from lab import FaultSpec, Flap, FleetConfig, HostConfig, numbered_fleet
from lab.pki import LabCA
from lab.psjson import to_json
from lab.psrp import PoolSession, pipeline_id_of
from lab.scripts import ScriptRegistry, command_term, default_registry, parse_script_id
from lab.server import HostRuntime
from lab.state import HostState
from lab.wsman import faults
from lab.wsman.envelope import parse_duration, parse_request, render_fault, render_response
from lab.wsman.service import HostService

# -- PKI -----------------------------------------------------------------------------------------


def test_pki_is_deterministic_from_the_seed() -> None:
    one, two, other = LabCA("seed-a"), LabCA("seed-a"), LabCA("seed-b")
    assert one.pem == two.pem
    assert one.pem != other.pem
    cert_one, key_one = one.server_certificate("EP-1", ["ep-1.lab.test", "localhost"], ["127.0.0.1"])
    cert_two, key_two = two.server_certificate("EP-1", ["ep-1.lab.test", "localhost"], ["127.0.0.1"])
    assert cert_one.public_bytes(serialization.Encoding.DER) == cert_two.public_bytes(
        serialization.Encoding.DER
    )
    assert key_one == key_two


def test_server_certificate_names_and_chain(tmp_path: Path) -> None:
    ca = LabCA("seed")
    identity = ca.write_server_identity(tmp_path, "EP-7", "ep-7.lab.fleetfix.test", "127.0.0.9")
    san = identity.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"ep-7.lab.fleetfix.test", "ep-7", "localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "127.0.0.9"}
    identity.certificate.verify_directly_issued_by(ca.certificate)
    # The chain file loads as a TLS server identity.
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(identity.chain_path)
    assert identity.chain_path.stat().st_mode & 0o077 == 0


# -- envelopes and faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT20S", 20.0), ("PT60.000S", 60.0), ("PT1M30S", 90.0), ("P1DT1H", 90000.0), ("PT0.5S", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["PT-1S", "P", "PT", "20", "PTS", "PT1.S"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r".*"):
        parse_duration(text)


REQUEST = b"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
<s:Header><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action>
<wsa:MessageID>uuid:1</wsa:MessageID><wsman:OperationTimeout>TIMEOUT</wsman:OperationTimeout>
<wsman:MaxEnvelopeSize>512000</wsman:MaxEnvelopeSize>
<wsman:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell</wsman:ResourceURI>
<wsman:SelectorSet><wsman:Selector Name="ShellId">ABC</wsman:Selector></wsman:SelectorSet>
<wsman:OptionSet><wsman:Option Name="protocolversion">2.3</wsman:Option></wsman:OptionSet>
</s:Header><s:Body/></s:Envelope>"""


def test_parse_request() -> None:
    request = parse_request(REQUEST.replace(b"TIMEOUT", b"PT20S"))
    assert request.action.endswith("/transfer/Get")
    assert request.message_id == "uuid:1"
    assert request.operation_timeout_s == 20.0
    assert request.max_envelope_size == 512000
    assert request.selectors == {"ShellId": "ABC"}
    assert request.options == {"protocolversion": "2.3"}


def test_invalid_timeout_header_is_the_windows_fault() -> None:
    with pytest.raises(faults.WSManFault) as caught:
        parse_request(REQUEST.replace(b"TIMEOUT", b"PT-1S"))
    assert caught.value.code == faults.ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER
    assert "invalid timeout field in the SOAP header: PT-1S" in caught.value.message


def test_not_xml_is_a_fault() -> None:
    with pytest.raises(faults.WSManFault) as caught:
        parse_request(b"<nope")
    assert caught.value.code == faults.ERROR_WSMAN_INVALID_XML


def test_rendered_fault_is_what_pypsrp_parses() -> None:
    xml = render_fault(faults.quota_max_shells(5), "uuid:1", "ep-1.lab.test")
    error = WSMan._parse_wsman_fault(xml.decode())
    assert error.code == faults.ERROR_WSMAN_QUOTA_MAX_SHELLS
    assert error.machine == "ep-1.lab.test"
    assert "maximum number of 5 concurrent shells" in error.reason


def test_response_escapes_text() -> None:
    xml = render_response("urn:action", "uuid:<&>", "")
    assert b"<a:RelatesTo>uuid:&lt;&amp;&gt;</a:RelatesTo>" in xml


# -- scripts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "script_id"),
    [
        ("# fleetfix-script: diag.echo\nparam()", "diag.echo"),
        ("# fleetfix-script: endpoint.os-info\r\nparam()", "endpoint.os-info"),
        ("# fleetfix-script: a.b.c", "a.b.c"),
        ("# fleetfix-script: diag\nparam()", None),  # one word is not a dotted id
        ("# fleetfix-script: Diag.Echo\n", None),
        ("# fleetfix-script: diag.echo \n", None),
        ("#fleetfix-script: diag.echo\n", None),
        ("\ufeff# fleetfix-script: diag.echo\n", None),
        ("\n# fleetfix-script: diag.echo\n", None),
        ("# fleetfix-script: diag..echo\n", None),
        ("# fleetfix-script: diag.-echo\n", None),
        ("# fleetfix-script: diag.echo; Remove-Item C:\\\n", None),
    ],
)
def test_script_id_header(text: str, script_id: str | None) -> None:
    assert parse_script_id(text) == script_id


def test_command_terms() -> None:
    assert command_term("Get-Service", is_script=False) == "Get-Service"
    assert command_term("# comment\n\n  Get-Item -Path x | Out-Null", is_script=True) == "Get-Item"
    assert command_term("# fleetfix-script: nope.nope\n", is_script=True) == "nope.nope"


def test_registry_rejects_bad_and_duplicate_ids() -> None:
    registry = ScriptRegistry()
    with pytest.raises(ValueError, match="invalid script id"):
        registry.script("Not.Valid")
    registry.script("x.y")(lambda call: None)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.script("x.y")(lambda call: None)


# -- PowerShell 5.1 JSON ---------------------------------------------------------------------------


def test_to_json_escapes_like_windows_powershell() -> None:
    text = to_json(
        {"value": "<a href='x'>&</a>\n\t\x01\"\\ü", "length": 3, "ok": True, "none": None, "l": [1]}
    )
    assert text == (
        '{"value":"\\u003ca href=\\u0027x\\u0027\\u003e\\u0026\\u003c/a\\u003e\\n\\t\\u0001\\"\\\\ü",'
        '"length":3,"ok":true,"none":null,"l":[1]}'
    )
    assert json.loads(text)["value"] == "<a href='x'>&</a>\n\t\x01\"\\ü"


# -- configuration ---------------------------------------------------------------------------------


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        HostConfig(name="EP-1", address="10.0.0.1")
    with pytest.raises(ValidationError, match="needs an http_port"):
        HostConfig(name="EP-1", http_port=None, https_port=None)
    with pytest.raises(ValidationError, match="role"):
        HostConfig(name="EP-1", role="printer")
    with pytest.raises(ValidationError, match="down_s"):
        Flap(period_s=1, down_s=2)
    with pytest.raises(ValidationError, match="duplicate"):
        FleetConfig(hosts=(HostConfig(name="EP-1"), HostConfig(name="ep-1")))


def test_fleet_round_trips_as_json() -> None:
    fleet = numbered_fleet(3, template=HostConfig(name="T", faults=FaultSpec(slow_command_s=1)))
    assert [h.name for h in fleet.hosts] == ["EP-0001", "EP-0002", "EP-0003"]
    assert FleetConfig.model_validate_json(fleet.model_dump_json()) == fleet


# -- PSRP session without a network ----------------------------------------------------------------


def test_pool_session_opens_and_runs_against_psrpcore_client() -> None:
    """psrpcore's client and the lab's PoolSession, wired in memory."""
    client = psrpcore.ClientRunspacePool()
    client.open()
    session = PoolSession("5.1.17763.1")
    opening = client.data_to_send()
    assert opening is not None
    session.feed(opening.data)
    fragments = session.take(None, lambda taken, nxt: True)
    client.receive_data(psrpcore.PSRPPayload(b"".join(fragments), psrpcore.StreamType.default, None))
    while client.next_event() is not None:
        pass
    assert client.state == psrpcore.types.RunspacePoolState.Opened

    pipeline = psrpcore.ClientPowerShell(client)
    pipeline.add_script("# fleetfix-script: diag.echo\nparam()").add_parameter("Value", "x")
    pipeline.start()
    first = client.data_to_send()
    assert first is not None
    run = session.add_pipeline("CMD-1", first.data)
    assert run.pipe.pipeline_id == pipeline_id_of(first.data) == pipeline.pipeline_id
    ready = session.feed(first.data)
    assert ready == [run]
    assert [c.command_text for c in run.statements[0]] == ["# fleetfix-script: diag.echo\nparam()"]
    assert run.statements[0][0].parameters == [("Value", "x")]


def test_pipeline_id_needs_a_start_fragment() -> None:
    with pytest.raises(ValueError, match="start fragment"):
        pipeline_id_of(b"\x00" * 80)


# -- the shell service without a network ------------------------------------------------------------


def envelope(action: str, body: str, shell_id: str | None = None, timeout: str = "PT1S") -> bytes:
    selector = (
        f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        if shell_id
        else ""
    )
    resource = (
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
        if action.endswith("/Get")
        else "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
    )
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<w:ResourceURI>{resource}</w:ResourceURI><w:OperationTimeout>{timeout}</w:OperationTimeout>{selector}"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def test_host_service_shell_lifecycle_and_idle_reaping() -> None:
    client = psrpcore.ClientRunspacePool()
    client.open()
    opening = client.data_to_send()
    assert opening is not None
    creation = base64.b64encode(opening.data).decode()
    service = HostService(
        HostConfig(name="EP-1"), HostState.from_config(HostConfig(name="EP-1")), default_registry()
    )
    shell_id = "11111111-2222-3333-4444-555555555555"
    transfer, shell = (
        "http://schemas.xmlsoap.org/ws/2004/09/transfer",
        "http://schemas.microsoft.com/wbem/wsman/1",
    )

    async def scenario() -> None:
        create = (
            f'<rsp:Shell ShellId="{shell_id}"><rsp:InputStreams>stdin pr</rsp:InputStreams>'
            "<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:IdleTimeOut>PT30S</rsp:IdleTimeOut>"
            f'<creationXml xmlns="http://schemas.microsoft.com/powershell">{creation}</creationXml></rsp:Shell>'
        )
        reply = await service.handle(
            parse_request(envelope(f"{transfer}/Create", create)), "fleetfix", "127.0.0.1"
        )
        assert reply.action.endswith("CreateResponse")
        assert "<rsp:IdleTimeOut>PT30S</rsp:IdleTimeOut>" in reply.body
        receive = "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>"
        reply = await service.handle(
            parse_request(envelope(f"{shell}/windows/shell/Receive", receive, shell_id)),
            "fleetfix",
            "127.0.0.1",
        )
        assert reply.body.count("<rsp:Stream") >= 1
        # Nothing more to send: the long-poll ends with the w:TimedOut fault pypsrp re-polls on.
        with pytest.raises(faults.WSManFault) as caught:
            await service.handle(
                parse_request(envelope(f"{shell}/windows/shell/Receive", receive, shell_id, "PT0.1S")),
                "fleetfix",
                "127.0.0.1",
            )
        assert caught.value.code == faults.ERROR_WSMAN_OPERATION_TIMEDOUT
        get = parse_request(envelope(f"{transfer}/Get", "", shell_id))
        assert "<rsp:State>Connected</rsp:State>" in (await service.handle(get, "fleetfix", "127.0.0.1")).body
        assert service.reap_idle_shells(now=time.monotonic() + 10) == 0
        assert service.reap_idle_shells(now=time.monotonic() + 31) == 1
        with pytest.raises(faults.WSManFault) as caught:
            await service.handle(get, "fleetfix", "127.0.0.1")
        assert caught.value.code == faults.ERROR_WSMAN_UNEXPECTED_SELECTORS
        assert service.stats["Get"] == 2
        assert service.stats[f"fault:{faults.ERROR_WSMAN_OPERATION_TIMEDOUT}"] == 1

    asyncio.run(scenario())


def test_unsupported_action_fault() -> None:
    service = HostService(
        HostConfig(name="EP-1"), HostState.from_config(HostConfig(name="EP-1")), default_registry()
    )
    request = parse_request(
        envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect", "")
    )
    with pytest.raises(faults.WSManFault) as caught:
        asyncio.run(service.handle(request, "fleetfix", "127.0.0.1"))
    assert caught.value.code == faults.ERROR_WSMAN_ACTION_NOT_SUPPORTED
    assert caught.value.action.endswith("/addressing/fault")


def test_numbered_fleet_on_own_addresses() -> None:
    fleet = numbered_fleet(
        300, own_addresses=True, template=HostConfig(name="T", http_port=5985, https_port=5986)
    )
    assert fleet.hosts[0].address == "127.1.0.1"
    assert fleet.hosts[299].address == "127.1.1.44"
    assert {(h.http_port, h.https_port) for h in fleet.hosts} == {(5985, 5986)}


def test_runtime_answers_lab_bugs_and_huge_envelopes_with_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = HostRuntime(HostConfig(name="EP-1"), default_registry(), "seed")

    async def broken(*_: object) -> None:
        raise RuntimeError("handler bug")

    monkeypatch.setattr(runtime.service, "handle", broken)
    status, body = asyncio.run(runtime.wsman(REQUEST.replace(b"TIMEOUT", b"PT1S"), "fleetfix", "127.0.0.1"))
    assert status == 500
    assert b'Code="2150858755"' in body
    assert b"RuntimeError: handler bug" in body
    assert b"<a:RelatesTo>uuid:1</a:RelatesTo>" in body
    status, body = asyncio.run(runtime.wsman(b" " * (600 * 1024), "fleetfix", "127.0.0.1"))
    assert status == 500
    assert f'Code="{faults.ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED}"'.encode() in body
