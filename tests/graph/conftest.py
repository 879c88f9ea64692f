"""Fixtures for the Graph tests: a simulated tenant on loopback and real msal + httpx clients for it.

The repository root goes first on ``sys.path`` so that ``lab`` is the real package, not a
namespace package made of ``tests/lab``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))

from lab.graph import AppCertificate, TenantLab, write_app_certificate  # noqa: E402
from tests.graph.support import CERT_PASSWORD, make_tenant_config  # noqa: E402


@pytest.fixture(scope="session")
def app_cert(tmp_path_factory: pytest.TempPathFactory) -> AppCertificate:
    return write_app_certificate(tmp_path_factory.mktemp("appcert"), "fleetfix-app", CERT_PASSWORD)


@pytest.fixture(scope="module")
def tenant(app_cert: AppCertificate) -> Iterator[TenantLab]:
    """A settled tenant: 25 Windows devices, a native and a ProfileXML profile, three apps."""
    with TenantLab(make_tenant_config(app_cert)) as lab:
        yield lab
