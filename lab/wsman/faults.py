"""WS-Management faults, shaped like the ones Windows sends (codes from ``wsmerror.h``).

The constructors below cover what the simulated host can run into.  Their texts and element
layout follow the recordings in the shared ``fixtures/pypsrp-recordings`` (invalid selectors,
invalid headers) and MS-WSMV 3.1.4.5 (quota limits); pypsrp only reads ``Code`` and the message,
but the product's error mapping and the fidelity test look at the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.wsman.names import ACTION_ADDRESSING_FAULT, ACTION_WSMAN_FAULT

ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER = 2150858767
ERROR_WSMAN_ACTION_NOT_SUPPORTED = 2150858771
ERROR_WSMAN_RESOURCE_NOT_FOUND = 2150858752
ERROR_WSMAN_OPERATION_TIMEDOUT = 2150858793  # 0x80338029: pypsrp re-polls silently on this one
ERROR_WSMAN_INVALID_XML = 2150858819
ERROR_WSMAN_UNEXPECTED_SELECTORS = 2150858843  # 0x8033805B: pypsrp's is_alive() reads it as "gone"
ERROR_WSMAN_QUOTA_MAX_SHELLS = 2150859173
ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED = 2150858824
ERROR_WSMAN_PROVIDER_FAILURE = 2150858755

_SHELL_PROVIDER = ("Shell provider", "%systemroot%\\system32\\WsmSvc.dll")
_FAULT_DETAIL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"


@dataclass(eq=False)
class WSManFault(Exception):
    """A SOAP fault the host answers with (HTTP 500, like WinRM).

    Not frozen: Python's own machinery (``contextlib``) writes ``__traceback__`` on exceptions.
    """

    code: int
    subcode: str
    reason: str
    message: str
    sender: bool = True
    fault_detail: str | None = None
    provider: tuple[str, str] | None = None
    addressing: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def action(self) -> str:
        return ACTION_ADDRESSING_FAULT if self.addressing else ACTION_WSMAN_FAULT


_CANNOT = "The WS-Management service cannot process the request"
_SELECTORS_REASON = f"{_CANNOT} because the request contained invalid selectors for the resource. "


def unknown_shell(shell_id: str) -> WSManFault:
    return WSManFault(
        code=ERROR_WSMAN_UNEXPECTED_SELECTORS,
        subcode="w:InvalidSelectors",
        reason=_SELECTORS_REASON,
        message=(
            f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
            "was not found on the server. Possible causes are: the specified ShellId is incorrect or the "
            "shell no longer exists on the server. Provide the correct ShellId or create a new shell and "
            "retry the operation. "
        ),
        fault_detail=_FAULT_DETAIL + "UnexpectedSelectors",
    )


def unknown_shell_on_get() -> WSManFault:
    """What Windows answers a transfer Get on a shell that is gone (wrapped by the shell provider)."""
    return WSManFault(
        code=ERROR_WSMAN_UNEXPECTED_SELECTORS,
        subcode="w:InvalidSelectors",
        reason=_SELECTORS_REASON,
        message=_SELECTORS_REASON,
        fault_detail=_FAULT_DETAIL + "UnexpectedSelectors",
        provider=_SHELL_PROVIDER,
    )


def unknown_command() -> WSManFault:
    return WSManFault(
        code=ERROR_WSMAN_UNEXPECTED_SELECTORS,
        subcode="w:InvalidSelectors",
        reason=_SELECTORS_REASON,
        message=(
            "The Windows Remote Shell received a request to perform an operation on a command identifier "
            "that does not exist. Either the command has completed execution or the client specified an "
            "invalid command identifier. "
        ),
        fault_detail=_FAULT_DETAIL + "UnexpectedSelectors",
    )


def operation_timed_out() -> WSManFault:
    text = (
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.  "
    )
    return WSManFault(
        code=ERROR_WSMAN_OPERATION_TIMEDOUT, subcode="w:TimedOut", reason=text, message=text, sender=False
    )


def invalid_header(detail: str) -> WSManFault:
    return WSManFault(
        code=ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER,
        subcode="a:InvalidMessageInformationHeader",
        reason=f"{_CANNOT}. The request contains one or more invalid SOAP headers. ",
        message=f"{_CANNOT}. {detail} ",
        addressing=True,
    )


def action_not_supported(action: str) -> WSManFault:
    text = "The WS-Management service does not support the action specified in the request. "
    return WSManFault(
        code=ERROR_WSMAN_ACTION_NOT_SUPPORTED,
        subcode="a:ActionNotSupported",
        reason=text,
        message=f"{text}Action: {action} ",
        addressing=True,
    )


def resource_not_found(resource_uri: str) -> WSManFault:
    return WSManFault(
        code=ERROR_WSMAN_RESOURCE_NOT_FOUND,
        subcode="w:DestinationUnreachable",
        reason=f"{_CANNOT}. The service cannot find the resource identified by the resource URI and "
        "selectors. ",
        message=f"{_CANNOT}. The resource URI ({resource_uri}) was not found in the WS-Management catalog. ",
    )


def invalid_xml(detail: str) -> WSManFault:
    text = f"{_CANNOT} because the XML is invalid. "
    return WSManFault(
        code=ERROR_WSMAN_INVALID_XML,
        subcode="w:SchemaValidationError",
        reason=text,
        message=f"{text}{detail} ",
    )


def quota_max_shells(limit: int) -> WSManFault:
    return WSManFault(
        code=ERROR_WSMAN_QUOTA_MAX_SHELLS,
        subcode="w:QuotaLimit",
        reason=f"{_CANNOT} because the request exceeded a quota limit. ",
        message=(
            f"{_CANNOT}. This user is allowed a maximum number of {limit} concurrent shells, which has been "
            "exceeded. Close existing shells or raise the quota for this user. "
        ),
        sender=False,
    )


def envelope_too_large(limit_bytes: int) -> WSManFault:
    text = f"{_CANNOT} because the envelope size in the request is too large. "
    return WSManFault(
        code=ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED,
        subcode="w:EncodingLimit",
        reason=text,
        message=f"{text}The maximum is {limit_bytes} bytes. ",
        fault_detail=_FAULT_DETAIL + "MaxEnvelopeSize",
    )


def internal_error(exc: Exception) -> WSManFault:
    """A failure inside the lab itself, reported as a failing WS-Management provider."""
    text = "The WS-Management service cannot process the request. The service provider failed. "
    return WSManFault(
        code=ERROR_WSMAN_PROVIDER_FAILURE,
        subcode="w:InternalError",
        reason=text,
        message=f"{text}{type(exc).__name__}: {exc} ",
        sender=False,
    )
