"""Property-based tests for selectors: rendering round-trips, precedence, and total error handling."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import SelectorError
from orchestrator.inventory import Host, Role, parse_selector
from orchestrator.inventory.selectors import (
    AddressTerm,
    And,
    GroupTerm,
    NameTerm,
    Not,
    Or,
    RoleTerm,
    Selector,
    TagTerm,
)

# Small vocabularies make terms and hosts collide often, so matches are neither always true nor false.
NAMES = ["ep-001", "EP-002", "ep-101", "vpn-ams-01", "ca-01", "and", "Or"]
GROUPS = ["ams", "AMS", "fra", "servers", "kiosks"]
TAG_KEYS = ["ring", "Ring", "site", "vip"]
TAG_VALUES = ["canary", "Canary", "pilot", "ams", "fra", ""]
ADDRESSES = ["ep-001.ams.corp", "10.20.0.1", "fe80::10", "vpn.fra.corp"]
GLOB_PIECES = ["ep", "-", "0", "1", "*", "?", "[01]", "a", "ms", ".", ":", "corp", "10", "fra", "CA"]

globs = st.one_of(
    st.sampled_from(NAMES + GROUPS + TAG_VALUES[:-1] + ADDRESSES),
    st.lists(st.sampled_from(GLOB_PIECES), min_size=1, max_size=5).map("".join),
)
terms: st.SearchStrategy[Selector] = st.one_of(
    st.builds(RoleTerm, st.sampled_from(list(Role))),
    st.builds(TagTerm, st.sampled_from(TAG_KEYS), st.none() | globs),
    st.builds(GroupTerm, globs),
    st.builds(NameTerm, globs),
    st.builds(AddressTerm, globs),
)
trees: st.SearchStrategy[Selector] = st.recursive(
    terms,
    lambda children: st.one_of(
        st.builds(Not, children),
        st.builds(And, children, children),
        st.builds(Or, children, children),
    ),
    max_leaves=12,
)
hosts = st.builds(
    Host,
    name=st.sampled_from(NAMES),
    role=st.sampled_from(list(Role)),
    address=st.sampled_from(ADDRESSES),
    credential=st.just("vault:x"),
    groups=st.lists(st.sampled_from(GROUPS), max_size=3, unique=True).map(tuple),
    tags=st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=3),
)

_TOKEN = re.compile(r"[()]|[^\s()]+")


def python_truth(expression: str, host: Host) -> bool:
    """Evaluate a rendered selector with Python's own ``not``/``and``/``or``.

    Python gives these operators the same precedence as the selector grammar, so this is an oracle
    for precedence and parentheses that does not go through the selector parser's operator rules.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token in {"(", ")", "and", "or", "not"}:
            return token
        return str(parse_selector(token).matches(host))

    return bool(eval(_TOKEN.sub(replace, expression), {"__builtins__": {}}))


@given(trees)
def test_rendering_parses_back_to_the_same_tree(tree: Selector) -> None:
    assert parse_selector(str(tree)) == tree


@settings(deadline=None)
@given(trees, st.lists(hosts, min_size=1, max_size=6))
def test_parsed_rendering_selects_the_same_hosts(tree: Selector, sample: list[Host]) -> None:
    parsed = parse_selector(str(tree))
    for host in sample:
        expected = tree.matches(host)
        assert parsed.matches(host) == expected
        assert python_truth(str(tree), host) == expected


FRAGMENTS = [
    "role:", "tag:", "group:", "name:", "address:", "site:", "endpoint", "rras", "ca", "ring", "=", "canary",
    "*", "?", "ep-0", ":", "and", "AND", "or", "Not", "not", "(", ")", " ", "  ", "\t",
]  # fmt: skip


def parse_or_error(text: str) -> Selector | SelectorError:
    try:
        return parse_selector(text)
    except SelectorError as error:
        return error


@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)))
def test_any_text_parses_or_raises_selector_error_inside_the_expression(text: str) -> None:
    outcome = parse_or_error(text)  # any other exception fails the test
    if isinstance(outcome, SelectorError):
        assert outcome.expression == text
        assert 1 <= outcome.column <= max(1, len(text))
        if text.strip():
            assert not text[outcome.column - 1].isspace(), "the column points at a token"
    else:
        assert parse_selector(str(outcome)) == outcome
