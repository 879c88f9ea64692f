"""Windows error codes an Always On VPN failure reports, and the checks that explain them (§0.2).

RasClient event 20227 carries the code as a signed decimal: ``13806``, or an HRESULT such as
``-2146885613`` (``0x80092013``).  Codes are keyed by their unsigned 32-bit value and shown the
way Microsoft documents them: small codes in decimal, HRESULTs in hex.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_HRESULT_MIN = 0x10000


@dataclass(frozen=True)
class ErrorCode:
    value: int
    """Unsigned 32-bit value."""
    name: str
    meaning: str
    checks: tuple[str, ...]
    """Checks that explain the code, most likely first."""

    @property
    def label(self) -> str:
        return code_label(self.value)


def unsigned(code: int) -> int:
    return code & 0xFFFFFFFF


def code_label(code: int) -> str:
    """``13806`` -> ``"13806"``; ``-2146885613`` -> ``"0x80092013"``."""
    value = unsigned(code)
    return str(value) if value < _HRESULT_MIN else f"0x{value:08X}"


def _table(*codes: ErrorCode) -> Mapping[int, ErrorCode]:
    return MappingProxyType({code.value: code for code in codes})


ERROR_CODES = _table(
    ErrorCode(13801, "ERROR_IPSEC_IKE_AUTH_FAIL", "IKE authentication credentials are unacceptable",
              ("RRAS-CERT-01", "EP-CERT-04", "EP-CERT-03", "EP-CERT-02", "RRAS-CRL-01")),
    ErrorCode(13806, "ERROR_IPSEC_IKE_NO_CERT", "IKE failed to find a valid machine certificate",
              ("EP-CERT-01", "EP-CERT-02", "EP-CERT-04", "RRAS-CERT-01", "CA-CRL-01", "RRAS-AUTH-01")),
    ErrorCode(13868, "ERROR_IPSEC_IKE_POLICY_MATCH", "IKEv2 policy mismatch between client and server",
              ("EP-PROF-03", "RRAS-IPSEC-02")),
    ErrorCode(809, "ERROR_VPN_TIMEOUT", "the VPN server did not respond (firewall, NAT, fragments, LB)",
              ("NET-PORT-01", "EP-PROF-04", "RRAS-FRAG-01", "RRAS-LB-01")),
    ErrorCode(812, "ERROR_RAS_POLICY", "a policy on the VPN server or NPS refused the connection",
              ("NPS-POL-01", "RRAS-AUTH-02", "RRAS-TLS-01")),
    ErrorCode(691, "ERROR_AUTHENTICATION_FAILURE", "access denied: authentication failed",
              ("NPS-POL-01", "RRAS-TLS-01")),
    ErrorCode(853, "ERROR_EAP_CLIENT_CERT_INVALID", "NPS server name mismatch (Windows 11 compares case)",
              ("NPS-CERT-01",)),
    ErrorCode(864, "ERROR_EAP_SERVER_ROOT_CERT_NOT_FOUND", "the root of the NPS certificate is not trusted",
              ("NPS-CERT-01", "EP-CERT-04")),
    ErrorCode(800, "ERROR_AUTOMATIC_VPN_FAILED", "every tunnel type failed (Automatic)",
              ("NET-PORT-01",)),
    ErrorCode(0x80092013, "CRYPT_E_REVOCATION_OFFLINE", "revocation server offline (CRL unreachable)",
              ("RRAS-CERT-02", "CA-CRL-03", "CA-CRL-01")),
    ErrorCode(0x80092010, "CRYPT_E_REVOKED", "the certificate is revoked",
              ("EP-CERT-02",)),
    ErrorCode(0x800B0101, "CERT_E_EXPIRED", "a certificate (SSTP: the server's TLS certificate) expired",
              ("RRAS-CERT-02",)),
    ErrorCode(0x800B0109, "CERT_E_UNTRUSTEDROOT", "the chain ends in a root the client does not trust",
              ("EP-CERT-04",)),
    ErrorCode(0x80070040, "ERROR_NETNAME_DELETED", "server certificate lacks Server Authentication",
              ("RRAS-CERT-01",)),
)  # fmt: skip


def lookup(code: int) -> ErrorCode | None:
    return ERROR_CODES.get(unsigned(code))


__all__ = ["ERROR_CODES", "ErrorCode", "code_label", "lookup", "unsigned"]
