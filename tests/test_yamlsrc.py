"""The position-keeping YAML loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError, SourcePosition
from orchestrator.yamlsrc import YamlDocument, format_path, load_yaml, parse_yaml

DOCUMENT = """\
# a comment
hosts:
  ep-001:
    role: endpoint
    groups: [ams, fra]
    port: 5986
  ep-002:
    groups:
      - ams
      - fra
"""


def test_builds_plain_data_like_safe_load() -> None:
    document = parse_yaml(DOCUMENT, InventoryError)
    assert document.data == {
        "hosts": {
            "ep-001": {"role": "endpoint", "groups": ["ams", "fra"], "port": 5986},
            "ep-002": {"groups": ["ams", "fra"]},
        }
    }


def test_records_one_based_line_and_column_for_every_path() -> None:
    positions = parse_yaml(DOCUMENT, InventoryError).positions
    assert positions[("hosts",)] == (2, 1)
    assert positions[("hosts", "ep-001")] == (3, 3)
    assert positions[("hosts", "ep-001", "role")] == (4, 5)
    assert positions[("hosts", "ep-001", "groups", 0)] == (5, 14)
    assert positions[("hosts", "ep-001", "groups", 1)] == (5, 19)
    assert positions[("hosts", "ep-002", "groups", 1)] == (10, 9)


def test_position_falls_back_to_the_nearest_parent() -> None:
    document = parse_yaml(DOCUMENT, InventoryError, path=Path("inv.yaml"))
    assert document.position(("hosts", "ep-001", "address")) == SourcePosition(Path("inv.yaml"), 3)
    assert document.position(("nothing", "here")) == SourcePosition(Path("inv.yaml"), 2)
    assert document.line_column(("hosts", "ep-002", "groups", 0)) == (9, 9)


def test_empty_document_has_no_data_and_points_at_line_one() -> None:
    document = parse_yaml("# only a comment\n", InventoryError)
    assert document.data is None
    assert document.position(("hosts",)).line == 1


def test_duplicate_key_is_an_error_naming_both_lines() -> None:
    text = "hosts:\n  ep-001:\n    role: endpoint\n  ep-001:\n    role: rras\n"
    with pytest.raises(InventoryError) as caught:
        parse_yaml(text, InventoryError, path=Path("inv.yaml"))
    assert str(caught.value) == "inv.yaml:4: hosts.ep-001: duplicate key 'ep-001' (first defined at line 2)"
    assert caught.value.field == "hosts.ep-001"


def test_duplicate_key_in_a_flow_mapping_is_found_too() -> None:
    with pytest.raises(InventoryError, match=r"^<input>:1: tags\.a: duplicate key 'a'"):
        parse_yaml("tags: {a: 1, a: 2}\n", InventoryError)


def test_syntax_error_names_file_line_and_column() -> None:
    text = "hosts:\n  ep-001:\n    role: endpoint\n   address: x\n"
    with pytest.raises(InventoryError) as caught:
        parse_yaml(text, InventoryError, path=Path("inv.yaml"))
    assert caught.value.position == SourcePosition(Path("inv.yaml"), 4, 4)
    assert str(caught.value).startswith("inv.yaml:4:4: invalid YAML: ")


def test_unclosed_flow_list_is_a_syntax_error() -> None:
    with pytest.raises(InventoryError, match=r"^<input>:2:1: invalid YAML: expected ',' or '\]'"):
        parse_yaml("groups: [ams\n", InventoryError)


def test_control_character_is_an_error_with_its_position() -> None:
    with pytest.raises(InventoryError) as caught:
        parse_yaml("a: 1\nb: x\x07\n", InventoryError)
    assert caught.value.position == SourcePosition(None, 2, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("a: !custom 1\n", "could not determine a constructor"),
        ("a: !!set {x, y}\n", "unsupported YAML tag"),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", "merge keys"),
        ("a: &loop [*loop]\n", "recursive alias"),
        ("? [a, b]\n: 1\n", "plain name"),
        ("a: 1\n---\nb: 2\n", "single document"),
    ],
)
def test_refuses_what_safe_load_would_accept_silently_or_unsafely(text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        parse_yaml(text, InventoryError)


def test_aliases_expand_to_the_same_data() -> None:
    document = parse_yaml("a: &x {k: v}\nb: *x\n", InventoryError)
    assert document.data == {"a": {"k": "v"}, "b": {"k": "v"}}


def test_keys_are_the_text_as_written() -> None:
    document = parse_yaml("0010: a\nno: b\n1.5: c\n", InventoryError)
    assert list(document.data) == ["0010", "no", "1.5"]


def test_values_keep_safe_loader_types() -> None:
    assert parse_yaml("a: 5986\nb: true\nc: null\nd: '5986'\n", InventoryError).data == {
        "a": 5986,
        "b": True,
        "c": None,
        "d": "5986",
    }


def test_raises_the_callers_error_class() -> None:
    class PlaybookError(InventoryError):
        pass

    with pytest.raises(PlaybookError):
        parse_yaml("a: 1\na: 2\n", PlaybookError)


def test_load_yaml_reads_a_file_and_remembers_its_path(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    document = load_yaml(path, InventoryError)
    assert document == YamlDocument(path, {"a": 1}, {(): (1, 1), ("a",): (1, 1)})


def test_load_yaml_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="file not found") as caught:
        load_yaml(tmp_path / "nope.yaml", InventoryError)
    assert caught.value.position == SourcePosition(tmp_path / "nope.yaml")


def test_load_yaml_non_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_yaml(path, InventoryError)


def test_format_path() -> None:
    assert format_path(("hosts", "ep-001", "groups", 1)) == "hosts.ep-001.groups[1]"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(()) == ""


def test_alias_expansion_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 9)]
    with pytest.raises(InventoryError, match="expands to more than"):
        parse_yaml("\n".join(lines) + "\n", InventoryError)
