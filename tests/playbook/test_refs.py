"""References: parsing, type-preserving and interpolated resolution, missing facts, ``when``."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import PlaybookError
from orchestrator.playbook import Step, evaluate_when, parse_template, resolve_args
from orchestrator.playbook.refs import Reference, ReferenceSyntaxError, Scope, resolve_value
from tests.playbook.support import edited, load

FACTS: dict[str, Any] = {
    "fqdn": "ep-001.corp.example.com",
    "os": {"build": 22631, "hotpatch": False},
    "certificates": [{"thumbprint": "AB" * 20, "stores": ["My"]}, {"thumbprint": "CD" * 20}],
    "profile": None,
}
PARAMS = MappingProxyType({"name": "RemoteAccess", "tries": 3, "restart": True, "hosts": ("a", "b")})


def step(**args: Any) -> Step:
    return Step(id="s", action="test.typed", args=args)


# --- resolution -----------------------------------------------------------------------------------


def test_exact_references_keep_the_referenced_type() -> None:
    resolved = resolve_args(
        step(
            text="${params.name}",
            count="${params.tries}",
            flag="${params.restart}",
            names="${params.hosts}",
            build="${facts.os.build}",
            certs="${facts.certificates}",
            os="${facts.os}",
            profile="${facts.profile}",
        ),
        PARAMS,
        FACTS,
    )
    assert resolved == {
        "text": "RemoteAccess",
        "count": 3,
        "flag": True,
        "names": ("a", "b"),
        "build": 22631,
        "certs": ({"thumbprint": "AB" * 20, "stores": ("My",)}, {"thumbprint": "CD" * 20}),
        "os": {"build": 22631, "hotpatch": False},
        "profile": None,
    }
    assert isinstance(resolved["os"], MappingProxyType)  # frozen like every other value


def test_embedded_references_are_interpolated_as_text() -> None:
    resolved = resolve_args(
        step(
            text="CN=${facts.fqdn}, build ${facts.os.build}, hotpatch ${facts.os.hotpatch}, ${params.tries}x"
        ),
        PARAMS,
        FACTS,
    )
    assert resolved == {"text": "CN=ep-001.corp.example.com, build 22631, hotpatch false, 3x"}


def test_list_items_are_resolved_one_by_one() -> None:
    resolved = resolve_args(step(names=("${facts.fqdn}", "x-${params.name}", "plain")), PARAMS, FACTS)
    assert resolved == {"names": ("ep-001.corp.example.com", "x-RemoteAccess", "plain")}


def test_list_index_in_a_facts_path() -> None:
    assert resolve_args(step(text="${facts.certificates.1.thumbprint}"), PARAMS, FACTS) == {"text": "CD" * 20}


def test_literal_values_pass_unchanged() -> None:
    args = {"text": "no references", "count": 3, "flag": False, "names": ("a",), "escaped": "$${params.x}"}
    assert resolve_args(step(**args), PARAMS, FACTS) == {**args, "escaped": "${params.x}"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${facts.os.kernel}", "${facts.os.kernel}: no fact 'kernel' under os"),
        ("${facts.nope}", "${facts.nope}: no fact 'nope' under the top of the facts document"),
        (
            "${facts.certificates.5.thumbprint}",
            "${facts.certificates.5.thumbprint}: no fact '5' under certificates",
        ),
        ("${facts.fqdn.length}", "${facts.fqdn.length}: no fact 'length' under fqdn"),
        ("${facts.profile.name}", "${facts.profile.name}: no fact 'name' under profile"),
        ("x${facts.os}", "${facts.os} is a mapping and cannot be embedded in text; make it the whole value"),
        (
            "x${facts.profile}",
            "${facts.profile} is null and cannot be embedded in text; make it the whole value",
        ),
        (
            "x${params.hosts}",
            "${params.hosts} is a list and cannot be embedded in text; make it the whole value",
        ),
        ("${params.missing}", "${params.missing}: no value for parameter 'missing'"),
    ],
)
def test_unresolvable_references_name_the_step_argument_and_path(value: str, message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        resolve_args(step(text=value), PARAMS, FACTS)
    assert (caught.value.field, caught.value.message) == ("steps.s.args.text", message)
    assert str(caught.value) == f"steps.s.args.text: {message}"


def test_resolution_of_a_loaded_playbook(tmp_path: Path) -> None:
    playbook = load(tmp_path)
    params = playbook.resolve_params({"root_thumbprint": "ab" * 20})
    assert resolve_args(playbook.steps[0], params, {}) == {"thumbprint": "ab" * 20}
    assert resolve_args(playbook.steps[1], params, {}) == {}


# --- when -----------------------------------------------------------------------------------------


def test_when_follows_a_bool_parameter_or_fact() -> None:
    assert evaluate_when(Step(id="s", action="a"), PARAMS, FACTS) is True
    assert evaluate_when(Step(id="s", action="a", when="${params.restart}"), PARAMS, FACTS) is True
    assert (
        evaluate_when(Step(id="s", action="a", when="${params.restart}"), {"restart": False}, FACTS) is False
    )
    assert evaluate_when(Step(id="s", action="a", when="${facts.os.hotpatch}"), PARAMS, FACTS) is False


def test_when_on_a_fact_that_is_not_a_bool_is_an_error() -> None:
    with pytest.raises(PlaybookError) as caught:
        evaluate_when(Step(id="s", action="a", when="${facts.fqdn}"), PARAMS, FACTS)
    assert str(caught.value) == "steps.s.when: ${facts.fqdn} is 'ep-001.corp.example.com', not true or false"


def test_when_on_a_missing_fact_names_the_step() -> None:
    with pytest.raises(PlaybookError) as caught:
        evaluate_when(Step(id="s", action="a", when="${facts.os.reboot}"), PARAMS, FACTS)
    assert str(caught.value) == "steps.s.when: ${facts.os.reboot}: no fact 'reboot' under os"


def test_when_of_a_loaded_playbook(tmp_path: Path) -> None:
    playbook = load(tmp_path)
    assert evaluate_when(playbook.steps[1], playbook.resolve_params(), {}) is True
    assert evaluate_when(playbook.steps[1], playbook.resolve_params({"restart": False}), {}) is False
    on_fact = load(tmp_path, edited('when: "${params.restart}"', 'when: "${facts.pending}"'))
    assert evaluate_when(on_fact.steps[1], on_fact.resolve_params(), {"pending": True}) is True


# --- parsing --------------------------------------------------------------------------------------


def test_template_parts() -> None:
    template = parse_template("a${params.x}b${facts.c.0}")
    assert template.parts == ("a", Reference(Scope.PARAMS, ("x",)), "b", Reference(Scope.FACTS, ("c", "0")))
    assert template.exact is None
    assert parse_template("${facts.c}").exact == Reference(Scope.FACTS, ("c",))
    assert parse_template("").parts == ("",)
    assert str(Reference(Scope.FACTS, ("os", "build"))) == "${facts.os.build}"


@pytest.mark.parametrize(
    "text", ["${}", "${params}", "${params.}", "${facts..x}", "${ params.x }", "${x.y}", "a ${"]
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ReferenceSyntaxError):
        parse_template(text)


# Literal text: anything, but a "$" never directly before "{" (that would start a reference).
_literal = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12).filter(
    lambda text: "${" not in text and not text.endswith("$")
)
_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_scalar = st.one_of(st.text(max_size=8), st.integers(), st.booleans())


@given(st.lists(st.tuples(_literal, _name), max_size=4), _literal, st.dictionaries(_name, _scalar))
def test_interpolation_is_concatenation(
    pieces: list[tuple[str, str]], tail: str, values: dict[str, Any]
) -> None:
    params = {name: values.get(name, name.upper()) for _, name in pieces}
    text = "".join(f"{literal}${{params.{name}}}" for literal, name in pieces) + tail
    if len(pieces) == 1 and not pieces[0][0] and not tail:
        return  # exactly one reference: covered by the type-preserving property below

    def shown(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    expected = "".join(literal + shown(params[name]) for literal, name in pieces) + tail
    assert resolve_value(text, params, {}) == expected


@given(_name, st.one_of(_scalar, st.lists(st.text(max_size=5), max_size=3).map(tuple)))
def test_an_exact_reference_keeps_the_value_and_its_type(name: str, value: Any) -> None:
    resolved = resolve_value(f"${{params.{name}}}", {name: value}, {})
    assert resolved == value
    assert type(resolved) is type(value)


@given(_literal)
def test_text_without_references_is_unchanged(text: str) -> None:
    assert resolve_value(text, {}, {}) == text


@given(_literal)
def test_escaped_opening_is_literal(text: str) -> None:
    assert resolve_value(f"$${{{text}", {}, {}) == "${" + text
