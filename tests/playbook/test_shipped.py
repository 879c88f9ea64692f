"""The shipped playbooks against the real action and check registries.

These are the contract between the playbooks, the actions and the check catalogue: a shipped
playbook naming an action that does not exist (or with the wrong arguments or target kind), or a
check that names a playbook which does not fix it, fails here.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

import orchestrator.actions  # noqa: F401 - registers the shipped actions
from orchestrator.actions import actions
from orchestrator.checks import REGISTRY
from orchestrator.config import Settings
from orchestrator.inventory.models import Role
from orchestrator.playbook import PlaybookCatalog, Risk, load_playbooks


@pytest.fixture(scope="module")
def shipped() -> PlaybookCatalog:
    """Every shipped playbook, validated against the real registries (no admin directory)."""
    return load_playbooks(Settings(playbook_paths=[]))


# What each shipped playbook is (the brief they were written from), step by step.
EXPECTED: dict[str, dict[str, Any]] = {
    "rras-root-thumbprint": {
        "fixes": ("RRAS-AUTH-01", "RRAS-DRIFT-01"),
        "target": Role.RRAS,
        "risk": Risk.SERVICE_RESTART,
        "tenant_steps": [],
        "steps": [("set-root", "rras.set-root-certificate"), ("restart", "rras.restart-remoteaccess")],
        "verify": (("RRAS-AUTH-01", "RRAS-DRIFT-01"), 120, 5),
        "rollback": True,
        "rollout": (1, 10, True, "1"),
    },
    "republish-crl": {
        "fixes": ("CA-CRL-01",),
        "target": Role.CA,
        "risk": Risk.NONE,
        "tenant_steps": [],
        "steps": [("publish", "ca.publish-crl")],
        "verify": (("CA-CRL-01",), 120, 5),
        "rollback": False,
        "rollout": (1, 10, True, "0"),
    },
    "fix-route-prefixes": {
        "fixes": ("EP-ROUTE-01", "INT-PROF-02"),
        "target": Role.ENDPOINT,
        "risk": Risk.USER_DISRUPTION,
        "tenant_steps": [("intune-routes", "intune.fix-vpn-routes")],
        "steps": [("local-routes", "endpoint.fix-vpn-routes"), ("sync", "intune.sync-device")],
        "verify": (("EP-ROUTE-01",), 180, 3),
        "rollback": True,
        "rollout": (1, 25, False, "5%"),
    },
    "intune-resync": {
        "fixes": ("EP-PROF-01",),
        "target": Role.ENDPOINT,
        "risk": Risk.NONE,
        "tenant_steps": [],
        "steps": [("sync", "intune.sync-device")],
        "verify": (("EP-PROF-01",), 180, 3),
        "rollback": False,
        "rollout": (2, 50, False, "10%"),
    },
    "install-ca-chain": {
        "fixes": ("EP-CERT-04",),
        "target": Role.ENDPOINT,
        "risk": Risk.NONE,
        "tenant_steps": [],
        "steps": [("import", "endpoint.install-ca-certificates")],
        "verify": (("EP-CERT-04",), 120, 5),
        "rollback": True,
        "rollout": (1, 50, False, "10%"),
    },
    "device-cert-reenroll": {
        "fixes": ("EP-CERT-01", "EP-CERT-02", "EP-CERT-05"),
        "target": Role.ENDPOINT,
        "risk": Risk.NONE,
        "tenant_steps": [],
        "steps": [("enroll", "endpoint.cert-autoenroll")],
        "verify": (("EP-CERT-01", "EP-CERT-02", "EP-CERT-05"), 180, 5),
        "rollback": False,
        "rollout": (1, 25, False, "10%"),
    },
}


def test_the_package_ships_exactly_these_playbooks(shipped: PlaybookCatalog) -> None:
    files = sorted(
        item.name for item in resources.files("playbooks").iterdir() if item.name.endswith(".yaml")
    )
    assert files == sorted(f"{playbook_id}.yaml" for playbook_id in EXPECTED)
    assert {playbook.id for playbook in shipped} == set(EXPECTED)
    assert all(playbook.source.shipped for playbook in shipped)


@pytest.mark.parametrize("playbook_id", sorted(EXPECTED))
def test_shipped_playbook_is_what_it_should_be(shipped: PlaybookCatalog, playbook_id: str) -> None:
    playbook, expected = shipped.get(playbook_id), EXPECTED[playbook_id]
    assert playbook.fixes == expected["fixes"]
    assert (playbook.target, playbook.risk) == (expected["target"], expected["risk"])
    assert [(step.id, step.action) for step in playbook.tenant_steps] == expected["tenant_steps"]
    assert [(step.id, step.action) for step in playbook.steps] == expected["steps"]
    verify = playbook.verify
    assert (verify.checks, verify.timeout_s, verify.interval_s) == expected["verify"]
    assert playbook.rollback.on_verify_failure is expected["rollback"]
    rollout = playbook.rollout
    assert (rollout.canary, rollout.wave_size, rollout.serial, str(rollout.max_fail)) == expected["rollout"]


def test_conditions_of_the_shipped_steps(shipped: PlaybookCatalog) -> None:
    rras = shipped.get("rras-root-thumbprint")
    assert dict(rras.step("set-root").args) == {"thumbprint": "${params.root_thumbprint}"}
    assert rras.step("restart").when_changed == ("set-root",)
    assert rras.resolve_params() == {"root_thumbprint": ""}
    routes = shipped.get("fix-route-prefixes")
    assert routes.step("sync").when == "${params.sync}"
    assert routes.resolve_params() == {"sync": True}


def test_every_check_that_names_a_playbook_names_a_shipped_one_that_fixes_it(
    shipped: PlaybookCatalog,
) -> None:
    named = [(spec.id, spec.playbook) for spec in REGISTRY.specs() if spec.playbook is not None]
    assert named, "the catalogue names playbooks"
    for check_id, playbook_id in named:
        assert playbook_id in shipped, f"{check_id} names {playbook_id}, which is not shipped"
        assert check_id in shipped.get(playbook_id).fixes, f"{playbook_id} does not list {check_id} in fixes"


def test_every_shipped_playbook_is_named_by_a_check_it_fixes(shipped: PlaybookCatalog) -> None:
    for playbook in shipped:
        naming = {spec.id for spec in REGISTRY.specs() if spec.playbook == playbook.id}
        assert naming & set(playbook.fixes), f"no check points admins at {playbook.id}"


def test_playbook_runs_on_a_role_its_checks_read(shipped: PlaybookCatalog) -> None:
    specs = {spec.id: spec for spec in REGISTRY.specs()}
    for playbook in shipped:
        for check_id in playbook.fixes:
            roles = specs[check_id].roles
            assert not roles or playbook.target in roles, f"{playbook.id}: {check_id} reads {roles}"


def test_rollback_is_asked_only_where_a_step_can_be_rolled_back(shipped: PlaybookCatalog) -> None:
    registered = actions()
    for playbook in shipped:
        reversible = [step.id for step in playbook.steps if registered[step.action].reversible]
        if playbook.rollback.on_verify_failure:
            assert reversible, f"{playbook.id} asks for rollback but no host step is reversible"


def test_descriptions_name_the_error_codes_of_what_they_fix(shipped: PlaybookCatalog) -> None:
    specs = {spec.id: spec for spec in REGISTRY.specs()}
    for playbook in shipped:
        assert len(playbook.description) > 300, f"{playbook.id}: say what, why and the risk"
        assert "Risk" in playbook.description
        for check_id in playbook.fixes:
            for code in specs[check_id].error_codes:
                assert code in playbook.description, f"{playbook.id}: {check_id} explains {code}"
