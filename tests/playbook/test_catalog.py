"""The catalogue: shipped playbooks, admin directories that add or replace, lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.actions.model import Action, ArgSpec, TargetKind
from orchestrator.checks import REGISTRY
from orchestrator.config import Settings
from orchestrator.errors import PlaybookError, SourcePosition
from orchestrator.playbook import Playbook, PlaybookCatalog, Registries, load_playbooks
from orchestrator.playbook.catalog import admin_files
from tests.playbook.support import ACTIONS, VALID, FakeAction, edited, write

SHIPPED_IDS = {
    "device-cert-reenroll",
    "fix-route-prefixes",
    "install-ca-chain",
    "intune-resync",
    "republish-crl",
    "rras-root-thumbprint",
}


def own_playbook(playbook_id: str, *, fixes: str = "RRAS-AUTH-01") -> str:
    """A small admin playbook with its own id."""
    return f"""\
id: {playbook_id}
description: an admin's own playbook
fixes: [{fixes}]
target: rras
risk: none
steps:
  - id: restart
    action: rras.restart-remoteaccess
verify:
  checks: [{fixes}]
"""


def stub_registries() -> Registries:
    """The real checks, and stand-ins for every action the shipped playbooks name.

    The catalogue's behaviour does not depend on the actions' implementations; the real action
    registry is checked against the shipped files in test_shipped.py.
    """

    def stand_in(name: str, kind: TargetKind, *args: ArgSpec) -> FakeAction:
        action: FakeAction = type(
            name, (FakeAction,), {"name": name, "target_kind": kind, "arguments": args}
        )()
        return action

    actions: dict[str, Action] = dict(ACTIONS)
    for name in ("ca.publish-crl", "endpoint.fix-vpn-routes", "endpoint.install-ca-certificates",
                 "endpoint.cert-autoenroll"):  # fmt: skip
        actions[name] = stand_in(name, TargetKind.HOST)
    return Registries(actions=actions, check_ids=frozenset(spec.id for spec in REGISTRY.specs()))


@pytest.fixture(scope="module")
def registries() -> Registries:
    return stub_registries()


def catalog(registries: Registries, *directories: Path) -> PlaybookCatalog:
    return load_playbooks(Settings(playbook_paths=list(directories)), registries=registries)


def test_shipped_playbooks_only(registries: Registries) -> None:
    found = catalog(registries)
    assert {playbook.id for playbook in found} == SHIPPED_IDS
    assert [playbook.id for playbook in found] == sorted(SHIPPED_IDS)
    for playbook in found:
        assert playbook.source.shipped
        assert playbook.source.label == "shipped"
        assert playbook.source.path is not None
        assert playbook.source.path.name == f"{playbook.id}.yaml"
        assert playbook.source.replaces is None


def test_admin_directory_adds_playbooks(registries: Registries, tmp_path: Path) -> None:
    mine = write(tmp_path, own_playbook("restart-rras"), "restart-rras.yml")
    write(tmp_path, "not: a playbook\n", ".hidden.yaml")
    write(tmp_path, "notes", "README.md")
    found = catalog(registries, tmp_path)
    assert len(found) == len(SHIPPED_IDS) + 1
    added = found.get("restart-rras")
    assert (added.source.path, added.source.shipped, added.source.label) == (mine, False, str(mine))


def test_admin_playbook_with_a_shipped_id_replaces_it_and_says_so(
    registries: Registries, tmp_path: Path
) -> None:
    shipped = catalog(registries).get("rras-root-thumbprint")
    mine = write(tmp_path, VALID.replace("Pin the root RRAS accepts.", "Our own way."))
    found = catalog(registries, tmp_path)
    replaced = found.get("rras-root-thumbprint")
    assert replaced.description == "Our own way."
    assert replaced.source.path == mine
    assert replaced.source.replaces == shipped.source.path
    assert replaced.summary_dict()["source"] == str(mine)
    assert replaced.summary_dict()["replaces_shipped"] is True
    assert len(found) == len(SHIPPED_IDS)


def test_two_admin_files_with_one_id_name_both(registries: Registries, tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first = write(first_dir, own_playbook("restart-rras"), "restart-rras.yaml")
    second = write(second_dir, "# the same id again\n" + own_playbook("restart-rras"), "restart-rras.yaml")
    with pytest.raises(PlaybookError) as caught:
        catalog(registries, first_dir, second_dir)
    assert str(caught.value) == f"{second}:2: id: playbook 'restart-rras' is already defined in {first}:1"
    assert caught.value.position == SourcePosition(second, 2)


def test_yaml_and_yml_with_one_id_in_one_directory(registries: Registries, tmp_path: Path) -> None:
    write(tmp_path, own_playbook("restart-rras"), "restart-rras.yaml")
    write(tmp_path, own_playbook("restart-rras"), "restart-rras.yml")
    with pytest.raises(PlaybookError) as caught:
        catalog(registries, tmp_path)
    assert "restart-rras.yml" in str(caught.value).split(":")[0]
    assert caught.value.message.endswith(f"already defined in {tmp_path / 'restart-rras.yaml'}:1")


def test_broken_admin_playbook_fails_the_catalogue(registries: Registries, tmp_path: Path) -> None:
    path = write(tmp_path, edited("risk: service-restart", "risk: high"))
    with pytest.raises(PlaybookError) as caught:
        catalog(registries, tmp_path)
    assert str(caught.value).startswith(f"{path}:5: risk: unknown value 'high'")


@pytest.mark.parametrize(("make", "problem"), [("missing", "not found"), ("file", "is not a directory")])
def test_admin_path_must_be_a_directory(
    registries: Registries, tmp_path: Path, make: str, problem: str
) -> None:
    path = tmp_path / "playbooks"
    if make == "file":
        path.write_text("x")
    with pytest.raises(PlaybookError) as caught:
        catalog(registries, path)
    assert str(caught.value) == f"{path}: playbook_paths: playbook directory {problem}"


def test_admin_files_are_taken_in_directory_order_then_by_name(tmp_path: Path) -> None:
    first, second = tmp_path / "z", tmp_path / "a"
    first.mkdir()
    second.mkdir()
    paths = [write(first, "", "b.yaml"), write(first, "", "a.yml"), write(second, "", "c.yaml")]
    assert admin_files([first, second]) == [paths[1], paths[0], paths[2]]


def test_get_suggests_the_closest_id(registries: Registries) -> None:
    with pytest.raises(PlaybookError) as caught:
        catalog(registries).get("republish-crls")
    assert caught.value.field == "ID"
    assert caught.value.message == (
        f"unknown playbook 'republish-crls' (known: {', '.join(sorted(SHIPPED_IDS))}); "
        "did you mean 'republish-crl'?"
    )


def test_for_check(registries: Registries, tmp_path: Path) -> None:
    write(tmp_path, own_playbook("restart-rras"), "restart-rras.yaml")
    found = catalog(registries, tmp_path)
    assert [playbook.id for playbook in found.for_check("RRAS-AUTH-01")] == [
        "restart-rras",
        "rras-root-thumbprint",
    ]
    assert [playbook.id for playbook in found.for_check("EP-CERT-04")] == ["install-ca-chain"]
    assert found.for_check("EP-OS-01") == ()
    assert "install-ca-chain" in found
    assert "nope" not in found


def test_catalogue_is_immutable(registries: Registries) -> None:
    found = catalog(registries)
    assert isinstance(found.playbooks, tuple)
    assert all(isinstance(playbook, Playbook) for playbook in found)
    with pytest.raises(AttributeError):
        found.playbooks = ()  # type: ignore[misc]
