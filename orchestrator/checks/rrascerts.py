"""The VPN server's IKEv2 certificate: which one RRAS would present, judged once per run."""

from __future__ import annotations

from orchestrator.checks.certs import Candidate, assess, best, personal_certificates
from orchestrator.checks.context import CheckContext
from orchestrator.checks.trust import StoreSet, safe_parse
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.x509 import IKE_INTERMEDIATE, SERVER_AUTH, CertView

SERVER_EKUS = (SERVER_AUTH, IKE_INTERMEDIATE)


def server_candidates(host: str, facts: RrasFacts, ctx: CheckContext) -> tuple[Candidate, ...]:
    """``My`` certificates that look meant for IKEv2 (either VPN EKU, or a public name), judged."""

    def compute() -> tuple[Candidate, ...]:
        names, _ = ctx.public_names
        stores = StoreSet.from_entries(facts.certificates or ())
        advertised = _advertised(facts)
        return tuple(
            assess(cert, has_key, ekus=SERVER_EKUS, names=names or None, stores=stores, ctx=ctx)
            for cert, has_key in personal_certificates(facts.certificates or ())
            if _looks_like_server_certificate(cert, names, advertised)
        )

    return ctx.memo(("server-candidates", host), compute)


def _advertised(facts: RrasFacts) -> str | None:
    der = facts.auth_protocol.certificate_advertised_der if facts.auth_protocol else None
    view = safe_parse(der) if der else None
    return view.thumbprint if view else None


def _looks_like_server_certificate(cert: CertView, names: tuple[str, ...], advertised: str | None) -> bool:
    ekus = cert.ekus or ()
    return (
        cert.thumbprint == advertised
        or SERVER_AUTH in ekus
        or IKE_INTERMEDIATE in ekus
        or any(cert.matches_name(name) for name in names)
    )


def server_certificate(host: str, facts: RrasFacts, ctx: CheckContext) -> Candidate | None:
    """The certificate IKEv2 clients will see: the one RRAS is told to advertise, else the usable
    and trusted one, else the closest one."""
    candidates = server_candidates(host, facts, ctx)
    advertised = _advertised(facts)
    pinned = [c for c in candidates if c.cert.thumbprint == advertised]
    if pinned:
        return pinned[0]
    usable = [c for c in candidates if c.usable]
    return best([c for c in usable if c.trusted]) or best(usable) or best(candidates)


__all__ = ["SERVER_EKUS", "server_candidates", "server_certificate"]
