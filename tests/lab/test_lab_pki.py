"""The enterprise PKI: deterministic from the seed, valid chains, the EKUs and CDPs AOVPN needs, CRLs."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from lab.estate.pki import (
    CLIENT_AUTH,
    IKE_INTERMEDIATE,
    NEXT_CRL_PUBLISH_OID,
    SERVER_AUTH,
    EnterprisePKI,
    RevokedEntry,
    cdp_urls,
    der,
    ekus,
    subject_names,
)

CDP = "http://127.0.0.1:8080"
NOW = datetime.datetime(2026, 3, 14, 8, 0, tzinfo=datetime.UTC)


def issued(seed: str) -> tuple[EnterprisePKI, x509.Certificate, x509.Certificate]:
    pki = EnterprisePKI(seed, CDP)
    device = pki.issue("endpoint:ep-0001", pki.device_request("ep-0001.corp.contoso.test"))
    server = pki.issue("rras:rras-01", pki.server_request("vpn.contoso.test"))
    return pki, device, server


def test_same_seed_gives_byte_identical_certificates() -> None:
    first, second = issued("seed-a"), issued("seed-a")
    for a, b in zip(first[1:], second[1:], strict=True):
        assert der(a) == der(b)
    for ca_a, ca_b in zip(first[0].authorities(), second[0].authorities(), strict=True):
        assert ca_a.der == ca_b.der


def test_another_seed_gives_other_keys() -> None:
    (pki_a, device_a, _), (pki_b, device_b, _) = issued("seed-a"), issued("seed-b")
    assert pki_a.root.der != pki_b.root.der
    assert device_a.public_key() != device_b.public_key()


def test_chains_verify_to_the_root() -> None:
    pki, device, server = issued("chain")
    for leaf in (device, server):
        leaf.verify_directly_issued_by(pki.issuing.certificate)
    pki.issuing.certificate.verify_directly_issued_by(pki.root.certificate)
    pki.root.certificate.verify_directly_issued_by(pki.root.certificate)
    assert pki.foreign.certificate.issuer == pki.foreign_root.certificate.subject


def test_device_and_server_certificates_carry_what_ikev2_needs() -> None:
    pki, device, server = issued("ekus")
    assert ekus(device) == (CLIENT_AUTH,)
    assert subject_names(device) == ("ep-0001.corp.contoso.test",)
    assert set(ekus(server)) == {SERVER_AUTH, IKE_INTERMEDIATE}
    assert subject_names(server) == ("vpn.contoso.test",)
    constraints = pki.issuing.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0


def test_distribution_points_are_on_the_lab_cdp() -> None:
    pki, device, _ = issued("cdp")
    assert cdp_urls(device) == (f"{CDP}/CertEnroll/Contoso%20Issuing%20CA%2001.crl",)
    assert cdp_urls(pki.issuing.certificate) == (f"{CDP}/CertEnroll/Contoso%20Root%20CA.crl",)
    aia = device.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert aia[0].access_location.value.endswith("/CertEnroll/Contoso%20Issuing%20CA%2001.crt")


def test_crls_are_signed_and_list_what_was_revoked() -> None:
    pki, device, _ = issued("crl")
    revoked = [RevokedEntry(device.serial_number, NOW - datetime.timedelta(days=1))]
    week = datetime.timedelta(days=7)
    base = pki.crl(
        pki.issuing,
        revoked,
        number=7,
        this_update=NOW,
        next_update=NOW + week,
        next_publish=NOW + week / 7 * 6,
    )
    assert base.is_signature_valid(pki.issuing.key.public_key())
    assert base.get_revoked_certificate_by_serial_number(device.serial_number) is not None
    assert base.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    freshest = base.extensions.get_extension_for_class(x509.FreshestCRL).value
    assert freshest[0].full_name[0].value.endswith("Contoso%20Issuing%20CA%2001+.crl")
    next_publish = base.extensions.get_extension_for_oid(NEXT_CRL_PUBLISH_OID).value
    assert isinstance(next_publish, x509.UnrecognizedExtension)  # a Microsoft extension
    assert next_publish.value == b"\x17\r260320080000Z"
    delta = pki.crl(pki.issuing, [], number=8, this_update=NOW, next_update=NOW + datetime.timedelta(days=1),
                    delta_of=7)  # fmt: skip
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == 7


def test_crls_are_deterministic_for_a_seed_and_time() -> None:
    def sign() -> bytes:
        pki = EnterprisePKI("crl-seed", CDP)
        crl = pki.crl(
            pki.issuing, [], number=1, this_update=NOW, next_update=NOW + datetime.timedelta(days=7)
        )
        return crl.tbs_certlist_bytes + crl.signature

    assert sign() == sign()
