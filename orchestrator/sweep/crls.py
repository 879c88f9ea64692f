"""CRLs from the HTTP distribution points the fleet's certificates name.

* :func:`cdp_urls` (pure): every ``http(s)`` CRL distribution point of every certificate in the
  collected facts, each once -- a fleet of thousands of hosts names a handful of URLs;
* :func:`fetch_crls`: each URL fetched once with httpx, with short timeouts, an overall deadline
  per URL and a size cap, so a slow or hostile distribution point costs seconds and bounded
  memory.  A URL that fails is a :class:`CrlFetch` with ``error`` (the checks report it), never
  an exception.

Clients fetch CRLs the same way (CryptoAPI over plain HTTP), so what fleetfix gets here is what a
VPN server checking revocation gets.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from orchestrator.facts.ca import CaFacts
from orchestrator.facts.fleet import CrlFetch, HostFacts
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.x509 import FactsParseError, parse_certificate

_PEM_MARKER = b"-----BEGIN"


@dataclass(frozen=True)
class CrlFetchPolicy:
    """Limits of fetching one CRL: a CRL of a large CA is a few MB; anything bigger is refused."""

    connect_timeout_s: float = 3.0
    read_timeout_s: float = 5.0
    deadline_s: float = 15.0
    max_bytes: int = 16 * 1024 * 1024
    concurrency: int = 8
    use_proxy: bool = False


DEFAULT_CRL_POLICY = CrlFetchPolicy()


def _certificate_ders(host: HostFacts) -> Iterator[str]:
    facts = host.facts
    if facts is None:
        return
    for entry in getattr(facts, "certificates", None) or ():
        yield entry.der
    if isinstance(facts, CaFacts):
        yield from facts.ca_certificates or ()
    if isinstance(facts, RrasFacts):
        auth = facts.auth_protocol
        if auth is not None:
            yield from (der for der in (auth.root_certificate_der, auth.certificate_advertised_der) if der)
        if facts.sstp_certificate_der:
            yield facts.sstp_certificate_der


def cdp_urls(hosts: Iterable[HostFacts]) -> tuple[str, ...]:
    """Sorted distinct HTTP(S) CRL distribution points of every readable certificate in the facts."""
    ders = {der for host in hosts for der in _certificate_ders(host)}
    urls: set[str] = set()
    for der in ders:
        try:
            view = parse_certificate(der)
        except FactsParseError:
            continue  # the checks report unreadable certificates
        urls.update(url for url in view.crl_urls if urlsplit(url).scheme.lower() in {"http", "https"})
    return tuple(sorted(urls))


def crl_der(body: bytes) -> bytes:
    """DER of a CRL served as DER or PEM; ValueError when the body is not a CRL."""
    pem = body.lstrip().startswith(_PEM_MARKER)
    crl = x509.load_pem_x509_crl(body) if pem else x509.load_der_x509_crl(body)
    return crl.public_bytes(Encoding.DER)


def fetch_crl(
    client: httpx.Client,
    url: str,
    policy: CrlFetchPolicy,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CrlFetch:
    """One distribution point: the CRL, or why there is none (timeouts, status, size, not a CRL)."""
    try:
        body = _download(client, url, policy)
        der = crl_der(body)
    except _Refused as exc:
        return CrlFetch(url=url, error=str(exc), fetched_at=clock())
    except httpx.TimeoutException:
        return CrlFetch(url=url, error="timed out", fetched_at=clock())
    except httpx.HTTPError as exc:
        return CrlFetch(url=url, error=f"{type(exc).__name__}: {exc}", fetched_at=clock())
    except ValueError as exc:
        return CrlFetch(url=url, error=f"not a CRL: {exc}", fetched_at=clock())
    return CrlFetch(url=url, der=base64.b64encode(der).decode("ascii"), fetched_at=clock())


class _Refused(Exception):
    """The answer was not accepted: an HTTP error status, too large, too slow."""


def _download(client: httpx.Client, url: str, policy: CrlFetchPolicy) -> bytes:
    started = time.monotonic()
    with client.stream("GET", url) as response:
        if response.status_code != httpx.codes.OK:
            raise _Refused(f"HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise _Refused(f"{declared} bytes, more than the {policy.max_bytes}-byte cap")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > policy.max_bytes:
                raise _Refused(f"more than the {policy.max_bytes}-byte cap")
            if time.monotonic() - started > policy.deadline_s:
                raise _Refused(f"not complete within {policy.deadline_s:g} s")
            chunks.append(chunk)
    return b"".join(chunks)


def crl_client(policy: CrlFetchPolicy) -> httpx.Client:
    """An HTTP client for distribution points: no redirects to elsewhere, proxies only if asked."""
    timeout = httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s)
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=policy.use_proxy)


def fetch_crls(
    urls: Sequence[str], policy: CrlFetchPolicy = DEFAULT_CRL_POLICY, *, client: httpx.Client | None = None
) -> tuple[CrlFetch, ...]:
    """Every URL fetched once, a few at a time, in the order given."""
    if not urls:
        return ()
    own = client is None
    http = client or crl_client(policy)
    try:
        with ThreadPoolExecutor(max_workers=min(policy.concurrency, len(urls))) as pool:
            return tuple(pool.map(lambda url: fetch_crl(http, url, policy), urls))
    finally:
        if own:
            http.close()


__all__ = [
    "DEFAULT_CRL_POLICY",
    "CrlFetchPolicy",
    "cdp_urls",
    "crl_client",
    "crl_der",
    "fetch_crl",
    "fetch_crls",
]
