"""The script catalog's half of the script contract: every shipped script has a schema.

``tests/lab/test_lab_contract.py`` checks the header, the lab handler and the PowerShell parse.
Here: every ``.ps1`` has a :class:`ScriptSpec` with an output model, the spec's parameters are
the script's ``param()`` block (names, types, mandatory), what the lab handler prints validates
against the schema when run through the real transport, and binding values is checked before
any network I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tree_sitter_pwsh
from tree_sitter import Language, Node, Parser

from lab import FleetConfig, HostConfig, Lab
from lab.scripts import parse_script_id
from orchestrator.errors import InputError
from orchestrator.scripts import (
    CATALOG,
    DIAG_ECHO,
    HOST_INFO,
    ParamSpec,
    ParamType,
    ScriptKind,
    ScriptOutput,
    ScriptSpec,
    catalog_problems,
    get_script,
    parse_header,
    script_text,
    shipped_script_ids,
)
from orchestrator.scripts.spec import assemble_script
from orchestrator.transport.winrm import WinRMSession
from tests.transport.support import LAB_CREDENTIAL, lab_host

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "orchestrator" / "scripts"
SCRIPT_FILES = sorted(SCRIPTS_DIR.glob("*.ps1"))
PARSER = Parser(Language(tree_sitter_pwsh.language()))
MANDATORY = re.compile(r"\bMandatory\b(?:\s*=\s*\$true)?\s*[,)]", re.IGNORECASE)
SAMPLE_VALUES = {ParamType.STRING: "sample", ParamType.INT: 7, ParamType.BOOL: True}


@dataclass(frozen=True)
class DeclaredParam:
    name: str
    type: str
    mandatory: bool


def nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from nodes(child)


def declared_params(source: bytes) -> list[DeclaredParam]:
    """The script-level ``param()`` block as PowerShell reads it: name, [type], Mandatory."""
    tree = PARSER.parse(source)
    block = next(n for n in tree.root_node.children if n.type == "param_block")
    return [_param(node) for node in nodes(block) if node.type == "script_parameter"]


def _source(node: Node) -> str:
    """A node's source text (tree-sitter keeps it for every node of a tree it parsed from bytes)."""
    assert node.text is not None
    return node.text.decode()


def _param(node: Node) -> DeclaredParam:
    variable = next(child for child in node.children if child.type == "variable")
    attributes = [n for n in nodes(node) if n.type == "attribute"]
    types = [
        _source(n).strip("[]").lower() for a in attributes for n in a.children if n.type == "type_literal"
    ]
    mandatory = any(MANDATORY.search(a.text.decode()) for a in attributes if a.text)
    assert variable.text is not None
    return DeclaredParam(variable.text.decode().lstrip("$"), types[0] if types else "object", mandatory)


# -- the catalog and the shipped files agree ---------------------------------------------------------


def test_catalog_is_whole() -> None:
    assert catalog_problems(CATALOG) == []
    assert shipped_script_ids() == {path.stem for path in SCRIPT_FILES}


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_every_shipped_script_has_a_schema(path: Path) -> None:
    spec = CATALOG.get(path.stem)
    assert spec is not None, f"{path.name} has no ScriptSpec in orchestrator/scripts/catalog.py"
    assert issubclass(spec.output, ScriptOutput)
    assert spec.output.model_json_schema()["properties"], "the schema must describe the document"


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_spec_parameters_are_the_param_block(path: Path) -> None:
    spec = CATALOG[path.stem]
    declared = declared_params(script_text(path.stem).encode("utf-8"))  # the text as sent
    assert declared == [DeclaredParam(p.name, p.type.value, p.required) for p in spec.params]


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_packaged_text_is_the_file(path: Path) -> None:
    # importlib.resources reads the copy that ships in the wheel (package-data), not the source tree;
    # what it gives is the file with its includes filled in from the lib/ fragments beside it.
    fragments = {lib.stem: lib.read_text(encoding="utf-8") for lib in (SCRIPTS_DIR / "lib").glob("*.ps1")}
    assert script_text(path.stem) == assemble_script(path.stem, path.read_text(encoding="utf-8"), fragments)


def test_param_block_reader() -> None:
    source = b"""# fleetfix-script: test.params
param(
    [Parameter(Mandatory)]
    [string]$Name,
    [Parameter(Mandatory = $false)]
    [int]$Count = 3,
    [Parameter(Mandatory = $true, Position = 0)]
    [bool]$Force,
    $Loose
)
"""
    assert declared_params(source) == [
        DeclaredParam("Name", "string", True),
        DeclaredParam("Count", "int", False),
        DeclaredParam("Force", "bool", True),
        DeclaredParam("Loose", "object", False),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "# fleetfix-script: diag.echo\nparam()",
        "# fleetfix-script: vpn.profile-set\r\n",
        "# fleetfix-script: host.info",
        "\ufeff# fleetfix-script: diag.echo\n",
        "# fleetfix-script: Diag.Echo\n",
        "# fleetfix-script: diag\n",
        "# fleetfix-script: diag.echo trailing\n",
        "\n# fleetfix-script: diag.echo\n",
        "#fleetfix-script: diag.echo\n",
    ],
)
def test_header_is_read_exactly_as_the_lab_reads_it(text: str) -> None:
    assert parse_header(text) == parse_script_id(text)


# -- what the lab handlers print validates against the schemas --------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(FleetConfig(hosts=(HostConfig(name="EP-CONTRACT", https_port=0),))) as running:
        yield running


# Probes run anywhere with sample values. Action scripts refuse sample values (no such store,
# connection or thumbprint) as Windows would; their outputs are validated with real inputs through
# WinRM in tests/lab/test_lab_endpoint_actions.py and tests/lab/test_lab_server_actions.py.
@pytest.mark.parametrize(
    "script_id", sorted(sid for sid, spec in CATALOG.items() if spec.kind is ScriptKind.PROBE)
)
def test_lab_output_validates_against_the_schema(lab: Lab, script_id: str) -> None:
    spec = CATALOG[script_id]
    values = {param.name: SAMPLE_VALUES[param.type] for param in spec.params}
    with WinRMSession(lab_host(lab.info, "EP-CONTRACT"), LAB_CREDENTIAL) as session:
        result = session.run(spec.bind(**values))
    assert isinstance(result.value, spec.output)
    assert result.errors == ()


# -- binding is checked before any I/O -------------------------------------------------------------


def test_lookup() -> None:
    assert get_script("diag.echo") is DIAG_ECHO
    assert get_script("host.info", kind=ScriptKind.PROBE) is HOST_INFO
    with pytest.raises(InputError, match=r"unknown probe 'host.inf'.*did you mean 'host.info'"):
        get_script("host.inf", kind=ScriptKind.PROBE)
    with pytest.raises(InputError, match="is a probe; only actions are accepted here"):
        get_script("diag.echo", kind=ScriptKind.ACTION)


def test_bind_checks_names_and_types() -> None:
    assert DIAG_ECHO.bind().params == ()
    assert DIAG_ECHO.bind(VALUE="x").params == (("Value", "x"),)  # declared spelling is sent
    with pytest.raises(InputError, match=r"no parameter 'Valu'.*did you mean 'Value'"):
        DIAG_ECHO.bind(Valu="x")
    with pytest.raises(InputError, match=r"expected \[string\], got int"):
        DIAG_ECHO.bind(Value=5)
    with pytest.raises(InputError, match="accepted: none"):
        HOST_INFO.bind(Value="x")


def test_typed_parameters() -> None:
    spec = ScriptSpec(
        "test.typed",
        ScriptKind.ACTION,
        ScriptOutput,
        params=(
            ParamSpec("Name", ParamType.STRING, required=True),
            ParamSpec("Count", ParamType.INT),
            ParamSpec("Force", ParamType.BOOL),
        ),
    )
    assert spec.bind(Force=False, name="vpn", count=3).params == (
        ("Name", "vpn"),
        ("Count", 3),
        ("Force", False),
    )
    with pytest.raises(InputError, match=r"test\.typed needs Name"):
        spec.bind(Count=1)
    with pytest.raises(InputError, match=r"expected \[int\], got bool"):
        spec.bind(Name="x", Count=True)
    with pytest.raises(InputError, match="outside the range of a 32-bit"):
        spec.bind(Name="x", Count=2**31)
    parsed = spec.parse_params(["name=a=b", "Count= 42 ", "force=yes"])
    assert parsed.params == (("Name", "a=b"), ("Count", 42), ("Force", True))
    with pytest.raises(InputError, match="expected an integer"):
        spec.parse_params(["Name=x", "Count=many"])
    with pytest.raises(InputError, match="expected true or false"):
        spec.parse_params(["Name=x", "Force=maybe"])
    with pytest.raises(InputError, match="expected NAME=VALUE"):
        spec.parse_params(["Name"])
    with pytest.raises(InputError, match="given twice"):
        spec.parse_params(["Name=x", "name=y"])


def test_invalid_script_id_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="invalid script id"):
        ScriptSpec("NoDots", ScriptKind.PROBE, ScriptOutput)
