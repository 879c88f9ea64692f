"""The RRAS and CA actions against the seed-article estate, through the product's WinRM transport.

Plans come from the facts the lab prints for the whole estate (what a sweep sees); the action
scripts run over real pypsrp sessions (:class:`~orchestrator.actions.connection.LiveConnection`
around :class:`~orchestrator.transport.winrm.WinRMSession`).  Each test works on its own host, so
the module's one estate serves them all; the lab's change log must show every real change once.
"""

from __future__ import annotations

import datetime
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lab.estate.pki import der, thumbprint
from lab.estate.runtime import EstateLab
from lab.scenarios import load_scenario
from lab.windows.certstore import CertificateStores, StoredCertificate
from lab.windows.certsvc import CERTSVC
from lab.windows.rras import RrasServer
from lab.windows.services import Services
from orchestrator.actions import ApplyResult, PlanContext
from orchestrator.actions.connection import LiveConnection
from orchestrator.actions.server import (
    PUBLISH_CRL_ACTION,
    RESTART_REMOTEACCESS,
    ROOT_FIELD,
    SET_ROOT_CERTIFICATE,
)
from orchestrator.checks import run_checks
from orchestrator.errors import ScriptFailedError
from orchestrator.scripts.catalog import PUBLISH_CRL, RESTART_SERVICE, SET_ROOT_CERT
from orchestrator.transport.winrm import WinRMSession
from tests.lab.minisweep import fleet_facts
from tests.transport.support import LAB_CREDENTIAL, lab_host


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EstateLab]:
    with EstateLab(
        load_scenario("seed-article"), directory=tmp_path_factory.mktemp("server-actions")
    ) as running:
        yield running


def faulted(lab: EstateLab, fault: str) -> str:
    """The host the scenario injected ``fault`` into (the control API's /faults)."""
    host = next(item["host"] for item in lab.run(lab.server.faults) if item["fault"] == fault)
    assert isinstance(host, str)
    return host


def plan_context(lab: EstateLab, name: str, prior: Mapping[str, ApplyResult] | None = None) -> PlanContext:
    """Fresh facts of the whole estate, as the handlers print them, and the checks' findings now."""
    now = lab.run(lab.built.estate.now)
    fleet = lab.run(lambda: fleet_facts(lab.built, now))
    findings = run_checks(fleet, at=now)
    facts = next(host.facts for host in fleet.hosts if host.name == name)
    assert facts is not None
    mine = tuple(finding for finding in findings if finding.host == name)
    return PlanContext(target=name, facts=facts, fleet=fleet, findings=mine, at=now, prior=prior or {})


@contextmanager
def connection(lab: EstateLab, name: str) -> Iterator[LiveConnection]:
    host = lab_host(lab.info.fleet, name)
    with LiveConnection(
        name,
        host,
        open_session=lambda: WinRMSession(host, LAB_CREDENTIAL),
        open_intune=None,
        clock=lambda: datetime.datetime.now(datetime.UTC),
    ) as conn:
        yield conn


def changes_of(lab: EstateLab, name: str) -> list[dict[str, Any]]:
    return lab.changes().get(name, [])


def root_thumbprints(lab: EstateLab, name: str) -> tuple[str | None, str | None]:
    """(configured, effective) RootCertificateNameToAccept of an RRAS host."""
    server = lab.built.estate.host(name).find(RrasServer)
    assert server is not None

    def thumbprint_of(der_bytes: bytes | None) -> str | None:
        return None if der_bytes is None else thumbprint(x509.load_der_x509_certificate(der_bytes))

    def read() -> tuple[str | None, str | None]:
        return (
            thumbprint_of(server.configured.auth.root_certificate_der),
            thumbprint_of(server.effective.auth.root_certificate_der),
        )

    return lab.run(read)


def test_the_root_is_set_read_back_and_put_into_effect_by_one_restart(lab: EstateLab) -> None:
    name = faulted(lab, "rras-root-mismatch")
    pki = lab.built.estate.pki
    assert root_thumbprints(lab, name) == (pki.legacy_root.thumbprint, pki.legacy_root.thumbprint)

    plan = SET_ROOT_CERTIFICATE.plan(plan_context(lab, name), {})
    assert [change.to_dict() for change in plan.changes] == [
        {"field": ROOT_FIELD, "before": pki.legacy_root.thumbprint, "after": pki.root.thumbprint}
    ]
    sessions = lab.run(lab.server.connections)[name]
    assert sessions > 0
    with connection(lab, name) as conn:
        result = SET_ROOT_CERTIFICATE.apply(conn, plan)
        assert result.changed
        assert result.before == {"thumbprint": pki.legacy_root.thumbprint}
        assert result.after["thumbprint"] == pki.root.thumbprint
        assert result.after["pending_restart"] is True
        # stored at once, in effect only after the restart
        assert root_thumbprints(lab, name) == (pki.root.thumbprint, pki.legacy_root.thumbprint)

        restart = RESTART_REMOTEACCESS.plan(plan_context(lab, name, {"set-root": result}), {})
        assert restart.arguments == {"service": "RemoteAccess", "not_before": result.after["changed_at"]}
        restarted = RESTART_REMOTEACCESS.apply(conn, restart)
        assert restarted.changed
        assert restarted.after["sessions_dropped"] == sessions
        assert root_thumbprints(lab, name) == (pki.root.thumbprint, pki.root.thumbprint)

        # the second run finds nothing to do; the same steps retried change nothing either
        assert SET_ROOT_CERTIFICATE.plan(plan_context(lab, name), {}).noop
        assert not SET_ROOT_CERTIFICATE.apply(conn, plan).changed
        assert not RESTART_REMOTEACCESS.apply(conn, restart).changed
        settled = {"set-root": result, "restart": restarted}
        assert RESTART_REMOTEACCESS.plan(plan_context(lab, name, settled), {}).noop

    changes = changes_of(lab, name)
    assert [(c["script_id"], c["what"]) for c in changes] == [
        ("rras.set-root-cert", ROOT_FIELD),
        ("rras.restart-service", "Service[RemoteAccess]"),
    ]
    assert (changes[0]["before"], changes[0]["after"]) == (pki.legacy_root.thumbprint, pki.root.thumbprint)
    assert changes[1]["after"]["sessions_dropped"] == sessions
    assert changes[1]["after"]["configuration_applied"] is True
    truth = lab.truth()["truth"]
    assert not [entry for entry in truth if entry["host"] == name and entry["check_id"] == "RRAS-AUTH-01"]


def test_the_expired_crl_is_republished_and_the_cdp_serves_it(lab: EstateLab) -> None:
    name = faulted(lab, "crl-expired")
    issuing = lab.built.estate.pki.issuing
    plan = PUBLISH_CRL_ACTION.plan(plan_context(lab, name), {})
    assert [change.field for change in plan.changes] == [f"CRL[{issuing.name}]"]
    services = lab.built.estate.host(name).component(Services)

    with connection(lab, name) as conn:
        lab.run(lambda: services.stop(CERTSVC))
        with pytest.raises(ScriptFailedError, match=r"certutil -crl failed .*RPC server is unavailable"):
            PUBLISH_CRL_ACTION.apply(conn, plan)
        lab.run(lambda: services.start(CERTSVC, lab.built.estate.now()))
        assert changes_of(lab, name) == []

        result = PUBLISH_CRL_ACTION.apply(conn, plan)
        assert result.changed
        published = result.after["published_to"]
        assert isinstance(published, tuple)
        urls: list[str] = []
        for target in published:
            assert isinstance(target, str)
            if target.startswith("http"):
                urls.append(target)
        assert urls == [issuing.crl_url, issuing.delta_crl_url]
        with urllib.request.urlopen(urls[0], timeout=5) as response:
            served = x509.load_der_x509_crl(response.read())
        now = lab.run(lab.built.estate.now)
        assert served.next_update_utc is not None
        assert served.next_update_utc > now + datetime.timedelta(days=7)
        number = served.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        base = result.after["base"]
        assert isinstance(base, Mapping)
        assert number == base["crl_number"]

        again = PUBLISH_CRL_ACTION.apply(conn, plan)  # the same NotBefore: a retry
        assert not again.changed
        assert again.after["published_to"] == ()
        assert again.after["base"] == result.after["base"]

    changes = changes_of(lab, name)
    assert [(c["script_id"], c["what"]) for c in changes] == [("ca.publish-crl", f"CRL[{issuing.name}]")]
    assert PUBLISH_CRL_ACTION.plan(plan_context(lab, name), {}).noop
    truth = lab.truth()["truth"]
    assert not [entry for entry in truth if entry["check_id"] == "CA-CRL-01"]


def test_an_unknown_thumbprint_fails_cleanly(lab: EstateLab) -> None:
    root = lab.built.estate.pki.root.thumbprint
    with WinRMSession(lab_host(lab.info.fleet, "RRAS-01"), LAB_CREDENTIAL) as session:
        with pytest.raises(
            ScriptFailedError, match=r"No certificate with thumbprint 0{40} in Cert:\\LocalMachine\\Root"
        ):
            session.run(SET_ROOT_CERT.bind(Thumbprint="00" * 20))
        with pytest.raises(ScriptFailedError, match="is not a certificate thumbprint"):
            session.run(SET_ROOT_CERT.bind(Thumbprint="not-a-thumbprint"))
        output = session.run(SET_ROOT_CERT.bind(Thumbprint=root.lower())).value  # the session lives on
    assert (output.changed, output.after_thumbprint, output.pending_restart) == (False, root, None)
    assert changes_of(lab, "RRAS-01") == []


def test_a_second_root_of_the_same_name_makes_the_read_back_fail(lab: EstateLab) -> None:
    name = "RRAS-03"
    pki = lab.built.estate.pki
    key = ec.generate_private_key(ec.SECP256R1())
    subject = pki.root.certificate.subject
    namesake = der(
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.root.certificate.not_valid_before_utc)
        .not_valid_after(pki.root.certificate.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    state = lab.built.estate.host(name)

    def stale_root_first() -> None:
        stores = state.component(CertificateStores)
        stores.stores["Root"].insert(0, StoredCertificate(namesake))  # listed before the real root
        stores.add("Root", pki.legacy_root.der)
        server = state.find(RrasServer)
        assert server is not None
        server.set_auth_protocol(root_certificate_der=pki.legacy_root.der)

    lab.run(stale_root_first)
    with (
        connection(lab, name) as conn,
        pytest.raises(ScriptFailedError, match="did not take: RootCertificateNameToAccept reads back"),
    ):
        conn.run(SET_ROOT_CERT.bind(Thumbprint=pki.root.thumbprint))
    changes = changes_of(lab, name)
    assert [(c["what"], c["after"]) for c in changes] == [
        (ROOT_FIELD, thumbprint(x509.load_der_x509_certificate(namesake)))
    ]


def test_restart_service_is_generic_and_refuses_unknown_services(lab: EstateLab) -> None:
    name = "RRAS-02"
    with connection(lab, name) as conn:
        with pytest.raises(
            ScriptFailedError, match="Cannot find any service with service name 'NoSuchService'"
        ):
            conn.run(RESTART_SERVICE.bind(Name="NoSuchService"))
        with pytest.raises(ScriptFailedError, match="String was not recognized as a valid DateTime"):
            conn.run(RESTART_SERVICE.bind(Name="IKEEXT", NotBefore="yesterday"))
        first = conn.run(RESTART_SERVICE.bind(Name="ikeext"))
        assert (first.name, first.changed, first.status, first.sessions_dropped) == (
            "IKEEXT",
            True,
            "Running",
            None,
        )
        assert first.started_at is not None
        # started after the change: nothing to do; started at the very time of it: restarted
        # (that start may have read the configuration from before the change)
        earlier = (first.started_at - timedelta(seconds=1)).isoformat()
        again = conn.run(RESTART_SERVICE.bind(Name="IKEEXT", NotBefore=earlier))
        assert (again.changed, again.started_at) == (False, first.started_at)
        same = conn.run(RESTART_SERVICE.bind(Name="IKEEXT", NotBefore=first.started_at.isoformat()))
        assert same.changed
        assert same.started_at is not None
        assert same.started_at > first.started_at
    changes = changes_of(lab, name)
    assert [c["what"] for c in changes] == ["Service[IKEEXT]", "Service[IKEEXT]"]


def test_the_scripts_fail_as_windows_does_without_the_role(lab: EstateLab) -> None:
    no_ca = pytest.raises(ScriptFailedError, match="No certification authority is installed on this host")
    with connection(lab, "RRAS-04") as conn, no_ca:
        conn.run(PUBLISH_CRL.bind())
    # the root is in an endpoint's Root store, but RRAS is not installed there
    no_rras = pytest.raises(ScriptFailedError, match="'Get-VpnAuthProtocol' is not recognized")
    with connection(lab, "EP-0020") as conn, no_rras:
        conn.run(SET_ROOT_CERT.bind(Thumbprint=lab.built.estate.pki.root.thumbprint))
    assert changes_of(lab, "RRAS-04") == []
    assert changes_of(lab, "EP-0020") == []
