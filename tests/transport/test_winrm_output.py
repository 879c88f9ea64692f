"""One JSON document per script, validated against its schema; the size of what came back."""

from __future__ import annotations

import base64
import json
from xml.etree.ElementTree import Element, SubElement

import pytest

from orchestrator.errors import BadOutputError, OutputTooLargeError
from orchestrator.scripts import DiagEcho, HostInfo
from orchestrator.transport.winrm.output import check_output_size, parse_output, stream_bytes

RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
HOST_INFO = {
    "computer_name": "EP-0001",
    "fqdn": "ep-0001.corp.example.com",
    "os_caption": "Microsoft Windows 11 Enterprise",
    "os_build": 22631,
    "os_ubr": 4460,
    "ps_version": "5.1.22621.4391",
}


def parse(model: type[DiagEcho] | type[HostInfo], outputs: list[object]) -> object:
    return parse_output(model, outputs, host="ep-0001", script_id="test.probe")


def test_one_valid_document() -> None:
    assert parse(HostInfo, [json.dumps(HOST_INFO)]) == HostInfo.model_validate(HOST_INFO)
    assert parse(DiagEcho, ['{"value":"x\'; $(y)","length":8}']) == DiagEcho(value="x'; $(y)", length=8)


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([], "printed 0 objects"),
        (['{"value":"a","length":1}', "stray"], "printed 2 objects, the first"),
        ([{"value": "a"}], "printed a dict instead of JSON text"),
        (['{"value":"a","len'], "Invalid JSON"),
        (['{"value":"a","length":"1"}'], "length: Input should be a valid integer"),
        (['{"value":"a","length":-1}'], "length: Input should be greater than or equal to 0"),
        (['{"value":"a","length":1,"extra":true}'], "extra: Extra inputs are not permitted"),
        (['{"value":"a"}'], "length: Field required"),
        (["[1,2]"], "Input should be an object"),
    ],
)
def test_bad_output(outputs: list[object], message: str) -> None:
    with pytest.raises(BadOutputError, match=r"test\.probe") as caught:
        parse(DiagEcho, outputs)
    assert message in str(caught.value)
    assert caught.value.host == "ep-0001"


def test_bad_output_shows_only_an_excerpt() -> None:
    huge = '{"value":"' + "A" * 100_000  # truncated JSON
    with pytest.raises(BadOutputError) as caught:
        parse(DiagEcho, [huge])
    assert len(str(caught.value)) < 600
    assert "(100010 characters)" in str(caught.value)


def test_many_schema_errors_are_summarised() -> None:
    with pytest.raises(BadOutputError, match="and 3 more"):
        parse(HostInfo, ["{}"])


def test_size_check() -> None:
    check_output_size(100, 100, host="h", script_id="s")
    with pytest.raises(OutputTooLargeError, match="more than 100 bytes"):
        check_output_size(101, 100, host="h", script_id="s")


def receive_response(*chunks: bytes) -> Element:
    body = Element("{http://www.w3.org/2003/05/soap-envelope}Body")
    response = SubElement(body, f"{{{RSP}}}ReceiveResponse")
    for chunk in chunks:
        SubElement(response, f"{{{RSP}}}Stream", Name="stdout").text = base64.b64encode(chunk).decode()
    SubElement(response, f"{{{RSP}}}CommandState", State="Running")
    return body


@pytest.mark.parametrize("sizes", [(), (0,), (1,), (2,), (3,), (1000, 4, 5), (512_000,)])
def test_stream_bytes_counts_decoded_data(sizes: tuple[int, ...]) -> None:
    assert stream_bytes(receive_response(*(b"x" * size for size in sizes))) == sum(sizes)


def test_stream_bytes_of_nothing() -> None:
    assert stream_bytes(None) == 0
