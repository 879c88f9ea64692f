"""Inventory models on their own: what they accept, what they refuse, how they serialise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.credentials.reference import CredentialRef
from orchestrator.inventory import Group, Host, Inventory, Role, Transport, WinRMAuth, WinRMSettings
from orchestrator.inventory.models import BASE_DIR, PARTIAL


def host(**fields: Any) -> Host:
    values: dict[str, Any] = {
        "name": "ep-001",
        "role": "endpoint",
        "address": "ep-001.corp",
        "credential": "vault:x",
    }
    return Host.model_validate({**values, **fields})


@pytest.mark.parametrize(
    "address",
    [
        "ep-001",
        "ep-001.corp.example.com",
        "EP-001.Corp.Example.COM.",
        "10.0.0.1",
        "fe80::1",
        "2001:db8::10",
        "xn--bcher-kva.example",
    ],
)
def test_valid_addresses(address: str) -> None:
    assert host(address=address).address == address


@pytest.mark.parametrize(
    "address",
    ["", "ep_001", "a..b", "-ep.corp", "ep-.corp", "10.0.0.256", "1.2.3", "a" * 64 + ".corp", "ep 001"],
)
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(ValidationError, match="invalid address"):
        host(address=address)


def test_winrm_defaults_are_https_negotiate_on_5986() -> None:
    winrm = WinRMSettings()
    assert (winrm.transport, winrm.port, winrm.auth) == (Transport.HTTPS, 5986, WinRMAuth.NEGOTIATE)
    assert winrm.cert_validation is True
    assert winrm.allow_unencrypted is False
    assert winrm.configuration_name == "Microsoft.PowerShell"
    assert winrm.read_timeout > winrm.operation_timeout


def test_http_defaults_to_port_5985() -> None:
    assert WinRMSettings(transport=Transport.HTTP).port == 5985


def test_basic_over_http_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="password in the clear"):
        WinRMSettings(transport=Transport.HTTP, auth=WinRMAuth.BASIC)
    assert WinRMSettings(transport=Transport.HTTP, auth=WinRMAuth.BASIC, allow_unencrypted=True).port == 5985
    assert WinRMSettings(auth=WinRMAuth.BASIC).transport is Transport.HTTPS


def test_partial_validation_checks_fields_but_not_combinations() -> None:
    layer = WinRMSettings.model_validate({"transport": "http", "auth": "basic"}, context={PARTIAL: True})
    assert layer.model_dump(exclude_unset=True) == {"transport": Transport.HTTP, "auth": WinRMAuth.BASIC}
    with pytest.raises(ValidationError):
        WinRMSettings.model_validate({"port": "many"}, context={PARTIAL: True})


def test_ca_bundle_is_joined_to_the_base_dir_from_the_context(tmp_path: Path) -> None:
    winrm = WinRMSettings.model_validate({"ca_bundle": "pki/root.pem"}, context={BASE_DIR: tmp_path})
    assert winrm.ca_bundle == tmp_path / "pki" / "root.pem"
    elsewhere = tmp_path.parent / "elsewhere.pem"  # absolute paths stay as they are
    assert WinRMSettings.model_validate(
        {"ca_bundle": str(elsewhere)}, context={BASE_DIR: tmp_path}
    ).ca_bundle == (elsewhere)


@pytest.mark.parametrize("name", ["", "JEA Config", "a/b"])
def test_bad_configuration_name(name: str) -> None:
    with pytest.raises(ValidationError):
        WinRMSettings(configuration_name=name)


def test_unknown_key_names_the_key_and_suggests() -> None:
    with pytest.raises(ValidationError) as caught:
        WinRMSettings.model_validate({"trasnport": "https"})
    error = caught.value.errors()[0]
    assert error["ctx"] == {"field": "trasnport"}
    assert "did you mean 'transport'?" in error["msg"]


def test_tags_as_list_or_mapping() -> None:
    assert host(tags=["ring=canary", "vip", "site=ams=x"]).tags == {
        "ring": "canary",
        "vip": "",
        "site": "ams=x",
    }
    assert host(tags={"wave": 2, "ratio": 0.5}).tags == {"wave": "2", "ratio": "0.5"}


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["ring=a", "ring=b"], "given twice"),
        ([3], "must be 'key=value'"),
        ({"ring": True}, "valid string"),
        ({"bad key": "x"}, "invalid tag key"),
    ],
)
def test_bad_tags(tags: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        host(tags=tags)


def test_tag_lookup_ignores_case() -> None:
    subject = host(tags={"Ring": "canary", "vip": ""})
    assert subject.tag("ring") == "canary"
    assert subject.tag("VIP") == ""
    assert subject.tag("site") is None


def test_credential_is_a_reference_and_serialises_as_text() -> None:
    subject = host(credential="env:FLEET_PW", winrm={"username": "CORP\\svc"})
    assert subject.credential == CredentialRef("env", "FLEET_PW")
    assert subject.model_dump(mode="json")["credential"] == "env:FLEET_PW"
    assert host(credential=CredentialRef("vault", "y")).credential.name == "y"


def test_env_credential_without_username_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"set winrm\.username") as caught:
        host(credential="env:FLEET_PW")
    assert caught.value.errors()[0]["ctx"] == {"field": "credential"}


def test_host_is_immutable() -> None:
    subject = host()
    with pytest.raises(ValidationError):
        subject.role = Role.CA  # type: ignore[misc]


def test_inventory_sorts_and_refuses_duplicate_names() -> None:
    inventory = Inventory(hosts=(host(name="b"), host(name="A")), groups=(Group(name="ams"),))
    assert [h.name for h in inventory] == ["A", "b"]
    assert len(inventory) == 2
    assert inventory.group("AMS") == Group(name="ams")
    with pytest.raises(ValueError, match="appears twice"):
        Inventory(hosts=(host(name="a"), host(name="A")))
    with pytest.raises(KeyError):
        inventory["c"]
