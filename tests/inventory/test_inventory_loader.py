"""The YAML inventory source: merging, and one-line file:line errors for every kind of mistake."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from orchestrator.credentials.reference import CredentialRef
from orchestrator.errors import InventoryError, SourcePosition
from orchestrator.inventory import Role, Transport, WinRMAuth, load_inventory
from orchestrator.inventory.models import Inventory


def write(directory: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = directory / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def load_error(*paths: Path) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load_inventory(paths)
    error = caught.value
    assert "\n" not in str(error), "every inventory error is one line"
    return error


MINIMAL = """\
defaults:
  credential: vault:fleet-admin
hosts:
  ep-001:
    role: endpoint
    address: ep-001.corp.example.com
"""


# --- loading and merging ------------------------------------------------------------------------


def test_minimal_inventory_gets_model_defaults(tmp_path: Path) -> None:
    inventory = load_inventory([write(tmp_path, MINIMAL)])
    host = inventory["ep-001"]
    assert host.role is Role.ENDPOINT
    assert host.address == "ep-001.corp.example.com"
    assert host.credential == CredentialRef("vault", "fleet-admin")
    assert (host.winrm.transport, host.winrm.port, host.winrm.auth) == (
        Transport.HTTPS,
        5986,
        WinRMAuth.NEGOTIATE,
    )
    assert host.groups == ()
    assert host.tags == {}
    assert host.vars == {}


MERGE = """\
defaults:
  credential: vault:default
  winrm: {auth: ntlm, operation_timeout: 40, read_timeout: 60, username: from-defaults}
  tags: {owner: netops, site: none}
  vars: {a: defaults, b: defaults, c: defaults, d: defaults}
groups:
  first:
    credential: vault:first
    winrm: {auth: kerberos, connection_timeout: 5}
    tags: {site: ams, ring: broad}
    vars: {b: first, c: first, d: first}
  second:
    winrm: {connection_timeout: 7}
    tags: [ring=canary, vip]
    vars: {c: second, d: second}
hosts:
  ep-001:
    role: endpoint
    address: 10.0.0.1
    groups: [first, second]
    winrm: {username: from-host}
    vars: {d: host}
  ep-002:
    role: endpoint
    address: 10.0.0.2
    groups: [second, first]
  ep-003:
    role: endpoint
    address: 10.0.0.3
    credential: vault:own
"""


def test_merge_order_is_defaults_then_groups_in_listed_order_then_host(tmp_path: Path) -> None:
    inventory = load_inventory([write(tmp_path, MERGE)])
    host = inventory["ep-001"]
    assert host.credential == CredentialRef("vault", "first")
    assert host.winrm.auth is WinRMAuth.KERBEROS
    assert host.winrm.connection_timeout == 7
    assert (host.winrm.operation_timeout, host.winrm.read_timeout) == (40, 60)
    assert host.winrm.username == "from-host"
    assert host.tags == {"owner": "netops", "site": "ams", "ring": "canary", "vip": ""}
    assert host.vars == {"a": "defaults", "b": "first", "c": "second", "d": "host"}


def test_group_order_decides_between_groups(tmp_path: Path) -> None:
    host = load_inventory([write(tmp_path, MERGE)])["ep-002"]
    assert host.winrm.connection_timeout == 5
    assert host.tags["ring"] == "broad"
    assert host.vars["c"] == "first"
    assert host.groups == ("second", "first")


def test_host_credential_beats_defaults(tmp_path: Path) -> None:
    host = load_inventory([write(tmp_path, MERGE)])["ep-003"]
    assert host.credential == CredentialRef("vault", "own")
    assert host.winrm.auth is WinRMAuth.NTLM


def test_port_follows_the_merged_transport_unless_set(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults: {credential: vault:x}
        groups:
          plain: {winrm: {transport: http}}
        hosts:
          a: {role: endpoint, address: a.corp, groups: [plain]}
          b: {role: endpoint, address: b.corp, groups: [plain], winrm: {port: 8080}}
          c: {role: endpoint, address: c.corp, groups: [plain], winrm: {transport: https}}
        """,
    )
    inventory = load_inventory([path])
    assert inventory["a"].winrm.port == 5985
    assert inventory["b"].winrm.port == 8080
    assert inventory["c"].winrm.port == 5986


def test_files_merge_hosts_share_groups_and_keep_their_own_defaults(tmp_path: Path) -> None:
    shared = write(
        tmp_path,
        """\
        groups:
          ams: {tags: {site: ams}}
        """,
        "groups.yaml",
    )
    site = write(
        tmp_path,
        """\
        defaults: {credential: vault:ams-admin}
        hosts:
          ep-001: {role: endpoint, address: ep-001.corp, groups: [ams]}
        """,
        "ams.yaml",
    )
    other = write(
        tmp_path,
        """\
        defaults: {credential: vault:fra-admin}
        hosts:
          ep-101: {role: endpoint, address: ep-101.corp}
        """,
        "fra.yaml",
    )
    inventory = load_inventory([shared, site, other])
    assert [host.name for host in inventory] == ["ep-001", "ep-101"]
    assert inventory["ep-001"].tags == {"site": "ams"}
    assert inventory["ep-001"].credential.name == "ams-admin"
    assert inventory["ep-101"].credential.name == "fra-admin"
    assert [group.name for group in inventory.groups] == ["ams"]


def test_inventory_lookup_ignores_case_and_groups_keep_only_their_own_settings(tmp_path: Path) -> None:
    inventory = load_inventory([write(tmp_path, MERGE)])
    assert isinstance(inventory, Inventory)
    assert inventory.get("EP-001") is inventory["ep-001"]
    assert "Ep-002" in inventory
    assert inventory.get("nope") is None
    group = inventory.group("FIRST")
    assert group is not None
    assert dict(group.winrm) == {"auth": WinRMAuth.KERBEROS, "connection_timeout": 5}
    assert group.credential == CredentialRef("vault", "first")
    assert [host.name for host in inventory.members("second")] == ["ep-001", "ep-002"]


def test_ca_bundle_is_relative_to_the_file_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "site" / "pki").mkdir(parents=True)
    (tmp_path / "site" / "pki" / "root.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = write(
        tmp_path / "site",
        """\
        defaults: {credential: vault:x, winrm: {ca_bundle: pki/root.pem}}
        hosts:
          ep-001: {role: endpoint, address: ep-001.corp}
        """,
    )
    bundle = load_inventory([path])["ep-001"].winrm.ca_bundle
    assert bundle is not None
    assert bundle.samefile(tmp_path / "site" / "pki" / "root.pem")


def test_empty_sections_are_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\ngroups:\nhosts:\n")
    assert len(load_inventory([path])) == 0


def test_no_files_is_an_empty_inventory() -> None:
    assert len(load_inventory([])) == 0


# --- every validation error names file:line and the field -----------------------------------------


def test_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts:\n  ep-001:\n    role: endpoint\n   address: x\n")
    error = load_error(path)
    assert error.position == SourcePosition(path, 4, 4)
    assert str(error).startswith(f"{path}:4:4: invalid YAML:")


def test_unknown_role_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("role: endpoint", "role: vpn"))
    assert str(load_error(path)) == (
        f"{path}:5: hosts.ep-001.role: unknown value 'vpn'; expected one of 'endpoint', 'rras' or 'ca'"
    )


def test_duplicate_host_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  ep-001:\n    role: rras\n    address: x.corp\n")
    assert (
        str(load_error(path)) == f"{path}:7: hosts.ep-001: duplicate key 'ep-001' (first defined at line 4)"
    )


def test_duplicate_host_differing_only_in_case(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  EP-001:\n    role: rras\n    address: x.corp\n")
    assert str(load_error(path)) == f"{path}:7: hosts.EP-001: host 'EP-001' is already defined at {path}:4"


def test_duplicate_host_across_files_names_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, MINIMAL, "a.yaml")
    second = write(tmp_path, "# second file\n" + MINIMAL, "b.yaml")
    error = load_error(first, second)
    assert str(error) == f"{second}:5: hosts.ep-001: host 'ep-001' is already defined at {first}:4"
    assert error.position == SourcePosition(second, 5)


def test_duplicate_group_across_files_names_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "groups:\n  ams: {}\n", "a.yaml")
    second = write(tmp_path, "groups:\n  fra: {}\n  AMS: {}\n", "b.yaml")
    assert (
        str(load_error(first, second))
        == f"{second}:3: groups.AMS: group 'AMS' is already defined at {first}:2"
    )


def test_missing_address(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    address: ep-001.corp.example.com\n", ""))
    assert str(load_error(path)) == f"{path}:4: hosts.ep-001.address: is required"


@pytest.mark.parametrize("address", ["ep_001.corp", "10.0.0.256", "-ep.corp", "fe80::1::2", "a..b"])
def test_bad_address(tmp_path: Path, address: str) -> None:
    path = write(tmp_path, MINIMAL.replace("ep-001.corp.example.com", f"'{address}'"))
    assert str(load_error(path)) == (
        f"{path}:6: hosts.ep-001.address: invalid address '{address}': "
        "expected a host name, FQDN, IPv4 or IPv6 address"
    )


def test_unknown_host_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("address:", "adress:"))
    error = load_error(path)
    assert error.position == SourcePosition(path, 6)
    assert error.field == "hosts.ep-001.adress"
    assert error.message.startswith("unknown key; expected one of: ")
    assert error.message.endswith("did you mean 'address'?")


def test_unknown_winrm_key_in_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("defaults:\n", "defaults:\n  winrm:\n    prot: 5986\n"))
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 3), "defaults.winrm.prot")
    assert "did you mean 'port'?" in error.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "host:\n  ep-002: {}\n")
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 7), "host")
    assert "did you mean 'hosts'?" in error.message


def test_unknown_group_points_at_the_reference(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults: {credential: vault:x}
        groups:
          ams: {}
          fra: {}
        hosts:
          ep-001:
            role: endpoint
            address: ep-001.corp
            groups:
              - ams
              - frankfurt
        """,
    )
    assert str(load_error(path)) == (
        f"{path}:11: hosts.ep-001.groups[1]: unknown group 'frankfurt'; defined groups: ams, fra"
    )


def test_group_listed_twice(tmp_path: Path) -> None:
    path = write(tmp_path, "groups: {ams: {}}\n" + MINIMAL + "    groups: [ams, AMS]\n")
    assert str(load_error(path)) == f"{path}:8: hosts.ep-001.groups[1]: group 'AMS' is listed twice"


def test_basic_auth_over_http_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    winrm:\n      transport: http\n      auth: basic\n")
    assert str(load_error(path)) == (
        f"{path}:9: hosts.ep-001.winrm.auth: basic auth over plain http sends the password in the clear; "
        "use transport: https, or set allow_unencrypted: true if you accept that"
    )


def test_basic_auth_from_defaults_over_http_from_host_points_at_the_auth_line(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("defaults:\n", "defaults:\n  winrm: {auth: basic}\n")
        + "    winrm: {transport: http}\n"
    )
    path = write(tmp_path, text)
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 2), "defaults.winrm.auth")
    assert error.message.endswith("(for host ep-001)")


def test_basic_auth_over_http_allowed_when_explicitly_unencrypted(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    winrm: {transport: http, auth: basic, allow_unencrypted: true}\n")
    winrm = load_inventory([path])["ep-001"].winrm
    assert (winrm.transport, winrm.port, winrm.auth) == (Transport.HTTP, 5985, WinRMAuth.BASIC)


def test_certificate_auth_needs_https(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    winrm: {transport: http, auth: certificate}\n")
    assert (
        str(load_error(path)) == f"{path}:7: hosts.ep-001.winrm.auth: certificate auth needs transport: https"
    )


def test_read_timeout_must_exceed_operation_timeout(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    winrm:\n      read_timeout: 20\n")
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 8), "hosts.ep-001.winrm.read_timeout")


def test_missing_credential(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("defaults:\n  credential: vault:fleet-admin\n", ""))
    assert str(load_error(path)) == (
        f"{path}:2: hosts.ep-001.credential: no credential: set 'credential' on the host, "
        "on one of its groups or in the file's defaults"
    )


def test_secret_instead_of_a_reference_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("vault:fleet-admin", "Hunter2!"))
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 2), "defaults.credential")
    assert "Hunter2" not in str(error)


def test_env_credential_needs_a_username(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("vault:fleet-admin", "env:FLEET_PASSWORD"))
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 2), "defaults.credential")
    assert "set winrm.username" in error.message


def test_missing_ca_bundle(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    winrm:\n      ca_bundle: pki/missing.pem\n")
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 8), "hosts.ep-001.winrm.ca_bundle")
    assert error.message == f"CA bundle file not found: {tmp_path / 'pki' / 'missing.pem'}"


def test_missing_ca_bundle_in_an_unused_group_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  lab:\n    winrm: {ca_bundle: nope.pem}\n" + MINIMAL)
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 3), "groups.lab.winrm.ca_bundle")


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("", 1, None, "the file is empty; an inventory needs a 'hosts' mapping"),
        ("- ep-001\n", 1, None, "must be a mapping of keys to values"),
        ("hosts:\n  ep-001:\n", 2, "hosts.ep-001", "must be a mapping of keys to values"),
        ("hosts: [ep-001]\n", 1, "hosts", "must be a mapping of keys to values"),
        ("hosts:\n  'ep 001': {}\n", 2, "hosts.ep 001", "invalid name 'ep 001'"),
        ("hosts:\n  a: {role: ca, address: a.corp, groups: ams}\n", 2, "hosts.a.groups", "must be a list"),
        (
            "hosts:\n  a:\n    role: ca\n    address: a.corp\n    tags: {ring: yes}\n",
            5,
            "hosts.a.tags.ring",
            "valid string",
        ),
        (
            "hosts:\n  a:\n    role: ca\n    address: a.corp\n    tags: ['=x']\n",
            5,
            "hosts.a.tags",
            "tag '=x' has no key",
        ),
        (
            "hosts:\n  a:\n    role: ca\n    address: a.corp\n    winrm: {port: 70000}\n",
            5,
            "hosts.a.winrm.port",
            "less than or equal",
        ),
        (
            "hosts:\n  a:\n    role: ca\n    address: a.corp\n    winrm: {auth: bsic}\n",
            5,
            "hosts.a.winrm.auth",
            "unknown value 'bsic'",
        ),
    ],
)
def test_shape_errors(tmp_path: Path, text: str, line: int, field: str | None, message: str) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, line), field)
    assert message in error.message


def test_the_error_nearest_the_top_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        hosts:
          ep-001:
            role: endpoint
            address: ok.corp
            winrm: {port: 0}
          ep-000:
            role: nope
        defaults:
          credential: not-a-reference
        """,
    )
    error = load_error(path)
    assert (error.position, error.field) == (SourcePosition(path, 5), "hosts.ep-001.winrm.port")


def test_missing_file(tmp_path: Path) -> None:
    assert str(load_error(tmp_path / "nope.yaml")) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_error_to_dict_carries_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("role: endpoint", "role: vpn"))
    data = load_error(path).to_dict()
    assert data["kind"] == "inventory"
    assert (data["file"], data["line"], data["field"]) == (str(path), 5, "hosts.ep-001.role")
