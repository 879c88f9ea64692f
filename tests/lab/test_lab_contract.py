"""Contract between the shipped PowerShell scripts and the lab: header, handler, syntax, style.

Every ``orchestrator/scripts/*.ps1`` must start with ``# fleetfix-script: <id>`` (the id is the
file name), have a handler in the lab, parse cleanly with the tree-sitter PowerShell grammar
(``tree-sitter-pwsh``), and be written as a Windows admin writes production scripts: a param
block, ``$ErrorActionPreference = 'Stop'``, full cmdlet names (Verb-Noun), no aliases.
Every lab handler must have its shipped script, too.

The grammar is a coarse gate (unbalanced braces, unterminated strings, truncated files); it is
not PowerShell's parser, and it reports one-line ``switch``/``function … { param … }`` forms as
errors, so scripts keep those on several lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter_pwsh
from tree_sitter import Language, Node, Parser

from lab.scripts import SCRIPT_HEADER, default_registry, parse_script_id
from orchestrator.scripts import script_text
from tests.lab.support import SCRIPTS_DIR

SCRIPTS = sorted(SCRIPTS_DIR.glob("*.ps1"))
PARSER = Parser(Language(tree_sitter_pwsh.language()))
VERB_NOUN = re.compile(r"^[A-Z][A-Za-z]+-[A-Za-z0-9]+$")  # Get-Item, ConvertTo-Json


def nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from nodes(child)


def syntax_problems(source: bytes) -> list[str]:
    tree = PARSER.parse(source)
    return [
        f"line {n.start_point.row + 1}: {f'MISSING {n.type}' if n.is_missing else 'ERROR'}"
        for n in nodes(tree.root_node)
        if n.is_error or n.is_missing
    ]


def test_scripts_exist() -> None:
    assert {path.stem for path in SCRIPTS} >= {"diag.echo", "host.info"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_header_names_the_script(path: Path) -> None:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM: the header must be the very first bytes"
    text = raw.decode("utf-8")
    assert SCRIPT_HEADER.match(text), (
        f"first line must be '# fleetfix-script: <id>', got {text.splitlines()[0]!r}"
    )
    assert parse_script_id(text) == path.stem


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_has_a_lab_handler(path: Path) -> None:
    assert path.stem in default_registry().script_ids()


def test_every_handler_has_a_shipped_script() -> None:
    assert default_registry().script_ids() == {path.stem for path in SCRIPTS}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(path: Path) -> None:
    # The text as sent: the file with its lib/ fragments filled in (tests/transport/test_script_includes.py).
    assert syntax_problems(script_text(path.stem).encode("utf-8")) == []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_style(path: Path) -> None:
    source = script_text(path.stem).encode("utf-8")
    tree = PARSER.parse(source)
    kinds = {node.type for node in nodes(tree.root_node)}
    assert "param_block" in kinds, "declare inputs in a param() block"
    assert b"$ErrorActionPreference = 'Stop'" in source
    commands = [n.text.decode() for n in nodes(tree.root_node) if n.type == "command_name" and n.text]
    aliases = [name for name in commands if not VERB_NOUN.match(name)]
    assert aliases == [], f"use full cmdlet names, not aliases: {aliases}"
    assert b"ConvertTo-Json -Compress" in source, "print exactly one compressed JSON document"


@pytest.mark.parametrize(
    "source",
    [
        b"param(\n    [string]$Value\n\nWrite-Output $Value\n",  # unbalanced parenthesis
        b"Write-Output 'unterminated\n",
        b"if ($true) {\n    Write-Output 1\n",  # missing brace
    ],
)
def test_the_syntax_gate_catches_broken_scripts(source: bytes) -> None:
    assert syntax_problems(source)


def test_the_alias_rule_sees_aliases() -> None:
    tree = PARSER.parse(b"gci | % { $_ } | ? Name\n")
    names = [n.text.decode() for n in nodes(tree.root_node) if n.type == "command_name" and n.text]
    assert names == ["gci", "%", "?"]
    assert not any(VERB_NOUN.match(name) for name in names)
