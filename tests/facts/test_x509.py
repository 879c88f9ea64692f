"""Certificate and CRL views: thumbprints as Windows shows them, names, EKUs, CDPs, CRL times."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from orchestrator.facts.x509 import (
    ANY_EKU,
    CLIENT_AUTH,
    IKE_INTERMEDIATE,
    SERVER_AUTH,
    FactsParseError,
    normalize_thumbprint,
    parse_certificate,
    parse_crl,
)
from tests.checks.certgen import TestPki

PKI = TestPki(
    {
        "root": {"cn": "Root", "ca": True},
        "leaf": {
            "cn": "WS1",
            "issuer": "root",
            "eku": ["client_auth", "ike_intermediate"],
            "san": ["ws1.corp.contoso.com", "WS1.corp.contoso.com."],
            "cdp": ["http://pki.contoso.com/a.crl", "http://pki.contoso.com/b.crl"],
            "not_before": "2025-01-01T00:00:00Z",
            "not_after": "2026-01-01T00:00:00Z",
        },
        "any": {"cn": "any", "issuer": "root", "eku": ["any"]},
        "no_eku": {"cn": "no-eku", "issuer": "root"},
        "fake_root": {"cn": "Root", "ca": True, "key": "attacker"},
        "forged": {"cn": "WS1", "issuer": "fake_root"},
    },
    {
        "crl": {
            "issuer": "root",
            "this_update": "2025-05-29T00:00:00Z",
            "next_update": "2025-06-05T12:00:00Z",
            "next_publish": "2025-06-04T00:00:00Z",
            "number": 12,
            "revoked": ["leaf"],
        },
        "delta": {
            "issuer": "root",
            "this_update": "2025-05-31T00:00:00Z",
            "next_update": "2025-06-01T12:00:00Z",
            "delta": True,
        },
    },
)


def test_thumbprint_is_sha1_upper_hex_without_spaces() -> None:
    der = base64.b64decode(PKI.cert_b64("leaf"))
    view = parse_certificate(PKI.cert_b64("leaf"))
    assert view.thumbprint == hashlib.sha1(der).hexdigest().upper()
    assert len(view.thumbprint) == 40
    assert " " not in view.thumbprint
    assert normalize_thumbprint(" 71 89 9a bf\t33 ") == "71899ABF33"


def test_names_ekus_and_distribution_points() -> None:
    view = parse_certificate(PKI.cert_b64("leaf"))
    assert view.subject == "CN=WS1"
    assert view.subject_cn == "WS1"
    assert view.issuer_cn == "Root"
    assert view.dns_names == ("ws1.corp.contoso.com", "WS1.corp.contoso.com.")
    assert view.matches_name("WS1.CORP.CONTOSO.COM")
    assert view.matches_name("ws1")
    assert not view.matches_name("ws2.corp.contoso.com")
    assert view.ekus == (CLIENT_AUTH, IKE_INTERMEDIATE)
    assert view.has_eku(CLIENT_AUTH)
    assert not view.has_eku(SERVER_AUTH)
    assert view.crl_urls == ("http://pki.contoso.com/a.crl", "http://pki.contoso.com/b.crl")
    assert not view.is_ca
    assert view.authority_key_id == parse_certificate(PKI.cert_b64("root")).subject_key_id
    assert view.not_before == datetime(2025, 1, 1, tzinfo=UTC)


def test_eku_edge_cases() -> None:
    any_eku = parse_certificate(PKI.cert_b64("any"))
    assert any_eku.ekus == (ANY_EKU,)
    assert not any_eku.has_eku(CLIENT_AUTH)
    assert any_eku.has_eku(CLIENT_AUTH, any_purpose_counts=True)
    no_eku = parse_certificate(PKI.cert_b64("no_eku"))
    assert no_eku.ekus is None
    assert no_eku.has_eku(SERVER_AUTH)


def test_issued_by_verifies_the_signature_not_just_the_name() -> None:
    root = parse_certificate(PKI.cert_b64("root"))
    assert parse_certificate(PKI.cert_b64("leaf")).issued_by(root)
    assert root.self_issued
    assert root.issued_by(root)
    forged = parse_certificate(PKI.cert_b64("forged"))  # the root's name, another key
    assert forged.issuer == "CN=Root"
    assert not forged.issued_by(root)


def test_crl_view() -> None:
    crl = parse_crl(PKI.crl_b64("crl"))
    assert crl.this_update == datetime(2025, 5, 29, tzinfo=UTC)
    assert crl.next_update == datetime(2025, 6, 5, 12, tzinfo=UTC)
    assert crl.next_publish == datetime(2025, 6, 4, tzinfo=UTC)
    assert crl.crl_number == 12
    assert not crl.is_delta
    assert parse_certificate(PKI.cert_b64("leaf")).serial in crl.revoked_serials
    assert crl.issued_by(parse_certificate(PKI.cert_b64("root")))
    assert not crl.issued_by(parse_certificate(PKI.cert_b64("leaf")))
    delta = parse_crl(PKI.crl_b64("delta"))
    assert delta.is_delta
    assert delta.next_publish is None
    assert delta.revoked_serials == frozenset()
    assert crl.describe()["next_update"] == "2025-06-05T12:00:00Z"


@pytest.mark.parametrize("text", ["not base64!", "AAAA", base64.b64encode(b"<html>").decode()])
def test_garbage_is_a_parse_error(text: str) -> None:
    with pytest.raises(FactsParseError):
        parse_certificate(text)
    with pytest.raises(FactsParseError):
        parse_crl(text)


def test_parsing_is_cached_per_der() -> None:
    assert parse_certificate(PKI.cert_b64("root")) is parse_certificate(PKI.cert_b64("root"))
