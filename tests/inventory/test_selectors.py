"""``--limit`` selectors: terms, operators, precedence, globs, rendering and error columns."""

from __future__ import annotations

import pytest

from orchestrator.errors import SelectorError
from orchestrator.inventory import Host, Role, parse_selector, select
from orchestrator.inventory.selectors import (
    AddressTerm,
    And,
    GroupTerm,
    NameTerm,
    Not,
    Or,
    RoleTerm,
    TagTerm,
    glob_matches,
)


def make_host(name: str, role: str, address: str, groups: tuple[str, ...] = (), **tags: str) -> Host:
    return Host(
        name=name,
        role=Role(role),
        address=address,
        credential="vault:x",  # validated into a CredentialRef
        groups=groups,
        tags=tags,
    )


HOSTS = (
    make_host("ep-001", "endpoint", "ep-001.ams.corp", ("ams",), ring="canary", site="ams"),
    make_host("ep-002", "endpoint", "ep-002.ams.corp", ("ams",), site="ams"),
    make_host("EP-101", "endpoint", "10.20.0.101", ("fra", "kiosks"), ring="Pilot", site="fra"),
    make_host("vpn-ams-01", "rras", "vpn-ams-01.corp", ("ams", "servers"), site="ams"),
    make_host("vpn-fra-01", "rras", "vpn-fra-01.corp", ("fra", "servers"), site="fra", vip=""),
    make_host("ca-01", "ca", "fe80::10", ("servers",)),
)


def names(expression: str) -> list[str]:
    return [host.name for host in select(HOSTS, parse_selector(expression))]


# --- terms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("role:rras", ["vpn-ams-01", "vpn-fra-01"]),
        ("role:CA", ["ca-01"]),
        ("tag:ring", ["ep-001", "EP-101"]),
        ("tag:vip", ["vpn-fra-01"]),
        ("tag:ring=canary", ["ep-001"]),
        ("tag:ring=pilot", ["EP-101"]),
        ("tag:RING=p*", ["EP-101"]),
        ("tag:site=a?s", ["ep-001", "ep-002", "vpn-ams-01"]),
        ("tag:vip=*", ["vpn-fra-01"]),
        ("group:servers", ["vpn-ams-01", "vpn-fra-01", "ca-01"]),
        ("group:KIOSK*", ["EP-101"]),
        ("name:ep-00?", ["ep-001", "ep-002"]),
        ("ep-*", ["ep-001", "ep-002", "EP-101"]),
        ("ep-[01]0[12]", ["ep-001", "ep-002", "EP-101"]),
        ("vpn-*-01", ["vpn-ams-01", "vpn-fra-01"]),
        ("address:10.20.*", ["EP-101"]),
        ("address:*.AMS.corp", ["ep-001", "ep-002"]),
        ("address:fe80::*", ["ca-01"]),
        ("ep-001", ["ep-001"]),
        ("EP-001", ["ep-001"]),
        ("nothing", []),
    ],
)
def test_terms(expression: str, expected: list[str]) -> None:
    assert names(expression) == expected


def test_glob_is_whole_value_and_ignores_case() -> None:
    assert glob_matches("ep-0*", "EP-001")
    assert not glob_matches("ep-0", "ep-001")
    assert not glob_matches("p-001", "ep-001")


# --- operators and precedence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("role:endpoint and tag:site=ams", ["ep-001", "ep-002"]),
        ("role:ca or tag:ring=canary", ["ep-001", "ca-01"]),
        ("not group:servers", ["ep-001", "ep-002", "EP-101"]),
        ("role:endpoint and not tag:ring=canary", ["ep-002", "EP-101"]),
        ("ROLE:endpoint AND NOT tag:ring=canary", ["ep-002", "EP-101"]),
        # and binds tighter than or: ca-01, then the endpoints in ams
        ("role:ca or role:endpoint and tag:site=ams", ["ep-001", "ep-002", "ca-01"]),
        ("(role:ca or role:endpoint) and tag:site=ams", ["ep-001", "ep-002"]),
        # not binds tighter than and
        ("not role:endpoint and tag:site=fra", ["vpn-fra-01"]),
        ("not (role:endpoint and tag:site=fra)", ["ep-001", "ep-002", "vpn-ams-01", "vpn-fra-01", "ca-01"]),
        ("not not role:ca", ["ca-01"]),
        ("((role:ca))", ["ca-01"]),
        ("(role:ca)or(role:rras)", ["vpn-ams-01", "vpn-fra-01", "ca-01"]),
        ("group:ams and group:servers or tag:vip", ["vpn-ams-01", "vpn-fra-01"]),
    ],
)
def test_operators_and_precedence(expression: str, expected: list[str]) -> None:
    assert names(expression) == expected


def test_parse_builds_left_grouped_binary_tree() -> None:
    a, b, c = NameTerm("a"), NameTerm("b"), NameTerm("c")
    assert parse_selector("a or b and not c") == Or(a, And(b, Not(c)))
    assert parse_selector("a and b and c") == And(And(a, b), c)
    assert parse_selector("a or b or c") == Or(Or(a, b), c)
    assert parse_selector("role:rras and tag:site=ams") == And(RoleTerm(Role.RRAS), TagTerm("site", "ams"))


def test_select_without_selector_keeps_all_in_order() -> None:
    assert select(HOSTS, None) == HOSTS


def test_operators_compose_trees_in_code() -> None:
    combined = RoleTerm(Role.ENDPOINT) & ~TagTerm("ring", "canary") | GroupTerm("servers")
    assert combined == Or(And(RoleTerm(Role.ENDPOINT), Not(TagTerm("ring", "canary"))), GroupTerm("servers"))


# --- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "canonical"),
    [
        ("ROLE:RRAS", "role:rras"),
        ("Tag:Ring=Canary", "tag:Ring=Canary"),
        ("ep-0*", "ep-0*"),
        ("name:ep-0*", "ep-0*"),
        ("name:AND", "name:AND"),
        ("name:a:b", "name:a:b"),
        ("group:ams  AND   address:10.*", "group:ams and address:10.*"),
        ("(a and b) or c", "a and b or c"),
        ("a and (b or c)", "a and (b or c)"),
        ("a and (b and c)", "a and (b and c)"),
        ("(a or b) or c", "a or b or c"),
        ("not (a or b)", "not (a or b)"),
        ("not not a", "not not a"),
        ("(not a) and b", "not a and b"),
    ],
)
def test_str_renders_a_canonical_expression_that_parses_back(expression: str, canonical: str) -> None:
    selector = parse_selector(expression)
    assert str(selector) == canonical
    assert parse_selector(canonical) == selector


@pytest.mark.parametrize(
    "build",
    [
        lambda: NameTerm("two words"),
        lambda: GroupTerm(""),
        lambda: AddressTerm("a(b"),
        lambda: TagTerm("bad key"),
        lambda: TagTerm("ring", "x y"),
    ],
)
def test_trees_that_could_not_render_are_refused(build: object) -> None:
    with pytest.raises(ValueError, match=r"one word|invalid tag key"):
        build()  # type: ignore[operator]


# --- errors point at the offending token ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "column", "message"),
    [
        ("", 1, "empty selector; expected a term"),
        ("   ", 1, "empty selector; expected a term"),
        ("role:ca and site:ams", 13, "unknown selector prefix 'site:'; expected one of role:, tag:, group:"),
        ("role:vpn", 1, "unknown role 'vpn'; expected one of endpoint, rras, ca"),
        ("ep-1 or role:", 9, "empty value after 'role:'"),
        ("group:", 1, "empty value after 'group:'"),
        ("tag:=x", 1, "empty tag key"),
        ("tag:ring=", 1, "empty tag value after '='"),
        ("tag:ri*g", 1, "invalid tag key 'ri*g'"),
        ("(role:ca or ep-1", 1, "unbalanced '(': expected ')'"),
        ("a and ((b)", 7, "unbalanced '(': expected ')'"),
        ("role:ca)", 8, "unbalanced ')': no '(' to close"),
        ("(a) )", 5, "unbalanced ')'"),
        ("role:ca and", 9, "expected a term after 'and'"),
        ("role:ca or not", 12, "expected a term after 'not'"),
        ("a and (", 7, "expected a term after '('"),
        ("and role:ca", 1, "expected a term such as role:endpoint, found 'and'"),
        ("a or or b", 6, "expected a term such as role:endpoint, found 'or'"),
        ("()", 2, "expected a term such as role:endpoint, found ')'"),
        ("role:ca role:rras", 9, "unexpected 'role:rras'; expected 'and', 'or' or the end"),
        ("(a b)", 4, "unexpected 'b'; expected 'and', 'or' or ')'"),
        ("a not b", 3, "unexpected 'not'"),
    ],
)
def test_error_columns(expression: str, column: int, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(expression)
    error = caught.value
    assert (error.column, error.expression) == (column, expression)
    assert error.message.startswith(message)
    assert error.field == "--limit"
    assert error.pointer().splitlines()[1] == "  " + " " * (column - 1) + "^"
