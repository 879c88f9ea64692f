"""SOAP envelopes: parse a WS-Management request, render a response or a fault.

Requests are parsed with ElementTree and looked up by namespace URI, so any client prefixes work.
Responses are rendered as text with the prefixes Windows uses (``s``, ``a``, ``x``, ``w``, ``rsp``,
``p``, ``f``): that avoids ``ElementTree.register_namespace``, which is process-global and would
change how pypsrp serialises its own requests when the lab runs inside a test process.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from lab.wsman import faults
from lab.wsman.names import (
    ANONYMOUS,
    NS_ADDRESSING,
    NS_CONFIG,
    NS_SHELL,
    NS_SOAP,
    NS_TRANSFER,
    NS_WSMAN,
    NS_WSMV,
)

DEFAULT_MAX_ENVELOPE_SIZE = 153600
# ISO 8601 durations as WinRM accepts them in wsman:OperationTimeout (PT20S, PT60.000S, PT1M30S).
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass(frozen=True)
class WSManRequest:
    """The parts of a WS-Management request the simulated host acts on."""

    action: str
    message_id: str
    resource_uri: str
    operation_timeout_s: float | None
    max_envelope_size: int
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    body: ElementTree.Element = field(default_factory=lambda: ElementTree.Element(_q(NS_SOAP, "Body")))

    def find(self, path: str) -> ElementTree.Element | None:
        """Find under ``s:Body`` with the ``rsp``/``wst``/``pwsh`` prefixes of :data:`PATH_PREFIXES`."""
        return self.body.find(path, PATH_PREFIXES)


PATH_PREFIXES = {
    "rsp": NS_SHELL,
    "wst": NS_TRANSFER,
    "pwsh": "http://schemas.microsoft.com/powershell",
}


def parse_duration(text: str) -> float:
    """Seconds in an ``xs:duration`` such as ``PT20S``; ``ValueError`` for anything else (``PT-1S``)."""
    match = _DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT"):
        raise ValueError(text)
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_request(data: bytes) -> WSManRequest:
    """Parse one request envelope; malformed input raises the fault Windows would send."""
    try:
        # Loopback clients only; expat resolves no external entities and caps entity expansion.
        envelope = ElementTree.fromstring(data)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise faults.invalid_xml(str(exc)) from None
    header = envelope.find(_q(NS_SOAP, "Header"))
    body = envelope.find(_q(NS_SOAP, "Body"))
    if header is None or body is None:
        raise faults.invalid_xml("The SOAP envelope has no Header or no Body.")

    def text(ns: str, tag: str) -> str | None:
        return header.findtext(_q(ns, tag))

    timeout_text = text(NS_WSMAN, "OperationTimeout")
    timeout: float | None = None
    if timeout_text is not None:
        try:
            timeout = parse_duration(timeout_text)
        except ValueError:
            raise faults.invalid_header(
                f"The XML contains an invalid timeout field in the SOAP header: {timeout_text}."
            ) from None
    max_size_text = text(NS_WSMAN, "MaxEnvelopeSize")
    return WSManRequest(
        action=(text(NS_ADDRESSING, "Action") or "").strip(),
        message_id=(text(NS_ADDRESSING, "MessageID") or "").strip(),
        resource_uri=(text(NS_WSMAN, "ResourceURI") or "").strip(),
        operation_timeout_s=timeout,
        max_envelope_size=int(max_size_text)
        if max_size_text and max_size_text.isdigit()
        else DEFAULT_MAX_ENVELOPE_SIZE,
        selectors=_named_values(header, "SelectorSet", "Selector"),
        options=_named_values(header, "OptionSet", "Option"),
        body=body,
    )


def _named_values(header: ElementTree.Element, group: str, item: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for element in header.findall(f"{_q(NS_WSMAN, group)}/{_q(NS_WSMAN, item)}"):
        name = element.get("Name")
        if name:
            values[name] = (element.text or "").strip()
    return values


# -- rendering ---------------------------------------------------------------------------------

_ENVELOPE_OPEN = (
    f'<s:Envelope xml:lang="en-US" xmlns:s="{NS_SOAP}" xmlns:a="{NS_ADDRESSING}" xmlns:x="{NS_TRANSFER}" '
    f'xmlns:w="{NS_WSMAN}" xmlns:rsp="{NS_SHELL}" xmlns:p="{NS_WSMV}" xmlns:cfg="{NS_CONFIG}">'
)


def element(tag: str, content: str | Iterable[str] = "", **attributes: str) -> str:
    """``<tag attr="…">content</tag>``; ``content`` is markup (use :func:`text` for character data)."""
    attrs = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items())
    inner = content if isinstance(content, str) else "".join(content)
    return f"<{tag}{attrs}>{inner}</{tag}>" if inner else f"<{tag}{attrs}/>"


def text(value: str) -> str:
    """Character data, escaped for XML."""
    return escape(value)


def render_response(action: str, relates_to: str, body: str) -> bytes:
    """A complete response envelope; ``body`` is the markup inside ``s:Body``."""
    header = element(
        "s:Header",
        [
            element("a:Action", text(action)),
            element("a:MessageID", text(f"uuid:{str(uuid.uuid4()).upper()}")),
            element("a:To", text(ANONYMOUS)),
            element("a:RelatesTo", text(relates_to)),
        ],
    )
    return (_ENVELOPE_OPEN + header + f"<s:Body>{body}</s:Body></s:Envelope>").encode("utf-8")


def _fault_detail(fault: faults.WSManFault, machine: str) -> str:
    ns = 'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"'
    message = element("f:Message", text(fault.message))
    if fault.provider is not None:
        provider, path = fault.provider
        inner = (
            f'<f:WSManFault {ns} Code="{fault.code}" Machine={quoteattr(machine)}>{message}</f:WSManFault>'
        )
        message = element("f:Message", element("f:ProviderFault", inner, provider=provider, path=path))
    detail = element("w:FaultDetail", text(fault.fault_detail)) if fault.fault_detail else ""
    return (
        detail
        + f'<f:WSManFault {ns} Code="{fault.code}" Machine={quoteattr(machine)}>{message}</f:WSManFault>'
    )


def render_fault(fault: faults.WSManFault, relates_to: str, machine: str) -> bytes:
    """The SOAP 1.2 fault envelope WinRM sends with HTTP 500."""
    body = element(
        "s:Fault",
        [
            element(
                "s:Code",
                [
                    element("s:Value", "s:Sender" if fault.sender else "s:Receiver"),
                    element("s:Subcode", element("s:Value", text(fault.subcode))),
                ],
            ),
            element("s:Reason", f'<s:Text xml:lang="en-US">{text(fault.reason)}</s:Text>'),
            element("s:Detail", _fault_detail(fault, machine)),
        ],
    )
    return render_response(fault.action, relates_to, body)
