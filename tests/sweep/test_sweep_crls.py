"""CRL distribution points: which URLs the facts name, and fetching them within bounds."""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from orchestrator.facts import HostFacts
from orchestrator.inventory.models import Role
from orchestrator.sweep.crls import CrlFetchPolicy, cdp_urls, fetch_crl, fetch_crls
from tests.sweep.support import T0, certificate_b64, crl_bytes, facts_document

CDP = "http://pki.contoso.test/cdp/issuing.crl"
ROOT_CDP = "http://pki.contoso.test/cdp/root.crl"


def host(name: str, role: Role, **sections: object) -> HostFacts:
    return HostFacts(name=name, role=role, facts=facts_document(role, name, **sections))


def entry(der: str, store: str = "My") -> dict[str, object]:
    return {"store": store, "der": der, "has_private_key": store == "My"}


def test_cdp_urls_are_every_http_distribution_point_once() -> None:
    device = certificate_b64("ws1", (CDP, "ldap:///CN=issuing,CN=CDP?certificateRevocationList"))
    hosts = [
        host("WS-1", Role.ENDPOINT, certificates=[entry(device), entry(certificate_b64("no-cdp"), "Root")]),
        host("WS-2", Role.ENDPOINT, certificates=[entry(certificate_b64("ws2", (CDP,)))]),
        host("CA01", Role.CA, ca_certificates=[certificate_b64("issuing", (ROOT_CDP,))]),
        host(
            "RRAS01",
            Role.RRAS,
            sstp_certificate_der=certificate_b64("sstp", ("https://pki.contoso.test/sstp.crl",)),
        ),
        HostFacts(name="WS-3", role=Role.ENDPOINT, error={"kind": "unreachable", "message": "x"}),
        host("WS-4", Role.ENDPOINT, certificates=[entry("AAAA")]),  # unreadable: the checks say so
    ]
    assert cdp_urls(hosts) == (CDP, ROOT_CDP, "https://pki.contoso.test/sstp.crl")


def serve(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def test_a_der_or_pem_crl_is_fetched_as_der() -> None:
    der, pem = crl_bytes(), crl_bytes(Encoding.PEM)
    bodies = {"/der.crl": der, "/pem.crl": pem}
    client = serve(httpx.MockTransport(lambda request: httpx.Response(200, content=bodies[request.url.path])))
    fetched = fetch_crls(["http://x/der.crl", "http://x/pem.crl"], client=client)
    assert [fetch.url for fetch in fetched] == ["http://x/der.crl", "http://x/pem.crl"]
    assert {fetch.der for fetch in fetched} == {base64.b64encode(der).decode()}
    assert all(fetch.error is None and fetch.fetched_at is not None for fetch in fetched)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(404), "HTTP 404"),
        (httpx.Response(302, headers={"location": "http://elsewhere/"}), "HTTP 302"),
        (httpx.Response(200, content=b"<html>login</html>"), "not a CRL"),
        (httpx.Response(200, content=b"x" * 2048), "cap"),
        (httpx.Response(200, content=b"x" * 2048, headers={"content-length": "2048"}), "2048 bytes"),
    ],
)
def test_a_bad_answer_is_an_error_on_that_url(response: httpx.Response, error: str) -> None:
    client = serve(httpx.MockTransport(lambda request: response))
    fetched = fetch_crl(client, CDP, CrlFetchPolicy(max_bytes=1024), clock=lambda: T0)
    assert fetched.der is None
    assert fetched.error is not None
    assert error in fetched.error
    assert fetched.fetched_at == T0


def test_network_failures_are_errors_on_that_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow":
            raise httpx.ReadTimeout("read timed out", request=request)
        raise httpx.ConnectError("connection refused", request=request)

    fetched = fetch_crls(
        ["http://down/a.crl", "http://slow/b.crl"], client=serve(httpx.MockTransport(refuse))
    )
    assert [fetch.error for fetch in fetched] == ["ConnectError: connection refused", "timed out"]


def test_no_urls_no_client() -> None:
    assert fetch_crls([]) == ()
