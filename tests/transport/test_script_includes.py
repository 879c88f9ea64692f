"""Shared PowerShell helpers live once, in ``orchestrator/scripts/lib/*.ps1`` fragments.

A script names a fragment with a line ``# fleetfix-include: <name>`` after its ``param()`` block,
and :func:`script_text` puts the fragment's text in its place: the host still receives one
self-contained text. Here: the assembled scripts keep their header first and ``param()`` as the
first statement, hold each included fragment exactly once and no directive; every fragment has its
own header, parses, includes nothing and is shipped; bad includes are LookupErrors at load and
:func:`catalog_problems` entries; and no PowerShell function is defined in two shipped files, so a
helper cannot be copied into a second script again.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel

from orchestrator.scripts import CATALOG, ScriptKind, ScriptOutput, ScriptSpec, catalog_problems, script_text
from orchestrator.scripts import spec as spec_module
from orchestrator.scripts.spec import assemble_script, check_fragment, parse_header, shipped_fragment_names
from tests.lab.test_lab_contract import PARSER, VERB_NOUN, nodes, syntax_problems

REPO = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO / "orchestrator" / "scripts"
SCRIPT_FILES = sorted(SCRIPTS_DIR.glob("*.ps1"))
FRAGMENT_FILES = sorted((SCRIPTS_DIR / "lib").glob("*.ps1"))
INCLUDE = "# fleetfix-include: "


def include_names(text: str) -> list[str]:
    return [line.removeprefix(INCLUDE) for line in text.splitlines() if line.startswith(INCLUDE)]


def defined_functions(source: bytes) -> list[str]:
    """Every ``function Name`` in a PowerShell text (names compare case-insensitively, as in PowerShell)."""
    tree = PARSER.parse(source)
    return [n.text.decode().casefold() for n in nodes(tree.root_node) if n.type == "function_name" and n.text]


def called_commands(source: bytes) -> set[str]:
    tree = PARSER.parse(source)
    return {n.text.decode().casefold() for n in nodes(tree.root_node) if n.type == "command_name" and n.text}


def definitions_in_several_places(sources: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Function name -> the files defining it, for names defined more than once across ``sources``."""
    places: dict[str, list[str]] = defaultdict(list)
    for name, source in sources.items():
        for function in defined_functions(source):
            places[function].append(name)
    return {function: files for function, files in places.items() if len(files) > 1}


# -- the shipped scripts, assembled -----------------------------------------------------------------


def test_fragments_are_shipped_and_used() -> None:
    assert FRAGMENT_FILES, "the shared helpers live in orchestrator/scripts/lib/*.ps1"
    assert shipped_fragment_names() == {path.stem for path in FRAGMENT_FILES}
    used = {name for path in SCRIPT_FILES for name in include_names(path.read_text(encoding="utf-8"))}
    assert used == shipped_fragment_names()


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_assembled_script_keeps_header_and_param_first(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    text = script_text(path.stem)
    assert text.splitlines()[0] == raw.splitlines()[0] == f"# fleetfix-script: {path.stem}"
    assert parse_header(text) == path.stem
    statements = [child.type for child in PARSER.parse(text.encode()).root_node.children]
    assert next(kind for kind in statements if kind != "comment") == "param_block"
    directives = [line for line in text.splitlines() if line.lstrip().startswith("# fleetfix-include")]
    assert directives == [], "every directive is replaced by its fragment"


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_each_included_fragment_is_in_the_text_once(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    text = script_text(path.stem)
    names = include_names(raw)
    for name in names:
        fragment = (SCRIPTS_DIR / "lib" / f"{name}.ps1").read_text(encoding="utf-8")
        assert text.count(fragment) == 1, name
        assert text.count(f"# fleetfix-fragment: {name}\n") == 1, name
    assert text.count("# fleetfix-fragment: ") == len(names), "nothing but the named fragments"
    if not names:
        assert text == raw


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_every_shared_function_a_script_calls_is_included(path: Path) -> None:
    # A fragment that needs another one (probe needs registry and values) cannot include it: the
    # script must. PowerShell would only find out on the host, at the call.
    shared = {f for file in SCRIPT_FILES + FRAGMENT_FILES for f in defined_functions(file.read_bytes())}
    source = script_text(path.stem).encode()
    missing = (called_commands(source) & shared) - set(defined_functions(source))
    assert missing == set()


# -- one definition of each helper ------------------------------------------------------------------


def test_no_function_is_defined_in_two_shipped_files() -> None:
    sources = {path.relative_to(SCRIPTS_DIR).as_posix(): path.read_bytes() for path in SCRIPT_FILES}
    sources |= {path.relative_to(SCRIPTS_DIR).as_posix(): path.read_bytes() for path in FRAGMENT_FILES}
    assert definitions_in_several_places(sources) == {}, "share it through a lib/ fragment instead"


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_no_function_is_defined_twice_in_an_assembled_script(path: Path) -> None:
    functions = defined_functions(script_text(path.stem).encode())
    assert len(functions) == len(set(functions))


def test_the_duplicate_finder_sees_a_copy() -> None:
    one = b"function Get-Thing {\n    param([string]$Name)\n    $Name\n}\n"
    other = b"function get-thing {\n    1\n}\nfunction Get-Other {\n    2\n}\n"
    assert definitions_in_several_places({"a.ps1": one, "b.ps1": other}) == {"get-thing": ["a.ps1", "b.ps1"]}
    assert definitions_in_several_places({"a.ps1": one + other}) == {"get-thing": ["a.ps1", "a.ps1"]}


# -- the fragments themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("path", FRAGMENT_FILES, ids=lambda p: p.name)
def test_fragment_is_well_formed(path: Path) -> None:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM: it would land in the middle of a script"
    text = raw.decode("utf-8")
    assert text.splitlines()[0] == f"# fleetfix-fragment: {path.stem}"
    assert check_fragment(path.stem, text) == text
    assert text.endswith("\n")
    assert syntax_problems(raw) == []
    tree = PARSER.parse(raw)
    assert "param_block" not in [child.type for child in tree.root_node.children], (
        "param() belongs to the script: a second one after it does not parse in PowerShell"
    )
    commands = [n.text.decode() for n in nodes(tree.root_node) if n.type == "command_name" and n.text]
    assert [name for name in commands if not VERB_NOUN.match(name)] == [], "no aliases"


# -- assembling: what is accepted and what is refused -----------------------------------------------

HEAD = "# fleetfix-script: test.include\n<#\n.SYNOPSIS\n    A test.\n#>\n[CmdletBinding()]\n"
FRAGMENTS = {
    "time": "# fleetfix-fragment: time\nfunction Get-Now {\n    Get-Date\n}\n",
    "bare": "# fleetfix-fragment: bare\n$x = 1",
}


def assemble(body: str, fragments: Mapping[str, str] = FRAGMENTS) -> str:
    return assemble_script("test.include", HEAD + body, fragments)


def test_an_include_is_replaced_by_the_fragment() -> None:
    body = "param(\n    [string]$Name\n)\n\n# fleetfix-include: time\n\nGet-Now\n"
    assert assemble(body) == HEAD + "param(\n    [string]$Name\n)\n\n" + FRAGMENTS["time"] + "\nGet-Now\n"


def test_a_fragment_without_a_final_newline_keeps_the_next_line_apart() -> None:
    assert assemble("param()\r\n# fleetfix-include: bare\r\nGet-Now\r\n").endswith("$x = 1\r\nGet-Now\r\n")


def test_the_param_block_is_read_past_strings_and_comments() -> None:
    # Parentheses and '#' inside quotes or comments do not end the block.
    body = (
        "param(\n"
        "    # a comment ) with a parenthesis\n"
        "    [ValidatePattern('^[^)#]+$')]\n"
        '    [string]$Name = "a `") b",\n'
        "    <# ) #> [int]$Count = (1 + 2)\n"
        ")\n"
        "# fleetfix-include: time\n"
    )
    assert assemble(body).endswith(")\n" + FRAGMENTS["time"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "# fleetfix-include: time\nparam()\n",
            r"line 7: '# fleetfix-include: time' must come after the param\(\)",
        ),
        (
            "param(\n# fleetfix-include: time\n    [string]$Name\n)\n",
            r"line 8: '# fleetfix-include: time' must come after the param\(\) block",
        ),
        (
            "Set-StrictMode -Version Latest\n# fleetfix-include: time\n",
            r"needs a param\(\) block as the script's first",
        ),
        ("$a = 1\nparam()\n# fleetfix-include: time\n", r"needs a param\(\) block as the script's first"),
        (
            "param()\n# fleetfix-include: tme\n",
            r"line 8: unknown include 'tme'.*shipped: bare, time.*did you mean 'time'",
        ),
        ("param()\n# fleetfix-include: time\n# fleetfix-include: time\n", r"line 9: time is included twice"),
        ("param()\n#fleetfix-include: time\n", r"line 8: '#fleetfix-include: time' is not an include"),
        ("param()\n# fleetfix-include: Time\n", "is not an include"),
        ("param()\n# fleetfix-include: time, bare\n", "is not an include"),
        (
            "param()\nfunction A {\n    # fleetfix-include: time\n}\n",
            r"line 9: .* is not an include.*at its start",
        ),
        ("param()\n# Fleetfix-Include: time\n", "is not an include"),
    ],
)
def test_a_bad_include_is_a_lookup_error_naming_the_line(body: str, message: str) -> None:
    with pytest.raises(LookupError, match=rf"^test\.include\.ps1 .*{message}"):
        assemble(body)


@pytest.mark.parametrize(
    ("fragments", "message"),
    [
        (
            {"time": "# fleetfix-fragment: time\n# fleetfix-include: bare\n", "bare": FRAGMENTS["bare"]},
            r"lib/time\.ps1 line 2: a fragment cannot include another",
        ),
        (
            # a cycle is refused at its first step: nothing is ever followed
            {
                "time": "# fleetfix-fragment: time\n# fleetfix-include: bare\n",
                "bare": "# fleetfix-fragment: bare\n# fleetfix-include: time\n",
            },
            r"lib/time\.ps1 line 2: a fragment cannot include another",
        ),
        (
            {"time": "function Get-Now {\n}\n"},
            r"lib/time\.ps1 must start with '# fleetfix-fragment: time', found None",
        ),
        ({"time": "# fleetfix-fragment: clock\n"}, r"found 'clock'"),
    ],
)
def test_a_bad_fragment_is_a_lookup_error(fragments: Mapping[str, str], message: str) -> None:
    with pytest.raises(LookupError, match=message):
        assemble("param()\n# fleetfix-include: time\n", fragments)


# -- catalog_problems reports them, in a package laid out like the real one --------------------------


@pytest.fixture
def scripts_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable package standing in for orchestrator.scripts; write .ps1 files into it."""
    name = f"fleetfix_scripts_{uuid.uuid4().hex}"
    package = tmp_path / name
    (package / "lib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(spec_module, "SCRIPTS_PACKAGE", name)
    _clear_caches()
    yield package
    _clear_caches()  # the real package's texts are read again, not the stand-in's
    sys.modules.pop(name, None)


def _clear_caches() -> None:
    spec_module.script_text.cache_clear()
    spec_module._shipped_fragments.cache_clear()


def _spec(script_id: str) -> ScriptSpec[BaseModel]:
    return ScriptSpec(script_id, ScriptKind.PROBE, ScriptOutput)


def test_catalog_problems_names_bad_includes_and_fragments(scripts_package: Path) -> None:
    scripts = {
        "t.good": "param()\n# fleetfix-include: time\n",
        "t.early": "# fleetfix-include: time\nparam()\n",
        "t.unknown": "param()\n# fleetfix-include: tim\n",
        "t.nested": "param()\n# fleetfix-include: nested\n",
    }
    for script_id, body in scripts.items():
        (scripts_package / f"{script_id}.ps1").write_text(f"# fleetfix-script: {script_id}\n{body}")
    lib = scripts_package / "lib"
    (lib / "time.ps1").write_text(FRAGMENTS["time"])
    (lib / "nested.ps1").write_text("# fleetfix-fragment: nested\n# fleetfix-include: time\n")
    (lib / "unused.ps1").write_text("# fleetfix-fragment: unused\n")
    (lib / "misnamed.ps1").write_text("# fleetfix-fragment: renamed\n")

    problems = catalog_problems({script_id: _spec(script_id) for script_id in scripts})

    assert problems == [
        "t.early.ps1 line 2: '# fleetfix-include: time' must come after the param() block",
        "t.nested.ps1 line 3: lib/nested.ps1 line 2: a fragment cannot include another (one level only); "
        "include both from the script",
        "t.unknown.ps1 line 3: unknown include 'tim': no lib/tim.ps1 "
        "(shipped: misnamed, nested, time, unused); did you mean 'time'?",
        "lib/misnamed.ps1 must start with '# fleetfix-fragment: misnamed', found 'renamed'",
        "lib/nested.ps1 line 2: a fragment cannot include another (one level only); "
        "include both from the script",
        "lib/unused.ps1 is included by no script",
    ]
    assert script_text("t.good") == "# fleetfix-script: t.good\nparam()\n" + FRAGMENTS["time"]
    with pytest.raises(LookupError, match="must come after the param"):
        script_text("t.early")


def test_the_real_catalog_has_no_problems() -> None:
    assert catalog_problems(CATALOG) == []
    assert "# fleetfix-fragment: probe" in script_text("ca.facts")


# -- the fragments ship in the wheel ----------------------------------------------------------------


def test_packaging_lists_the_fragments() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "scripts/lib/*.ps1" in pyproject["tool"]["setuptools"]["package-data"]["orchestrator"]
    spec = importlib.util.spec_from_file_location("check_wheel", REPO / ".ci" / "check_wheel.py")
    assert spec is not None
    assert spec.loader is not None
    check_wheel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_wheel)
    expected = check_wheel.expected_files()
    assert {path.relative_to(REPO).as_posix() for path in FRAGMENT_FILES} <= expected
