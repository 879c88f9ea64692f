"""Reading pypsrp's recorded real-Windows exchanges and comparing responses structurally.

A recording (``fixtures/pypsrp-recordings/*.yml`` in the shared folder) is a list of
``{request, response}`` SOAP pairs captured from Windows hosts.  :func:`summarize` reduces a
response to what must match between Windows and the lab: the action, the element structure of
the body (namespace + local name + attribute names, values ignored), the fault code, and the
PSRP message types carried in ``rsp:Stream`` per target (pool or CommandId).
"""

from __future__ import annotations

import base64
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml
from psrpcore.types import PSRPMessageType

REPO = Path(__file__).resolve().parents[2]
NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
# pypsrp's recorder marks messages whose outcome its test harness injected on the client side.
CLIENT_INJECTED = ("http_error", "timeout", "auth_error")
_TIMEOUT = re.compile(r"<wsman:OperationTimeout>PT(\d+(?:\.\d+)?)S</wsman:OperationTimeout>")


def shared_dir() -> Path:
    """The shared folder: ``$FLEETFIX_SHARED_DIR``, else the repository's sibling ``shared/``."""
    override = os.environ.get("FLEETFIX_SHARED_DIR")
    return Path(override) if override else REPO.parent / "shared"


def recordings_dir() -> Path:
    return shared_dir() / "fixtures" / "pypsrp-recordings"


def load(path: Path) -> list[dict[str, Any]]:
    messages = yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    assert isinstance(messages, list)
    return messages


def psrp_messages(b64: str | None) -> list[tuple[str, bytes]]:
    """(message type, message body) of every PSRP message that starts in a stream's fragments."""
    data = base64.b64decode(b64 or "")
    found: list[tuple[str, bytes]] = []
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset + 17)
        fragment = data[offset + 21 : offset + 21 + length]
        if data[offset + 16] & 0x1:  # start fragment: the message header is here
            (message_type,) = struct.unpack_from("<I", fragment, 4)
            found.append((PSRPMessageType(message_type).name, fragment[40:]))
        offset += 21 + length
    return found


def _paths(element: ElementTree.Element, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for child in element:
        path = f"{prefix}/{child.tag}"
        found.add(path)
        found.update(f"{path}@{name}" for name in child.attrib)
        found |= _paths(child, path)
    return found


@dataclass(frozen=True)
class Summary:
    action: str
    paths: frozenset[str]
    psrp: dict[str, list[str]] = field(default_factory=dict)
    fault_code: str | None = None
    shell_id: str | None = None
    command_id: str | None = None

    @property
    def timed_out(self) -> bool:
        return self.fault_code == "2150858793"


def summarize(xml: str) -> Summary:
    envelope = ElementTree.fromstring(xml)
    action = envelope.findtext(f"{{{NS_SOAP}}}Header/{{{NS_ADDRESSING}}}Action") or ""
    body = envelope.find(f"{{{NS_SOAP}}}Body")
    assert body is not None
    streams: dict[str, list[str]] = {}
    for stream in body.iter(f"{{{NS_SHELL}}}Stream"):
        target = (stream.get("CommandId") or "pool").upper()
        streams.setdefault(target, []).extend(kind for kind, _ in psrp_messages(stream.text))
    fault = next(body.iter(f"{{{NS_FAULT}}}WSManFault"), None)
    selector = next((s for s in body.iter(f"{{{NS_WSMAN}}}Selector") if s.get("Name") == "ShellId"), None)
    command_id = body.findtext(f"{{{NS_SHELL}}}CommandResponse/{{{NS_SHELL}}}CommandId")
    return Summary(
        action=action.rsplit("/", 1)[-1],
        paths=frozenset(_paths(body)),
        psrp=streams,
        fault_code=fault.get("Code") if fault is not None else None,
        shell_id=selector.text if selector is not None else None,
        command_id=command_id,
    )


def recorded_version(messages: list[dict[str, Any]], name: str, default: str) -> str:
    """A version Windows announced in APPLICATION_PRIVATE_DATA: ``PSVersion`` or ``BuildVersion``."""
    # PSVersionTable is a dictionary: <S N="Key">BuildVersion</S><Version N="Value">6.1.7601.17514</Version>
    pattern = re.compile(rb'<S N="Key">' + name.encode() + rb'</S><Version N="Value">([0-9.]+)</Version>')
    for message in messages:
        for b64 in re.findall(r"<rsp:Stream[^>]*>([^<]+)</rsp:Stream>", message.get("response") or ""):
            for kind, body in psrp_messages(b64):
                match = pattern.search(body) if kind == "ApplicationPrivateData" else None
                if match:
                    return match.group(1).decode()
    return default


def shorten_timeout(request: str, seconds: float) -> str:
    """Cap positive OperationTimeouts (a lab Receive with nothing to send waits that long)."""
    return _TIMEOUT.sub(
        lambda m: f"<wsman:OperationTimeout>PT{min(float(m.group(1)), seconds)}S</wsman:OperationTimeout>",
        request,
    )
