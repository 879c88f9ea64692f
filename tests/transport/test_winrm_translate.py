"""Every library exception the WinRM transport can meet becomes one fleetfix error kind.

The exceptions are built the way the libraries build them (the lab tests raise them for real);
this test pins the mapping and the messages, which name host, endpoint, user and scheme only.
"""

from __future__ import annotations

import socket
import ssl
from xml.etree.ElementTree import ParseError

import pytest
import requests
import spnego.exceptions
import urllib3
import urllib3.connection
import urllib3.exceptions
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPSRPOperation,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)

from orchestrator.errors import (
    AuthFailedError,
    ProtocolError,
    ThrottledError,
    TimedOutError,
    TLSError,
    TransportError,
    UnreachableError,
)
from orchestrator.transport.winrm.translate import ErrorContext, render_error_record, root_cause, translate

CONTEXT = ErrorContext(
    host="ep-001",
    endpoint="https://10.1.2.3:5986/wsman",
    username="CORP\\svc",
    auth="ntlm",
    doing="opening a runspace pool",
)


# Built, never connected: urllib3 names them in its messages.
POOL = urllib3.HTTPSConnectionPool("10.1.2.3", 5986)
CONNECTION = urllib3.connection.HTTPSConnection("10.1.2.3", 5986)


def wrapped(reason: Exception, kind: type[requests.exceptions.RequestException]) -> BaseException:
    """A requests exception around urllib3's MaxRetryError, as requests raises it."""
    return kind(urllib3.exceptions.MaxRetryError(POOL, "/wsman", reason=reason))


CERT_FAILED = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
REFUSED = urllib3.exceptions.NewConnectionError(
    CONNECTION, "Failed to establish a new connection: [Errno 111] refused"
)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (AuthenticationError("Failed to authenticate the user CORP\\svc with ntlm"), AuthFailedError),
        (WSManFaultError(5, "ep-001", "Access is denied.", None, None, None), AuthFailedError),
        (WSManFaultError(2150859173, "ep-001", "too many shells", None, None, None), ThrottledError),
        (WSManFaultError(2150858843, "ep-001", "invalid selectors", None, None, None), ProtocolError),
        (WinRMTransportError("http", 500, ""), ProtocolError),
        (WinRMError("Received related id does not match"), ProtocolError),
        (InvalidPSRPOperation("Cannot invoke PowerShell without any commands being set"), ProtocolError),
        (spnego.exceptions.BadMICError(context_msg="MIC mismatch"), AuthFailedError),
        (ImportError("GSSAPIProxy requires the Python gssapi library"), AuthFailedError),
        (wrapped(CERT_FAILED, requests.exceptions.SSLError), TLSError),
        (ssl.SSLError("wrong version number"), TLSError),
        (requests.exceptions.ReadTimeout("Read timed out. (read timeout=3)"), TimedOutError),
        (requests.exceptions.ConnectTimeout("connect timed out"), TimedOutError),
        (TimeoutError("timed out"), TimedOutError),
        (wrapped(REFUSED, requests.exceptions.ConnectionError), UnreachableError),
        (socket.gaierror(-2, "Name or service not known"), UnreachableError),
        (requests.exceptions.ChunkedEncodingError("broken"), ProtocolError),
        (ParseError("not well-formed (invalid token): line 1, column 0"), ProtocolError),
        (KeyError("Stream"), ProtocolError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.__name__,
)
def test_mapping(exc: BaseException, kind: type[TransportError]) -> None:
    error = translate(exc, CONTEXT)
    assert type(error) is kind
    assert error.host == "ep-001"
    assert str(error).startswith("ep-001: ")


def test_auth_failure_names_user_and_scheme_not_the_password() -> None:
    error = translate(AuthenticationError("Failed to authenticate the user CORP\\svc with ntlm"), CONTEXT)
    assert (
        str(error)
        == "ep-001: user 'CORP\\\\svc' was refused (ntlm authentication at https://10.1.2.3:5986/wsman)"
    )


def test_tls_message_is_the_root_cause_not_urllib3_noise() -> None:
    error = translate(wrapped(CERT_FAILED, requests.exceptions.SSLError), CONTEXT)
    assert "certificate verify failed" in str(error)
    assert "MaxRetryError" not in str(error)
    assert "HTTPSConnectionPool" not in str(error)


def test_quota_fault_keeps_the_windows_reason() -> None:
    fault = WSManFaultError(
        2150859173, "ep-001", "The maximum number of 5 concurrent shells is reached.", *[None] * 3
    )
    assert "maximum number of 5 concurrent shells" in str(translate(fault, CONTEXT))


def test_fleetfix_errors_pass_through() -> None:
    original = TimedOutError("session deadline spent", host="ep-001")
    assert translate(original, CONTEXT) is original


def test_root_cause_follows_urllib3_and_requests_wrappers() -> None:
    assert root_cause(wrapped(CERT_FAILED, requests.exceptions.SSLError)) == str(CERT_FAILED)
    aborted = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    )
    assert root_cause(aborted) == "[Errno 104] reset by peer"


class _Record:
    """The attributes pypsrp's ErrorRecord carries (tests/transport/test_winrm_lab.py uses real ones)."""

    def __init__(self, text: str, **fields: str | None) -> None:
        self._text = text
        self.details_message = fields.get("details_message")
        self.message = fields.get("message")
        self.fq_error = fields.get("fq_error")
        self.script_stacktrace = fields.get("script_stacktrace")

    def __str__(self) -> str:
        return self._text


def test_error_record_rendered_like_powershell() -> None:
    record = _Record(
        "Cannot find path 'HKLM:\\SOFTWARE\\X'.",
        message="ObjectNotFound: (HKLM:\\SOFTWARE\\X:String) [Get-ItemProperty], ItemNotFoundException",
        fq_error="PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
        script_stacktrace="at <ScriptBlock>, <No file>: line 22",
    )
    assert render_error_record(record).splitlines() == [
        "Cannot find path 'HKLM:\\SOFTWARE\\X'.",
        "    + CategoryInfo          : ObjectNotFound: (HKLM:\\SOFTWARE\\X:String) [Get-ItemProperty], "
        "ItemNotFoundException",
        "    + FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
        "    + ScriptStackTrace      : at <ScriptBlock>, <No file>: line 22",
    ]
    assert render_error_record(_Record("plain")) == "plain"
